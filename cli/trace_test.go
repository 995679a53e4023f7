package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/api/server"
	ctlrun "github.com/govn/govn/controller/run"
	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovstest"
	northdrun "github.com/govn/govn/northd/run"
	"github.com/govn/govn/sbdb"
	"github.com/govn/govn/trace"
	"github.com/govn/govn/trace/sbload"
)

const (
	traceFixture = "../trace/testdata/switch.json"
	mfDelivered  = `inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == 00:00:00:00:00:02 && ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.2 && tcp.dst == 80`
	mfSSH        = `inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == 00:00:00:00:00:02 && ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.2 && tcp.dst == 22`
)

func TestTraceSnapshotForms(t *testing.T) {
	out, errOut, code := runCtl(t, "trace", "--snapshot", traceFixture, "--ct", "new", "sw0", mfSSH)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{`ingress(dp="sw0", inport="p1")`, "ct_next(ct_state=new|trk)",
		" 5. ls_in_acl: reg0[9] == 1 && (ip4 && tcp.dst == 22), priority 2001, uuid 00001014",
		"* dropped by ACL 00000000-0000-0000-0003-000000000001 (from-lport, priority 1001"} {
		if !strings.Contains(out, want) {
			t.Errorf("detailed output lacks %q:\n%s", want, out)
		}
	}
	out, errOut, code = runCtl(t, "trace", "--snapshot", traceFixture, "--summary", "--minimal", mfDelivered)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"SUMMARY\n=======\n", "MINIMAL\n=======\n", "        output(\"p2\");\n",
		`egress(dp="sw0", inport="p1", outport="p2") {`} {
		if !strings.Contains(out, want) {
			t.Errorf("summary+minimal output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "DETAILED") {
		t.Errorf("detailed output printed although not asked for:\n%s", out)
	}
}

func TestTraceJSON(t *testing.T) {
	out, errOut, code := runCtl(t, "-o", "json", "trace", "--snapshot", traceFixture, "sw0",
		`inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == ff:ff:ff:ff:ff:ff`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var tr trace.Trace
	if err := json.Unmarshal([]byte(out), &tr); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var ports []string
	for _, o := range tr.Outcomes {
		if o.Verdict == "output" {
			ports = append(ports, o.Port)
		}
	}
	if strings.Join(ports, ",") != "p2,p3" || tr.Root == nil || tr.Root.Type != trace.NodePipeline {
		t.Errorf("flood: delivered %v, root %+v", ports, tr.Root)
	}
}

func TestTraceErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"sw0", `inport == "p1" && ip4.dst = 10.0.0.2`}, []string{"microflow 1:19: \"ip4.dst\" is a 32-bit field, not a Boolean", "\n  inport == \"p1\" && ip4.dst = 10.0.0.2\n                    ^"}},
		{[]string{"sw0", `inport == "p9"`}, []string{`microflow 1:11: unknown logical port "p9" in datapath sw0`}},
		{[]string{"sw0", `inport == "p1" && (ip4.dst == 10.0.0.2 || ip4.dst == 10.0.0.3)`}, []string{"microflow 1:40: a microflow describes one packet"}},
		{[]string{"sw0", `inport == "p1" && tcp.dst > 1024`}, []string{"microflow 1:19: tcp.dst > ... does not give tcp.dst one value"}},
		{[]string{"nosuch", `inport == "p1"`}, []string{`unknown datapath "nosuch" (known: sw0)`}},
		{[]string{"--ct", "new,bogus", "sw0", `inport == "p1"`}, []string{`unknown flag "bogus"`}},
		{[]string{"--lb-dst", "10.0.0.300", "sw0", `inport == "p1"`}, []string{`--lb-dst "10.0.0.300"`}},
	} {
		_, errOut, code := runCtl(t, append([]string{"trace", "--snapshot", traceFixture}, c.args...)...)
		if code != ExitUserError {
			t.Errorf("%v: exit %d, want %d (%s)", c.args, code, ExitUserError, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: error lacks %q:\n%s", c.args, w, errOut)
			}
		}
	}
}

