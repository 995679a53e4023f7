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

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
	"github.com/govn/govn/northd/run"
	"github.com/govn/govn/trace"
	"github.com/govn/govn/trace/sbload"
)

var nbDatabase = dbserver.Database{Name: nbdb.DatabaseName, Schema: nbdb.SchemaJSON, Base: "ovnnb_db", GlobalTable: "NB_Global"}

// TestNorthdDifferential configures a switch with ovn-nbctl (port
// security, ACLs, an address set), lets govn's northd write the southbound
// flows, and traces microflows with govn trace and the real ovn-trace over
// that southbound database: same minimal output, same visited flows, and
// govn names the northbound ACL or port behind each drop.
func TestNorthdDifferential(t *testing.T) {
	sb, nbctl := startNorthd(t)
	nb := nbctl.nb
	nbctl.run("--wait=sb", "ls-add", "sw0",
		"--", "lsp-add", "sw0", "p1", "--", "lsp-set-addresses", "p1", "00:00:00:00:00:01 10.0.0.1",
		"--", "lsp-set-port-security", "p1", "00:00:00:00:00:01 10.0.0.1",
		"--", "lsp-add", "sw0", "p2", "--", "lsp-set-addresses", "p2", "00:00:00:00:00:02 10.0.0.2",
		"--", "lsp-add", "sw0", "p3", "--", "lsp-set-addresses", "p3", "00:00:00:00:00:03 10.0.0.3",
		"--", "create", "Address_Set", "name=web_clients", `addresses="10.0.0.1","10.0.0.3"`)
	nbctl.run("--wait=sb", "acl-add", "sw0", "from-lport", "1001", `inport == "p1" && ip4 && tcp.dst == 22`, "drop",
		"--", "acl-add", "sw0", "from-lport", "1000", `ip4.src == $web_clients && tcp.dst == 80`, "allow-related",
		"--", "acl-add", "sw0", "to-lport", "1002", `outport == "p3" && icmp4`, "drop",
		"--", "acl-add", "sw0", "from-lport", "1003", `udp.dst == 53`, "reject")
	nbctl.run("--wait=sb", "--log", "--severity=alert", "acl-add", "sw0", "from-lport", "1004", `tcp.dst == 443`, "drop")
	nbctl.run("--wait=sb", "--log", "--name=web", "acl-add", "sw0", "to-lport", "1005", `tcp.dst == 8080`, "allow-related")
	sshACL := nbctl.run("--bare", "--columns=_uuid", "find", "ACL", "priority=1001")
	icmpACL := nbctl.run("--bare", "--columns=_uuid", "find", "ACL", "priority=1002")
	rejectACL := nbctl.run("--bare", "--columns=_uuid", "find", "ACL", "priority=1003")
	// A name without log=true (ovn-nbctl acl-add --name would turn logging on).
	nbctl.run("--wait=sb", "set", "ACL", sshACL, "name=deny-ssh")

	tr := loadTracer(t, sb.Endpoint(), nb.Endpoint())
	const (
		fromP1 = `inport == "p1" && eth.src == 00:00:00:00:00:01 && ip4.src == 10.0.0.1 && `
	)
	for _, c := range []struct {
		name, microflow string
		ct              []string
		delivered       []string
		reason          string // a drop reason substring (empty: no drop expected)
	}{
		{"delivered", fromP1 + `eth.dst == 00:00:00:00:00:02 && ip4.dst == 10.0.0.2 && tcp.dst == 80`, []string{"new", "new"}, []string{"p2"}, ""},
		{"delivered_est", fromP1 + `eth.dst == 00:00:00:00:00:02 && ip4.dst == 10.0.0.2 && tcp.dst == 80`, nil, []string{"p2"}, ""},
		{"acl_drop", fromP1 + `eth.dst == 00:00:00:00:00:02 && ip4.dst == 10.0.0.2 && tcp.dst == 22`, []string{"new"}, nil,
			`dropped by ACL "deny-ssh" (` + sshACL + `) (from-lport, priority 1001, match: inport == "p1" && ip4 && tcp.dst == 22, action drop)`},
		{"acl_drop_egress", fromP1 + `eth.dst == 00:00:00:00:00:03 && ip4.dst == 10.0.0.3 && icmp4`, []string{"new", "new"}, nil,
			"dropped by ACL " + icmpACL + ` (to-lport, priority 1002, match: outport == "p3" && icmp4, action drop)`},
		{"port_security_mac", `inport == "p1" && eth.src == 00:00:00:00:00:66 && eth.dst == 00:00:00:00:00:02 && ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.2`, nil, nil,
			"dropped by port security of logical switch port p1"},
		{"port_security_ip", `inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == 00:00:00:00:00:02 && ip4.src == 10.9.9.9 && ip4.dst == 10.0.0.2`, nil, nil,
			"dropped by port security of logical switch port p1"},
		{"acl_reject", fromP1 + `eth.dst == 00:00:00:00:00:02 && ip4.dst == 10.0.0.2 && udp.dst == 53`, []string{"new"}, []string{"p1"},
			"rejected by ACL " + rejectACL + " (from-lport, priority 1003, match: udp.dst == 53, action reject): answered by reject { }"},
		{"acl_log_drop", fromP1 + `eth.dst == 00:00:00:00:00:02 && ip4.dst == 10.0.0.2 && tcp.dst == 443`, []string{"new"}, nil, "dropped by ACL"},
		{"acl_log_allow", fromP1 + `eth.dst == 00:00:00:00:00:02 && ip4.dst == 10.0.0.2 && tcp.dst == 8080`, []string{"new", "new"}, []string{"p2"}, ""},
		{"flood", `inport == "p2" && eth.src == 00:00:00:00:00:02 && eth.dst == ff:ff:ff:ff:ff:ff`, nil, []string{"p1", "p3"}, ""},
		{"arp_reply", `inport == "p2" && eth.src == 00:00:00:00:00:02 && eth.dst == ff:ff:ff:ff:ff:ff && arp.op == 1 && arp.sha == 00:00:00:00:00:02 && arp.spa == 10.0.0.2 && arp.tpa == 10.0.0.1`,
			nil, []string{"p2"}, ""},
		{"unknown_dst", `inport == "p2" && eth.src == 00:00:00:00:00:02 && eth.dst == 00:00:00:00:00:99`, nil, nil, "dropped by ls_in_l2_unknown"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var opts trace.Options
			args := []string{"--db=" + sb.Endpoint()}
			for _, f := range c.ct {
				st, err := trace.ParseCTState(f)
				if err != nil {
					t.Fatal(err)
				}
				opts.CT = append(opts.CT, st)
				args = append(args, "--ct="+f)
			}
			got, err := tr.Run("sw0", c.microflow, opts)
			if err != nil {
				t.Fatal(err)
			}
			var ports []string
			var reasons []string
			for _, o := range got.Outcomes {
				if o.Verdict == "output" {
					ports = append(ports, o.Port)
				} else {
					reasons = append(reasons, o.Reason)
				}
			}
			slices.Sort(ports)
			if !slices.Equal(ports, c.delivered) {
				t.Errorf("delivered to %v, want %v\n%s", ports, c.delivered, got.String(trace.Detailed))
			}
			if c.reason != "" && !strings.Contains(strings.Join(reasons, "\n"), c.reason) {
				t.Errorf("drop reasons %q lack %q\n%s", reasons, c.reason, got.String(trace.Detailed))
			}
			minimal, err := exec.Command("ovn-trace", append(append(args, "--minimal"), "sw0", c.microflow)...).Output()
			if err != nil {
				t.Fatalf("ovn-trace: %v\n%s", err, minimal)
			}
			if ours, theirs := canonLog(minimalBody(got.String(trace.Minimal))), canonLog(minimalBody(string(minimal))); !sameMinimal(ours, theirs) {
				t.Errorf("minimal output differs\n--- govn\n%s--- ovn-trace\n%s", ours, theirs)
			}
			if !slices.Equal(delivered(string(minimal)), c.delivered) {
				t.Errorf("ovn-trace delivers to %v, want %v", delivered(string(minimal)), c.delivered)
			}
			det, err := exec.Command("ovn-trace", append(append(args, "--detailed"), "sw0", c.microflow)...).Output()
			if err != nil {
				t.Fatalf("ovn-trace: %v\n%s", err, det)
			}
			if ours, theirs := visited(got.String(trace.Detailed)), visited(string(det)); !slices.Equal(ours, theirs) {
				t.Errorf("visited flows differ\n--- govn\n%s\n--- ovn-trace\n%s", strings.Join(ours, "\n"), det)
			}
			t.Logf("%s: %s", c.name, strings.Join(outcomeStrings(got), "; "))
		})
	}
}

