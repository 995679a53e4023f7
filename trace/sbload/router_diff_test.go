package sbload_test

import (
	"context"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/northd/run"
	"github.com/govn/govn/trace"
	"github.com/govn/govn/trace/sbload"
)

// TestNorthdRouterDifferential builds two switches joined by a logical
// router (with a static route) with ovn-nbctl, lets govn's northd write the
// southbound database, and checks that govn trace and the real ovn-trace
// reach the same verdict for routed microflows: the same ports receive the
// packet (or a packet the router generates in reply), or both drop it.
func TestNorthdRouterDifferential(t *testing.T) {
	dbservertest.RequireOVS(t)
	for _, b := range []string{"ovn-nbctl", "ovn-trace"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (apt install ovn-central)", b)
		}
	}
	nb := dbservertest.Start(t, nbDatabase, "", nil)
	sb := dbservertest.Start(t, sbDatabase, "", nil)
	nbctl := func(args ...string) string {
		return strings.TrimSpace(dbservertest.Run(t, "ovn-nbctl", append([]string{"--db=" + nb.Endpoint(), "--timeout=30"}, args...)...))
	}
	nbctl("init")
	ctx, cancel := context.WithCancel(context.Background())
	n, err := run.Start(ctx, run.Config{NB: []string{nb.Endpoint()}, SB: []string{sb.Endpoint()},
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	nbctl("--wait=sb", "lr-add", "lr0",
		"--", "lrp-add", "lr0", "lr0-a", "00:00:00:00:ff:01", "10.0.1.1/24",
		"--", "lrp-add", "lr0", "lr0-b", "00:00:00:00:ff:02", "10.0.2.1/24",
		"--", "ls-add", "sw-a", "--", "ls-add", "sw-b",
		"--", "lsp-add", "sw-a", "a-lr0", "--", "lsp-set-type", "a-lr0", "router",
		"--", "lsp-set-addresses", "a-lr0", "router", "--", "lsp-set-options", "a-lr0", "router-port=lr0-a",
		"--", "lsp-add", "sw-b", "b-lr0", "--", "lsp-set-type", "b-lr0", "router",
		"--", "lsp-set-addresses", "b-lr0", "router", "--", "lsp-set-options", "b-lr0", "router-port=lr0-b",
		"--", "lsp-add", "sw-a", "a1", "--", "lsp-set-addresses", "a1", "00:00:00:00:01:11 10.0.1.11",
		"--", "lsp-add", "sw-b", "b1", "--", "lsp-set-addresses", "b1", "00:00:00:00:02:11 10.0.2.11",
		"--", "lsp-add", "sw-b", "bgw", "--", "lsp-set-addresses", "bgw", "00:00:00:00:02:20 10.0.2.20",
		"--", "lr-route-add", "lr0", "192.168.9.0/24", "10.0.2.20")

	lctx, lcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer lcancel()
	c, err := sbload.Connect(lctx, []string{sb.Endpoint()}, ovsdbclient.WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	snap, err := sbload.Load(lctx, c)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := trace.New(snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Warnings) > 0 {
		t.Errorf("northd's flows do not all parse:\n%s", strings.Join(tr.Warnings, "\n"))
	}
	const fromA1 = `inport == "a1" && eth.src == 00:00:00:00:01:11 && eth.dst == 00:00:00:00:ff:01 && ip4.src == 10.0.1.11 && `
	for _, c := range []struct {
		name, microflow string
		delivered       []string // ports receiving a packet; nil: dropped
	}{
		{"routed", fromA1 + `ip4.dst == 10.0.2.11 && ip.ttl == 64 && icmp4.type == 8`, []string{"b1"}},
		{"static_route", fromA1 + `ip4.dst == 192.168.9.5 && ip.ttl == 64 && icmp4.type == 8`, []string{"bgw"}},
		{"router_ping", fromA1 + `ip4.dst == 10.0.2.1 && ip.ttl == 64 && icmp4.type == 8 && icmp4.code == 0`, []string{"a1"}},
		{"ttl_exceeded", fromA1 + `ip4.dst == 10.0.2.11 && ip.ttl == 1 && icmp4.type == 8`, []string{"a1"}},
		{"no_route", fromA1 + `ip4.dst == 172.16.5.5 && ip.ttl == 64 && icmp4.type == 8`, nil},
		{"wrong_router_mac", `inport == "a1" && eth.src == 00:00:00:00:01:11 && eth.dst == 00:00:00:00:ff:99 && ip4.src == 10.0.1.11 && ip4.dst == 10.0.2.11 && ip.ttl == 64 && icmp4.type == 8`, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := tr.Run("sw-a", c.microflow, trace.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var ports []string
			for _, o := range got.Outcomes {
				if o.Verdict == "output" {
					ports = append(ports, o.Port)
				}
			}
			slices.Sort(ports)
			minimal, err := exec.Command("ovn-trace", "--db="+sb.Endpoint(), "--minimal", "sw-a", c.microflow).Output()
			if err != nil {
				t.Fatalf("ovn-trace: %v\n%s", err, minimal)
			}
			theirs := delivered(string(minimal))
			if !slices.Equal(ports, c.delivered) || !slices.Equal(theirs, c.delivered) {
				t.Errorf("delivered: govn %v, ovn-trace %v, want %v\n--- govn\n%s--- ovn-trace\n%s",
					ports, theirs, c.delivered, got.String(trace.Minimal), minimal)
			}
			t.Logf("%s: %s", c.name, strings.Join(outcomeStrings(got), "; "))
		})
	}
}