// TestTraceFromSouthbound reads a real southbound ovsdb-server.
func TestTraceFromSouthbound(t *testing.T) {
	dbservertest.RequireOVS(t)
	b, err := os.ReadFile(traceFixture)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := trace.ParseSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	srv := dbservertest.Start(t, dbserver.Database{Name: sbdb.DatabaseName, Schema: sbdb.SchemaJSON, Base: "ovnsb_db", GlobalTable: "SB_Global"}, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sbload.Connect(ctx, []string{srv.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	ops, err := sbload.StoreOps(c, nil, snap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transact(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	c.Close()
	t.Setenv("GOVN_SB", srv.Endpoint())
	out, errOut, code := runCtl(t, "trace", "--minimal", "--ct", "new", "--ct", "new", "sw0", mfDelivered)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "ct_next(ct_state=new|trk) {\n    ct_next(ct_state=new|trk) {\n        output(\"p2\");\n    };\n};\n"
	if i := strings.IndexByte(out, '\n'); i < 0 || out[i+1:] != want {
		t.Errorf("got\n%s\nwant (after the packet line)\n%s", out, want)
	}
	// No server there: a connection error, exit code 2.
	dead := "unix:" + filepath.Join(dbservertest.ShortTempDir(t), "none.sock")
	_, errOut, code = runCtl(t, "--timeout", "1s", "trace", "--sb", dead, "sw0", mfDelivered)
	if code != ExitServer || !strings.Contains(errOut, "southbound database") {
		t.Errorf("dead server: exit %d, %s", code, errOut)
	}
	_, errOut, code = runCtl(t, "--timeout", "1s", "trace", "--nb", dead, "sw0", mfDelivered)
	if code != ExitServer || !strings.Contains(errOut, "northbound database") {
		t.Errorf("dead NB server: exit %d, %s", code, errOut)
	}
}

// TestTraceOVS runs govn's controller (in process) on a real ovs-vswitchd
// against a southbound database holding the switch fixture, binds p1, p2
// and p3 to local interfaces, and checks `govnctl trace --ovs` against the
// real switch: ofproto/trace of the same packet passes through the logical
// flows govn's trace predicts (mapped back from the OpenFlow cookies), and
// delivers or drops the packet as predicted.
func TestTraceOVS(t *testing.T) {
	if err := ovstest.Available(); err != nil {
		t.Skipf("OVS: %v", err)
	}
	b, err := os.ReadFile(traceFixture)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := trace.ParseSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	srv := dbservertest.Start(t, dbserver.Database{Name: sbdb.DatabaseName, Schema: sbdb.SchemaJSON, Base: "ovnsb_db", GlobalTable: "SB_Global"}, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sbload.Connect(ctx, []string{srv.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	ops, err := sbload.StoreOps(c, nil, snap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transact(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	c.Close()
	v := ovstest.Start(t, ovstest.Options{PrivateNetns: true, ExternalIDs: map[string]string{
		"system-id": "ch1", "ovn-remote": srv.Endpoint(), "ovn-encap-type": "geneve",
		"ovn-encap-ip": "172.16.0.1", "ovn-bridge-datapath-type": "netdev"}})
	ctrl := ctlrun.New(ctlrun.Options{OVS: v.DBRemote(), RunDir: v.RunDir(), Hostname: "h1", Conditional: true,
		Resync: time.Second, Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	cctx, ccancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(cctx) }()
	t.Cleanup(func() { ccancel(); <-done })
	select {
	case <-ctrl.Ready():
	case err := <-done:
		t.Fatalf("controller exited: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("controller not ready after 60s")
	}
	for _, p := range []string{"p1", "p2", "p3"} {
		if _, err := v.Vsctl("add-port", "br-int", "v"+p, "--", "set", "Interface", "v"+p, "type=internal", "external_ids:iface-id="+p); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		Trace *trace.Trace `json:"trace"`
		OVS   struct {
			InPort          uint32              `json:"in_port"`
			Output          string              `json:"output"`
			LogicalFlows    []trace.DetraceLine `json:"logical_flows"`
			DatapathActions string              `json:"datapath_actions"`
		} `json:"ovs"`
	}
	runOVS := func(args ...string) (result, string) {
		var r result
		out, errOut, code := runCtl(t, append([]string{"-o", "json", "trace", "--sb", srv.Endpoint(), "--ovs", v.RunDir()}, args...)...)
		if code != 0 {
			return r, errOut
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return r, ""
	}
	for _, c := range []struct {
		name string
		args []string
		drop bool
	}{
		{"delivered", []string{"--ct", "new", "--ct", "new", "sw0", mfDelivered}, false},
		{"acl_drop", []string{"--ct", "new", "sw0", mfSSH}, true},
		{"port_security", []string{"sw0", `inport == "p1" && eth.src == 00:00:00:00:00:66 && eth.dst == 00:00:00:00:00:02 && ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.2 && udp.dst == 53`}, true},
		{"flood", []string{"sw0", `inport == "p2" && eth.src == 00:00:00:00:00:02 && eth.dst == ff:ff:ff:ff:ff:ff`}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r result
			deadline := time.Now().Add(60 * time.Second)
			for {
				var msg string
				r, msg = runOVS(c.args...)
				// Until the controller has bound the ports and installed the
				// flows, OVS drops everything (at table 0, or at the local
				// output of a port not bound yet).
				if msg == "" && len(r.OVS.LogicalFlows) > 0 && (c.drop || delivers(r.OVS.DatapathActions)) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no logical flows in the OVS trace after 60s: %s\n%s", msg, r.OVS.Output)
				}
				time.Sleep(500 * time.Millisecond)
			}
			seen := map[string]bool{}
			for _, l := range r.OVS.LogicalFlows {
				seen[l.Flow.UUID] = true
			}
			for _, u := range visitedUUIDs(r.Trace.Root) {
				if !seen[u] {
					t.Errorf("govn trace visits logical flow %s, the OpenFlow trace does not\n%s", u, r.OVS.Output)
				}
			}
			if dropped := !delivers(r.OVS.DatapathActions); dropped != c.drop {
				t.Errorf("OVS datapath actions %q; govn trace predicts drop=%v (%v)", r.OVS.DatapathActions, c.drop, r.Trace.Outcomes)
			}
			if c.drop {
				var last *trace.FlowHit
				for _, o := range r.Trace.Outcomes {
					last = o.Flow
				}
				got := r.OVS.LogicalFlows[len(r.OVS.LogicalFlows)-1].Flow
				if last == nil || got.UUID != last.UUID {
					t.Errorf("the last logical flow OVS ran is %+v; govn trace says %+v dropped the packet", got, last)
				}
			}
		})
	}
}

// delivers reports whether datapath actions output the packet (a bare
// datapath port number among them).
var outputAction = regexp.MustCompile(`(^|,)[0-9]+(,|$)`)

func delivers(actions string) bool { return outputAction.MatchString(actions) }

// visitedUUIDs lists the logical flows in a trace tree, in order.
func visitedUUIDs(n *trace.Node) []string {
	var out []string
	if n.Type == trace.NodeTable && n.Flow != nil {
		out = append(out, n.Flow.UUID)
	}
	for _, c := range n.Children {
		out = append(out, visitedUUIDs(c)...)
	}
	return out
}

// TestTraceServer: with --server (or GOVN_SERVER) and no --sb, govnctl
// trace asks the API server's Trace RPC, and prints exactly what reading
// the southbound database directly prints (stdout, stderr, exit code), for
// every output form and for errors. The databases are real, the flows
// govn's northd's, the switch configured with govnctl itself.
func TestTraceServer(t *testing.T) {
	dbservertest.RequireOVS(t)
	t.Setenv("GOVN_SB", "")
	t.Setenv("GOVN_NB", "")
	t.Setenv("GOVN_SERVER", "")
	nb := dbservertest.Start(t, nbDatabase, "", nil)
	sb := dbservertest.Start(t, dbserver.Database{Name: sbdb.DatabaseName, Schema: sbdb.SchemaJSON, Base: sbdb.FileBase, GlobalTable: sbdb.GlobalTable}, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	nd, err := northdrun.Start(ctx, northdrun.Config{NB: []string{nb.Endpoint()}, SB: []string{sb.Endpoint()},
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = nd.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; nd.Close() })
	api, err := server.Start(t.Context(), server.Config{NB: []string{nb.Endpoint()}, SB: []string{sb.Endpoint()}, Listen: "127.0.0.1:0",
		Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Stop)
	ctl := func(args ...string) (string, string, int) {
		return runCtl(t, append([]string{"--server", api.Addr(), "--timeout", "20s"}, args...)...)
	}
	for _, args := range [][]string{
		{"ls", "add", "sw0"},
		{"lsp", "add", "sw0", "p1", "--address", "00:00:00:00:00:01 10.0.0.1", "--port-security", "00:00:00:00:00:01 10.0.0.1"},
		{"lsp", "add", "sw0", "p2", "--address", "00:00:00:00:00:02 10.0.0.2"},
		{"--wait=sb", "acl", "add", "sw0", "from-lport", "1001", `inport == "p1" && tcp.dst == 22`, "drop", "--name", "deny-ssh"},
	} {
		if _, errOut, code := ctl(args...); code != ExitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
	}

	direct := []string{"--sb", sb.Endpoint(), "--nb", nb.Endpoint()}
	for _, c := range []struct {
		args []string
		code int
		want string // in stdout+stderr (code 0) or stderr
	}{
		{[]string{"sw0", mfDelivered}, 0, `* output to "p2" (datapath sw0)`},
		{[]string{mfSSH}, 0, `* dropped by ACL "deny-ssh"`},
		{[]string{"--summary", "--minimal", "--ct", "new", "--ct", "new", mfDelivered}, 0, "MINIMAL\n=======\n"},
		{[]string{"-o", "json", "sw0", mfSSH}, 0, `"verdict": "drop"`},
		{[]string{"-o", "yaml", "--lb-dst", "10.0.0.2:80", mfDelivered}, 0, "verdict: output"},
		// The IP version is left open: a warning on stderr (and a drop by
		// p1's egress port security, as the packet's ip4.dst is 0).
		{[]string{"--minimal", `inport == "p2" && eth.src == 00:00:00:00:00:02 && eth.dst == 00:00:00:00:00:01 && ip`}, 0, "warning: microflow leaves the packet type open"},
		{[]string{"sw0", `inport == "p1" && ip4.dst = 10.0.0.2`}, 1, "microflow 1:19: \"ip4.dst\" is a 32-bit field, not a Boolean: compare it explicitly (e.g. `ip4.dst != 0`)\n  inport == \"p1\" && ip4.dst = 10.0.0.2\n                    ^"},
		{[]string{"nosuch", mfDelivered}, 1, `unknown datapath "nosuch" (known: sw0)`},
		{[]string{`inport == "p9" && eth.dst == 00:00:00:00:00:02`}, 1, `inport "p9" is no logical port`},
		{[]string{"--ct", "bogus", mfDelivered}, 1, `unknown flag "bogus"`},
	} {
		viaAPI := append([]string{"--server", api.Addr(), "--timeout", "10s", "trace"}, c.args...)
		out, errOut, code := runCtl(t, viaAPI...)
		dOut, dErr, dCode := runCtl(t, append(append([]string{"trace"}, direct...), c.args...)...)
		if code != c.code || !strings.Contains(map[bool]string{true: out + errOut, false: errOut}[c.code == 0], c.want) {
			t.Errorf("govnctl %v: exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", viaAPI, code, c.code, c.want, out, errOut)
		}
		if out != dOut || errOut != dErr || code != dCode {
			t.Errorf("govnctl %v differs from the direct trace:\n--- API (exit %d)\n%s%s\n--- direct (exit %d)\n%s%s", viaAPI, code, out, errOut, dCode, dOut, dErr)
		}
	}

	// GOVN_SERVER alone selects the API too; --sb overrides it (the dead
	// server is not asked).
	t.Setenv("GOVN_SERVER", api.Addr())
	if out, errOut, code := runCtl(t, "trace", "--minimal", mfDelivered); code != 0 || !strings.Contains(out, `output("p2")`) {
		t.Errorf("GOVN_SERVER: exit %d\n%s%s", code, out, errOut)
	}
	dead := "unix:" + filepath.Join(dbservertest.ShortTempDir(t), "none.sock")
	if out, errOut, code := runCtl(t, "--server", dead, "trace", "--sb", sb.Endpoint(), "--minimal", mfDelivered); code != 0 || !strings.Contains(out, `output("p2")`) {
		t.Errorf("--sb with a dead --server: exit %d\n%s%s", code, out, errOut)
	}
	t.Setenv("GOVN_SERVER", "")
	// No API server there: exit 2.
	if _, errOut, code := runCtl(t, "--server", dead, "--timeout", "2s", "trace", mfDelivered); code != ExitServer || !strings.Contains(errOut, "cannot reach the govn API") {
		t.Errorf("dead server: exit %d %s", code, errOut)
	}
	// What only direct mode can do.
	for _, args := range [][]string{{"--ovs", "local"}, {"--nb", nb.Endpoint()}} {
		_, errOut, code := ctl(append(append([]string{"trace"}, args...), mfDelivered)...)
		if code != ExitUserError || !strings.Contains(errOut, "--sb") {
			t.Errorf("trace %v via the API: exit %d %s", args, code, errOut)
		}
	}
	// An API server without --sb: a user error that says what to do.
	plain := startAPI(t)
	if _, errOut, code := plain.govnctl("trace", mfDelivered); code != ExitUserError ||
		!strings.Contains(errOut, "the API server was started without --sb") || !strings.Contains(errOut, "govnctl trace --sb REMOTE") {
		t.Errorf("API without --sb: exit %d %s", code, errOut)
	}
}
