package sbload_test

import (
	"context"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
	"github.com/govn/govn/trace"
)

// TestNorthdACLTiers writes tiered ACLs (ACL.tier, action "pass": govn's
// schema extensions, written through libovsdb since ovn-nbctl 23.03 knows
// neither), lets govn's northd compile them, and traces: tier 0 decides
// first, a tier-0 "pass" or a tier without a matching ACL hands the packet
// to tier 1 (the same stage looked up again with reg8[30..31] = 1), and the
// default applies after the last tier. The real ovn-trace 23.03 follows the
// same flows to the same outcome.
// toTier1 is the move from tier 0 to tier 1 in a detailed trace.
var toTier1 = regexp.MustCompile(`reg8\[30\.\.31\] = 1;\s+next\(pipeline=ingress, table=8\);`)

func TestNorthdACLTiers(t *testing.T) {
	sb, nbctl := startNorthd(t)
	nbctl.run("--wait=sb", "ls-add", "sw0",
		"--", "lsp-add", "sw0", "p1", "--", "lsp-set-addresses", "p1", "00:00:00:00:00:01 10.0.0.1",
		"--", "lsp-add", "sw0", "p2", "--", "lsp-set-addresses", "p2", "00:00:00:00:00:02 10.0.0.2",
		"--", "lsp-add", "sw0", "p3", "--", "lsp-set-addresses", "p3", "00:00:00:00:00:03 10.0.0.3")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := nbdb.NewClient(ctx, []string{nbctl.nb.Endpoint()}, ovsdbclient.WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	name := func(s string) *string { return &s }
	acls := []*nbdb.ACL{
		{Name: name("t0-ssh"), Priority: 200, Direction: nbdb.ACLDirectionFromLport, Match: "tcp.dst == 22", Action: nbdb.ACLActionAllow},
		{Name: name("t0-pass-p2"), Priority: 100, Direction: nbdb.ACLDirectionFromLport, Match: "ip4.dst == 10.0.0.2", Action: nbdb.ACLActionPass},
		{Name: name("t1-no-tcp"), Priority: 100, Direction: nbdb.ACLDirectionFromLport, Match: "tcp", Action: nbdb.ACLActionDrop, Tier: 1},
	}
	var ops []ovsdb.Operation
	for _, a := range acls {
		if ops, err = nbdb.CreateACLOps(c, ops, &nbdb.LogicalSwitch{Name: "sw0"}, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Transact(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	nbctl.run("--wait=sb", "sync")
	tr := loadTracer(t, sb.Endpoint(), nbctl.nb.Endpoint())

	const fromP1 = `inport == "p1" && eth.src == 00:00:00:00:00:01 && ip4.src == 10.0.0.1 && `
	toP2 := fromP1 + `eth.dst == 00:00:00:00:00:02 && ip4.dst == 10.0.0.2 && `
	toP3 := fromP1 + `eth.dst == 00:00:00:00:00:03 && ip4.dst == 10.0.0.3 && `
	for _, tc := range []struct {
		name, microflow string
		delivered       []string
		reason          string // drop reason substring ("" = no drop)
		tiers           int    // lookups of ls_in_acl the trace must show
	}{
		// Tier 0 allows: tier 1's drop is never consulted.
		{"tier0_allow", toP2 + "tcp.dst == 22", []string{"p2"}, "", 1},
		// Tier 0 passes to tier 1, which drops.
		{"tier0_pass_tier1_drop", toP2 + "tcp.dst == 80", nil, `dropped by ACL "t1-no-tcp"`, 2},
		// Nothing in tier 0 matches: tier 1 drops.
		{"tier0_nomatch_tier1_drop", toP3 + "tcp.dst == 80", nil, `dropped by ACL "t1-no-tcp"`, 2},
		// Pass, then nothing in tier 1: the default (allow) applies.
		{"tier0_pass_default", toP2 + "udp.dst == 53", []string{"p2"}, "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tr.Run("sw0", tc.microflow, trace.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var ports, reasons []string
			for _, o := range got.Outcomes {
				if o.Verdict == "output" {
					ports = append(ports, o.Port)
				} else {
					reasons = append(reasons, o.Reason)
				}
			}
			detailed := got.String(trace.Detailed)
			if !slices.Equal(ports, tc.delivered) {
				t.Errorf("delivered to %v, want %v\n%s", ports, tc.delivered, detailed)
			}
			if tc.reason != "" && !strings.Contains(strings.Join(reasons, "\n"), tc.reason) {
				t.Errorf("drop reasons %q lack %q\n%s", reasons, tc.reason, detailed)
			}
			if n := strings.Count(detailed, " 8. ls_in_acl ("); n != tc.tiers {
				t.Errorf("ls_in_acl looked up %d times, want %d (one per tier evaluated)\n%s", n, tc.tiers, detailed)
			}
			if tc.tiers > 1 && !toTier1.MatchString(detailed) {
				t.Errorf("trace lacks the move to tier 1\n%s", detailed)
			}
			args := []string{"--db=" + sb.Endpoint()}
			minimal, err := exec.Command("ovn-trace", append(append(args, "--minimal"), "sw0", tc.microflow)...).Output()
			if err != nil {
				t.Fatalf("ovn-trace: %v\n%s", err, minimal)
			}
			if !slices.Equal(delivered(string(minimal)), tc.delivered) {
				t.Errorf("ovn-trace delivers to %v, want %v\n%s", delivered(string(minimal)), tc.delivered, minimal)
			}
			det, err := exec.Command("ovn-trace", append(append(args, "--detailed"), "sw0", tc.microflow)...).Output()
			if err != nil {
				t.Fatalf("ovn-trace: %v\n%s", err, det)
			}
			if ours, theirs := visited(detailed), visited(string(det)); !slices.Equal(ours, theirs) {
				t.Errorf("visited flows differ\n--- govn\n%s\n--- ovn-trace\n%s", strings.Join(ours, "\n"), det)
			}
			t.Logf("%s: %s", tc.name, strings.Join(outcomeStrings(got), "; "))
		})
	}
}
