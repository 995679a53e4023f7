package run

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/internal/ovstest"
	"github.com/govn/govn/sbdb"
)

var sbDatabase = dbserver.Database{Name: sbdb.DatabaseName, Schema: sbdb.SchemaJSON, Base: "ovnsb_db", GlobalTable: "SB_Global"}

// env is a real southbound ovsdb-server, a real OVS in its own network
// namespace, and a southbound client for the test's own reads and writes.
type env struct {
	t        testing.TB
	sb       *ovsdbclient.Client
	ovs      *ovstest.OVS
	sbRemote string
}

func newEnv(t testing.TB, systemID, encapIP string) *env {
	srv := dbservertest.Start(t, sbDatabase, "", nil)
	v := ovstest.Start(t, ovstest.Options{PrivateNetns: true, ExternalIDs: map[string]string{
		"system-id": systemID, "ovn-remote": srv.Endpoint(), "ovn-encap-type": "geneve",
		"ovn-encap-ip": encapIP, "ovn-bridge-datapath-type": "netdev",
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := sbdb.NewClient(ctx, []string{srv.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &env{t: t, sb: c, ovs: v, sbRemote: srv.Endpoint()}
}

func (e *env) transact(ops []ovsdb.Operation, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.sb.Transact(ctx, ops...); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) vsctl(args ...string) string {
	e.t.Helper()
	out, err := e.ovs.Vsctl(args...)
	if err != nil {
		e.t.Fatalf("ovs-vsctl %v: %v", args, err)
	}
	return out
}

// eventually polls cond until it returns "" or the deadline passes.
func eventually(t *testing.T, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		if last = cond(); last == "" {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %s", what, last)
}

func (e *env) port(name string) *sbdb.PortBinding {
	p, err := ovsdbclient.Lookup(e.sb, &sbdb.PortBinding{LogicalPort: name})
	if err != nil {
		return nil
	}
	return p
}

func (e *env) chassisName(uuid *string) string {
	if uuid == nil {
		return ""
	}
	ch, err := ovsdbclient.Lookup(e.sb, &sbdb.Chassis{UUID: *uuid})
	if err != nil {
		return "?" + *uuid
	}
	return ch.Name
}

// populate writes one logical switch (key 1) with ports a, b (key 1, 2),
// port c (key 3) bound to chassis ch2 (encap 172.16.0.2), _MC_flood and
// three logical flows.
func (e *env) populate() {
	dp := &sbdb.DatapathBinding{UUID: "dp1", TunnelKey: 1, ExternalIDs: map[string]string{"name": "ls1"}}
	ops, err := ovsdbclient.CreateOps(e.sb, nil, dp)
	if err != nil {
		e.t.Fatal(err)
	}
	ch2 := &sbdb.Chassis{UUID: "ch2row", Name: "ch2", Hostname: "h2"}
	if ops, err = sbdb.CreateChassisOps(e.sb, ops, ch2, &sbdb.Encap{Type: sbdb.EncapTypeGeneve, IP: "172.16.0.2"}); err != nil {
		e.t.Fatal(err)
	}
	var pbs []*sbdb.PortBinding
	for i, n := range []string{"a", "b", "c"} {
		pb := &sbdb.PortBinding{UUID: "pb" + n, LogicalPort: n, TunnelKey: i + 1, Datapath: "dp1", MAC: []string{fmt.Sprintf("00:00:00:00:00:0%d 10.0.0.%d", i+1, i+1)}}
		if n == "c" {
			pb.Chassis = &ch2.UUID
		}
		pbs = append(pbs, pb)
		if ops, err = ovsdbclient.CreateOps(e.sb, ops, pb); err != nil {
			e.t.Fatal(err)
		}
	}
	mg := &sbdb.MulticastGroup{Datapath: "dp1", Name: "_MC_flood", TunnelKey: 32768, Ports: []string{"pba", "pbb", "pbc"}}
	dpRef := "dp1"
	flows := []*sbdb.LogicalFlow{
		{Pipeline: sbdb.LogicalFlowPipelineIngress, TableID: 0, Priority: 50, Match: `inport == "a" && eth.src == 00:00:00:00:00:01`, Actions: "next;", LogicalDatapath: &dpRef},
		{Pipeline: sbdb.LogicalFlowPipelineIngress, TableID: 1, Priority: 50, Match: `eth.dst == 00:00:00:00:00:03`, Actions: `outport = "c"; output;`, LogicalDatapath: &dpRef},
		{Pipeline: sbdb.LogicalFlowPipelineIngress, TableID: 1, Priority: 70, Match: `eth.mcast`, Actions: `outport = "_MC_flood"; output;`, LogicalDatapath: &dpRef},
		{Pipeline: sbdb.LogicalFlowPipelineEgress, TableID: 0, Priority: 0, Match: "1", Actions: "output;", LogicalDatapath: &dpRef},
		{Pipeline: sbdb.LogicalFlowPipelineEgress, TableID: 1, Priority: 5, Match: "bogus.field == 1", Actions: "output;", LogicalDatapath: &dpRef},
	}
	if ops, err = ovsdbclient.CreateOps(e.sb, ops, mg); err != nil {
		e.t.Fatal(err)
	}
	for _, f := range flows {
		if ops, err = ovsdbclient.CreateOps(e.sb, ops, f); err != nil {
			e.t.Fatal(err)
		}
	}
	e.transact(ops, nil)
	// nb_cfg to acknowledge.
	var gs []sbdb.SBGlobal
	if err := e.sb.List(context.Background(), &gs); err != nil || len(gs) != 1 {
		e.t.Fatalf("SB_Global: %v %v", gs, err)
	}
	g := gs[0]
	g.NbCfg = 5
	e.transact(ovsdbclient.UpdateOps(e.sb, nil, &g, &g.NbCfg))
}

// runResult is a controller's Run outcome: done is closed when Run returns.
type runResult struct {
	done chan struct{}
	err  error
}

func (r *runResult) wait() error {
	<-r.done
	return r.err
}

func startController(t *testing.T, e *env, o Options) (*Controller, context.CancelFunc, *runResult) {
	t.Helper()
	o.OVS = e.ovs.DBRemote()
	o.RunDir = e.ovs.RunDir()
	o.Log = zaptest.NewLogger(t)
	o.Hostname = "host1"
	o.Resync = time.Second
	c := New(o)
	ctx, cancel := context.WithCancel(context.Background())
	res := &runResult{done: make(chan struct{})}
	go func() {
		res.err = c.Run(ctx)
		close(res.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-res.done
	})
	select {
	case <-c.Ready():
	case <-res.done:
		t.Fatalf("controller exited: %v", res.err)
	case <-time.After(30 * time.Second):
		t.Fatal("controller not ready after 30s")
	}
	return c, cancel, res
}

func (e *env) dumpFlows() string {
	e.t.Helper()
	out, err := e.ovs.Ofctl("-O", "OpenFlow15", "--no-stats", "dump-flows", "br-int")
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func TestControllerEndToEnd(t *testing.T) {
	for _, conditional := range []bool{true, false} {
		t.Run(fmt.Sprintf("conditional=%v", conditional), func(t *testing.T) {
			testController(t, conditional)
		})
	}
}

func testController(t *testing.T, conditional bool) {
	e := newEnv(t, "ch1", "172.16.0.1")
	e.populate()
	// br-int does not exist yet: the controller creates it. The VIF for a
	// is added once the bridge is there.
	c, cancel, done := startController(t, e, Options{Conditional: conditional, MetricsAddr: "127.0.0.1:0"})

	// Bridge settings.
	if out := e.vsctl("get", "Bridge", "br-int", "fail_mode", "datapath_type"); !strings.Contains(out, "secure") || !strings.Contains(out, "netdev") {
		t.Errorf("br-int fail_mode/datapath_type = %q", out)
	}
	// Chassis registration with its Geneve encap, Chassis_Private, nb_cfg ack.
	eventually(t, "chassis registered", func() string {
		ch, err := ovsdbclient.Lookup(e.sb, &sbdb.Chassis{Name: "ch1"})
		if err != nil {
			return err.Error()
		}
		if len(ch.Encaps) != 1 || ch.Hostname != "host1" {
			return fmt.Sprintf("chassis %+v", ch)
		}
		enc, err := ovsdbclient.Lookup(e.sb, &sbdb.Encap{UUID: ch.Encaps[0]})
		if err != nil || enc.IP != "172.16.0.1" || enc.Type != sbdb.EncapTypeGeneve {
			return fmt.Sprintf("encap %+v %v", enc, err)
		}
		cp, err := ovsdbclient.Lookup(e.sb, &sbdb.ChassisPrivate{Name: "ch1"})
		if err != nil || cp.Chassis == nil || *cp.Chassis != ch.UUID || cp.NbCfg != 5 {
			return fmt.Sprintf("chassis_private %+v %v", cp, err)
		}
		return ""
	})
	// Tunnel to ch2.
	eventually(t, "tunnel to ch2", func() string {
		out := e.vsctl("--columns=name,options", "find", "Interface", "type=geneve")
		if !strings.Contains(out, `remote_ip="172.16.0.2"`) || !strings.Contains(out, `key=flow`) {
			return "geneve interfaces: " + out
		}
		return ""
	})
	// Plug a: claim, up, flows.
	e.vsctl("add-port", "br-int", "va", "--", "set", "Interface", "va", "type=internal", "external_ids:iface-id=a")
	eventually(t, "a claimed", func() string {
		p := e.port("a")
		if p == nil || e.chassisName(p.Chassis) != "ch1" || p.Up == nil || !*p.Up {
			return fmt.Sprintf("port a = %+v", p)
		}
		return ""
	})
	eventually(t, "flows for a", func() string {
		flows := e.dumpFlows()
		for _, want := range []string{
			"in_port=", "set_field:0x1->metadata,set_field:0x1->reg14", // classification of a
			"table=8,", "dl_src=00:00:00:00:00:01", // the port security logical flow
			"table=41,", "output:", // remote output for c
		} {
			if !strings.Contains(flows, want) {
				return fmt.Sprintf("no %q in\n%s", want, flows)
			}
		}
		return ""
	})
	if c.ChassisUUID() == "" {
		t.Error("ChassisUUID empty")
	}
	// Metrics and health.
	resp, err := http.Get("http://" + c.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"govn_controller_compute_seconds_count", "govn_controller_sb_events_total",
		"govn_controller_openflow_installed_flows", "govn_controller_logical_flow_errors 1"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metric %s missing", m)
		}
	}
	eventually(t, "healthy", func() string {
		resp, err := http.Get("http://" + c.MetricsAddr().String() + "/healthz")
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			return string(b)
		}
		return ""
	})

	// A new nb_cfg is acknowledged.
	var gs []sbdb.SBGlobal
	if err := e.sb.List(context.Background(), &gs); err != nil {
		t.Fatal(err)
	}
	gs[0].NbCfg = 6
	e.transact(ovsdbclient.UpdateOps(e.sb, nil, &gs[0], &gs[0].NbCfg))
	eventually(t, "nb_cfg 6 acknowledged", func() string {
		cp, err := ovsdbclient.Lookup(e.sb, &sbdb.ChassisPrivate{Name: "ch1"})
		if err != nil || cp.NbCfg != 6 {
			return fmt.Sprintf("%+v %v", cp, err)
		}
		return ""
	})

	// Chassis ch2 goes away: its tunnel is removed.
	ch2, err := ovsdbclient.Lookup(e.sb, &sbdb.Chassis{Name: "ch2"})
	if err != nil {
		t.Fatal(err)
	}
	e.transact(ovsdbclient.DeleteOps(e.sb, nil, ch2))
	eventually(t, "tunnel to ch2 removed", func() string {
		if out := e.vsctl("--columns=name", "find", "Interface", "type=geneve"); strings.TrimSpace(out) != "" {
			return "geneve interfaces left: " + out
		}
		return ""
	})

	// Unplug a: released.
	e.vsctl("del-port", "br-int", "va")
	eventually(t, "a released", func() string {
		p := e.port("a")
		if p == nil || p.Chassis != nil || p.Up == nil || *p.Up {
			return fmt.Sprintf("port a = %+v", p)
		}
		return ""
	})

	// Clean shutdown removes the registration.
	cancel()
	if err := done.wait(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	eventually(t, "chassis unregistered", func() string {
		if _, err := ovsdbclient.Lookup(e.sb, &sbdb.Chassis{Name: "ch1"}); err == nil {
			return "Chassis ch1 still there"
		}
		if _, err := ovsdbclient.Lookup(e.sb, &sbdb.ChassisPrivate{Name: "ch1"}); err == nil {
			return "Chassis_Private ch1 still there"
		}
		return ""
	})
}

// TestRestartReconciles restarts the controller (keeping the registration)
// and checks that the second one installs nothing: flows are reconciled
// against what is installed, not flushed, and the conntrack zones survive.
func TestRestartReconciles(t *testing.T) {
	e := newEnv(t, "ch1", "172.16.0.1")
	e.populate()
	e.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev", "fail_mode=secure")
	e.vsctl("add-port", "br-int", "vb", "--", "set", "Interface", "vb", "type=internal", "external_ids:iface-id=b")
	e.vsctl("add-port", "br-int", "va", "--", "set", "Interface", "va", "type=internal", "external_ids:iface-id=a")
	c1, cancel1, done1 := startController(t, e, Options{Conditional: true, KeepOnExit: true})
	eventually(t, "a and b claimed", func() string {
		for _, n := range []string{"a", "b"} {
			if p := e.port(n); p == nil || e.chassisName(p.Chassis) != "ch1" {
				return fmt.Sprintf("port %s = %+v", n, p)
			}
		}
		return ""
	})
	// Let it settle, then remember the flows.
	var before string
	eventually(t, "flows stable", func() string {
		f1 := e.dumpFlows()
		time.Sleep(300 * time.Millisecond)
		if f2 := e.dumpFlows(); f1 != f2 || !strings.Contains(f1, "reg13") {
			return "flows still changing"
		}
		// c is on ch2: its flows need the tunnel port's OpenFlow number,
		// which ovs-vswitchd may assign later than the rest settles.
		if !strings.Contains(f1, "reg15=0x3,metadata=0x1 actions=set_field:0x1->tun_id") {
			return "no tunnel flow for c yet"
		}
		before = f1
		return ""
	})
	zones1 := fmt.Sprint(c1.zones)
	cancel1()
	if err := done1.wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := ovsdbclient.Lookup(e.sb, &sbdb.Chassis{Name: "ch1"}); err != nil {
		t.Fatalf("chassis removed on a keep-on-exit shutdown: %v", err)
	}
	// Make the second controller see ports in the other order of
	// allocation: new zones would differ unless recovered.
	c2, _, _ := startController(t, e, Options{Conditional: true})
	if got := c2.m.openflow; got == nil {
		t.Fatal("no openflow metrics")
	}
	if z := fmt.Sprint(c2.zones); z != zones1 {
		t.Errorf("zones after restart %s, before %s", z, zones1)
	}
	if after := e.dumpFlows(); after != before {
		t.Errorf("flows changed across restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if n := c2.FlowMods(); n != 0 {
		t.Errorf("restarted controller applied %d flow modifications, want 0", n)
	}
}

// scrapeMetric reads one sample (name with its labels, as exposed) from
// the controller's /metrics.
func scrapeMetric(t *testing.T, c *Controller, sample string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + c.MetricsAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metric %s: %v", line, err)
			}
			return f, true
		}
	}
	return 0, false
}

func TestForceRecompute(t *testing.T) {
	e := newEnv(t, "ch1", "172.16.0.1")
	e.populate()
	e.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev", "fail_mode=secure")
	e.vsctl("add-port", "br-int", "va", "--", "set", "Interface", "va", "type=internal", "external_ids:iface-id=a")
	c, _, _ := startController(t, e, Options{Conditional: true, MetricsAddr: "127.0.0.1:0"})
	var before string
	eventually(t, "flows stable", func() string {
		f1 := e.dumpFlows()
		time.Sleep(300 * time.Millisecond)
		if f2 := e.dumpFlows(); f1 != f2 || !strings.Contains(f1, "dl_src=00:00:00:00:00:01") ||
			!strings.Contains(f1, "reg15=0x3,metadata=0x1 actions=set_field:0x1->tun_id") {
			return "flows still changing"
		}
		before = f1
		return ""
	})
	if n, ok := scrapeMetric(t, c, `govn_controller_recompute_total{type="full"}`); !ok || n != 0 {
		t.Fatalf("full recomputes before the trigger = %v (exposed %v), want 0", n, ok)
	}
	if n, ok := scrapeMetric(t, c, `govn_controller_recompute_total{type="incremental"}`); !ok || n < 1 {
		t.Errorf("incremental recomputes = %v (exposed %v), want >= 1", n, ok)
	}
	mods := c.FlowMods()
	c.ForceRecompute()
	eventually(t, "full recompute counted", func() string {
		if n, _ := scrapeMetric(t, c, `govn_controller_recompute_total{type="full"}`); n != 1 {
			return fmt.Sprintf("full recomputes = %v, want 1", n)
		}
		return ""
	})
	if s, ok := scrapeMetric(t, c, `govn_controller_last_recompute_seconds{type="full"}`); !ok || s <= 0 {
		t.Errorf("last full recompute seconds = %v (exposed %v), want > 0", s, ok)
	}
	if after := e.dumpFlows(); after != before {
		t.Errorf("flows changed by a full recompute:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if n := c.FlowMods(); n != mods {
		t.Errorf("full recompute applied %d flow modifications, want 0", n-mods)
	}
	for _, path := range []string{"/debug/pprof/", "/debug/pprof/profile?seconds=1"} {
		resp, err := http.Get("http://" + c.MetricsAddr().String() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || len(body) == 0 {
			t.Errorf("GET %s: %s, %d bytes", path, resp.Status, len(body))
		}
	}
}