// nbctlFunc runs the real ovn-nbctl against the test's northbound database.
type nbctlFunc struct {
	nb  *dbserver.Server
	run func(args ...string) string
}

// startNorthd starts real NB and SB ovsdb-servers and govn's northd between
// them (stopped with the test), skipping when OVS or the OVN tools are
// missing. It returns the SB server and an ovn-nbctl runner on the NB.
func startNorthd(t *testing.T) (*dbserver.Server, nbctlFunc) {
	t.Helper()
	dbservertest.RequireOVS(t)
	for _, b := range []string{"ovn-nbctl", "ovn-trace"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (apt install ovn-central)", b)
		}
	}
	nb := dbservertest.Start(t, nbDatabase, "", nil)
	sb := dbservertest.Start(t, sbDatabase, "", nil)
	nbctl := nbctlFunc{nb: nb, run: func(args ...string) string {
		return strings.TrimSpace(dbservertest.Run(t, "ovn-nbctl", append([]string{"--db=" + nb.Endpoint(), "--timeout=30"}, args...)...))
	}}
	nbctl.run("init")
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
	return sb, nbctl
}

// loadTracer reads the SB (and, if nbRemote is set, the NB ACL names) into a
// tracer, failing the test if any of northd's flows does not parse.
func loadTracer(t *testing.T, sbRemote, nbRemote string) *trace.Tracer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sbload.Connect(ctx, []string{sbRemote}, ovsdbclient.WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	snap, err := sbload.Load(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if nbRemote != "" {
		nc, err := sbload.ConnectNB(ctx, []string{nbRemote}, ovsdbclient.WithLogger(zaptest.NewLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if err := sbload.LoadACLs(ctx, nc, snap); err != nil {
			t.Fatal(err)
		}
	}
	tr, err := trace.New(snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Warnings) > 0 {
		t.Errorf("northd's flows do not all parse:\n%s", strings.Join(tr.Warnings, "\n"))
	}
	return tr
}
