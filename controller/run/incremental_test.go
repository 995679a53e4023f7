package run

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/sbdb"
)

// incrEnv is the southbound side of TestIncrementalMatchesRecompute.
type incrEnv struct {
	*env
	t     *testing.T
	c     *Controller
	nbCfg int
}

// txn applies ops together with a new SB_Global.nb_cfg and waits until the
// controller acknowledged it (its flows for the change are installed).
func (e *incrEnv) txn(what string, ops []ovsdb.Operation, err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %v", what, err)
	}
	var gs []sbdb.SBGlobal
	if err := e.sb.List(context.Background(), &gs); err != nil || len(gs) != 1 {
		e.t.Fatalf("SB_Global: %v %v", gs, err)
	}
	e.nbCfg++
	g := gs[0]
	g.NbCfg = e.nbCfg
	ops, err = ovsdbclient.UpdateOps(e.sb, ops, &g, &g.NbCfg)
	e.transact(ops, err)
	e.acked(what)
}

func (e *incrEnv) acked(what string) {
	e.t.Helper()
	eventually(e.t, what+": nb_cfg acknowledged", func() string {
		cp, err := ovsdbclient.Lookup(e.sb, &sbdb.ChassisPrivate{Name: "ch1"})
		if err != nil || cp.NbCfg < e.nbCfg {
			return fmt.Sprintf("chassis_private %+v %v, want nb_cfg %d", cp, err, e.nbCfg)
		}
		return ""
	})
}

// settle waits until the installed flows stop changing (claims and the
// runs they cause are done) and returns them.
func (e *incrEnv) settle(what string) string {
	e.t.Helper()
	var flows string
	eventually(e.t, what+": flows stable", func() string {
		f1 := e.dumpFlows()
		time.Sleep(400 * time.Millisecond)
		if f2 := e.dumpFlows(); f1 != f2 {
			return "flows still changing"
		}
		flows = f1
		return ""
	})
	return flows
}

// verify checks that what the controller installed incrementally is what
// a full recompute (fresh translator, every row converted again) installs:
// the forced full run must change no flow.
func (e *incrEnv) verify(step string) string {
	e.t.Helper()
	before := e.settle(step)
	mods := e.c.FlowMods()
	full, _ := scrapeMetric(e.t, e.c, `govn_controller_recompute_total{type="full"}`)
	e.c.ForceRecompute()
	eventually(e.t, step+": full recompute done", func() string {
		if n, _ := scrapeMetric(e.t, e.c, `govn_controller_recompute_total{type="full"}`); n != full+1 {
			return fmt.Sprintf("full recomputes %v, want %v", n, full+1)
		}
		return ""
	})
	if n := e.c.FlowMods() - mods; n != 0 {
		after := e.dumpFlows()
		e.t.Errorf("%s: the full recompute changed %d flows; incremental state was wrong:\n%s", step, n, flowDiff(before, after))
	}
	return before
}

func flowDiff(before, after string) string {
	b, a := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(before, "\n") {
		b[strings.TrimSpace(l)] = true
	}
	for _, l := range strings.Split(after, "\n") {
		a[strings.TrimSpace(l)] = true
	}
	var out []string
	for l := range b {
		if !a[l] {
			out = append(out, "  incremental only: "+l)
		}
	}
	for l := range a {
		if !b[l] {
			out = append(out, "  full only:        "+l)
		}
	}
	return strings.Join(out, "\n")
}

func (e *incrEnv) lflow(dp string, pipeline string, table, prio int, match, actions string) *sbdb.LogicalFlow {
	return &sbdb.LogicalFlow{Pipeline: pipeline, TableID: table, Priority: prio, Match: match, Actions: actions, LogicalDatapath: &dp}
}

func (e *incrEnv) dpUUID(key int) string {
	e.t.Helper()
	dp, err := ovsdbclient.Lookup(e.sb, &sbdb.DatapathBinding{TunnelKey: key})
	if err != nil {
		e.t.Fatalf("datapath %d: %v", key, err)
	}
	return dp.UUID
}

func lookupAll[T any](e *incrEnv, pred func(*T) bool) []*T {
	e.t.Helper()
	var all []T
	if err := e.sb.List(context.Background(), &all); err != nil {
		e.t.Fatal(err)
	}
	var out []*T
	for i := range all {
		if pred(&all[i]) {
			out = append(out, &all[i])
		}
	}
	return out
}

// flowLine returns the first flow that contains every part.
func flowLine(flows string, parts ...string) string {
	for _, l := range strings.Split(flows, "\n") {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			return l
		}
	}
	return ""
}

func (e *incrEnv) has(flows string, want ...string) string {
	for _, w := range want {
		if !strings.Contains(flows, w) {
			return fmt.Sprintf("no %q in\n%s", w, flows)
		}
	}
	return ""
}

// TestIncrementalMatchesRecompute drives a real controller (real
// southbound ovsdb-server, real ovs-vswitchd) through a sequence of
// southbound and interface changes. After each step, once the change's
// nb_cfg is acknowledged and the flows are stable, a forced full recompute
// (ForceRecompute: new translator, every logical flow converted and
// translated again, full OpenFlow sync) must change no flow: the
// incremental runs installed exactly what a full computation installs.
func TestIncrementalMatchesRecompute(t *testing.T) {
	base := newEnv(t, "ch1", "172.16.0.1")
	base.populate()
	e := &incrEnv{env: base, t: t, nbCfg: 5}
	e.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev", "fail_mode=secure")
	e.vsctl("add-port", "br-int", "va", "--", "set", "Interface", "va", "type=internal", "external_ids:iface-id=a")
	e.c, _, _ = startController(t, base, Options{Conditional: true, MetricsAddr: "127.0.0.1:0"})
	e.acked("start")
	dp1 := e.dpUUID(1)
	ingress, egress := sbdb.LogicalFlowPipelineIngress, sbdb.LogicalFlowPipelineEgress

	// A second switch (key 2) with port d, not local yet; an address set,
	// a port group and flows using them on both switches.
	dp2 := &sbdb.DatapathBinding{UUID: ovsdbclient.NamedUUID(), TunnelKey: 2, ExternalIDs: map[string]string{"name": "ls2"}}
	pd := &sbdb.PortBinding{UUID: ovsdbclient.NamedUUID(), LogicalPort: "d", TunnelKey: 1, Datapath: dp2.UUID, MAC: []string{"00:00:00:00:02:01 10.0.2.1"}}
	ops, err := ovsdbclient.CreateOps(e.sb, nil, dp2, pd,
		&sbdb.AddressSet{Name: "as1", Addresses: []string{"10.9.0.1", "10.9.0.2"}},
		&sbdb.PortGroup{Name: "pg1", Ports: []string{"a", "b"}},
		e.lflow(dp1, egress, 4, 2001, `ip4.src == $as1 && outport == @pg1`, "drop;"),
		e.lflow(dp1, ingress, 2, 100, `is_chassis_resident("b")`, "next;"),
		e.lflow(dp1, ingress, 3, 100, `inport == "b" && ip4`, "next;"),
		e.lflow(dp2.UUID, ingress, 0, 50, `inport == "d" && eth.src == 00:00:00:00:02:01`, "next;"),
		e.lflow(dp2.UUID, ingress, 1, 50, `eth.dst == 00:00:00:00:02:01`, `outport = "d"; output;`),
		e.lflow(dp2.UUID, egress, 0, 0, "1", "output;"))
	e.txn("second switch, address set, port group", ops, err)
	flows := e.verify("second switch, address set, port group")
	if !strings.Contains(flows, "nw_src=10.9.0.1") || strings.Contains(flows, "metadata=0x2") {
		t.Errorf("address set flow missing or non-local switch installed:\n%s", flows)
	}

	// A port is added (with its flows) and plugged here.
	pn := &sbdb.PortBinding{UUID: ovsdbclient.NamedUUID(), LogicalPort: "n1", TunnelKey: 4, Datapath: dp1, MAC: []string{"00:00:00:00:00:04 10.0.0.4"}}
	ops, err = ovsdbclient.CreateOps(e.sb, nil, pn,
		e.lflow(dp1, ingress, 0, 50, `inport == "n1" && eth.src == 00:00:00:00:00:04`, "next;"),
		e.lflow(dp1, ingress, 1, 50, `eth.dst == 00:00:00:00:00:04`, `outport = "n1"; output;`))
	if err == nil { // n1 joins the flood group
		mg := lookupAll(e, func(g *sbdb.MulticastGroup) bool { return g.Name == "_MC_flood" })[0]
		mg.Ports = append(mg.Ports, pn.UUID)
		ops, err = ovsdbclient.UpdateOps(e.sb, ops, mg, &mg.Ports)
	}
	e.vsctl("add-port", "br-int", "vn1", "--", "set", "Interface", "vn1", "type=internal", "external_ids:iface-id=n1")
	e.txn("port n1 added", ops, err)
	eventually(t, "n1 claimed", func() string {
		if p := e.port("n1"); p == nil || e.chassisName(p.Chassis) != "ch1" {
			return fmt.Sprintf("n1 = %+v", p)
		}
		return ""
	})
	flows = e.verify("port n1 added")
	if s := e.has(flows, "dl_src=00:00:00:00:00:04", "set_field:0x4->reg15"); s != "" {
		t.Errorf("port n1 added: %s", s)
	}
	if l := flowLine(flows, "table=42,", "reg15=0x8000,metadata=0x1"); !strings.Contains(l, "set_field:0x4->reg15") {
		t.Errorf("port n1 added: flood group's local delivery does not include n1: %q", l)
	}

	// Port b binds here, then moves to ch2.
	e.vsctl("add-port", "br-int", "vb", "--", "set", "Interface", "vb", "type=internal", "external_ids:iface-id=b")
	eventually(t, "b claimed", func() string {
		if p := e.port("b"); p == nil || e.chassisName(p.Chassis) != "ch1" {
			return fmt.Sprintf("b = %+v", p)
		}
		return ""
	})
	e.txn("b bound here", nil, nil)
	flows = e.verify("b bound here")
	if s := e.has(flows, "table=10,", "table=11,"); s != "" { // is_chassis_resident("b") and inport == "b" flows
		t.Errorf("b bound here: %s", s)
	}
	e.vsctl("del-port", "br-int", "vb")
	eventually(t, "b released", func() string {
		if p := e.port("b"); p == nil || p.Chassis != nil {
			return fmt.Sprintf("b = %+v", p)
		}
		return ""
	})
	ch2, err := ovsdbclient.Lookup(e.sb, &sbdb.Chassis{Name: "ch2"})
	if err != nil {
		t.Fatal(err)
	}
	pb := e.port("b")
	pb.Chassis = &ch2.UUID
	ops, err = ovsdbclient.UpdateOps(e.sb, nil, pb, &pb.Chassis)
	e.txn("b moved to ch2", ops, err)
	flows = e.verify("b moved to ch2")
	if strings.Contains(flows, "table=10,") || strings.Contains(flows, "table=11,") {
		t.Errorf("b moved to ch2: its resident-only flows are still installed:\n%s", flows)
	}

	// Address set and port group contents change.
	as := lookupAll(e, func(a *sbdb.AddressSet) bool { return a.Name == "as1" })[0]
	as.Addresses = []string{"10.9.0.7"}
	ops, err = ovsdbclient.UpdateOps(e.sb, nil, as, &as.Addresses)
	e.txn("address set changed", ops, err)
	flows = e.verify("address set changed")
	if !strings.Contains(flows, "nw_src=10.9.0.7") || strings.Contains(flows, "nw_src=10.9.0.1") {
		t.Errorf("address set change not installed:\n%s", flows)
	}
	pg := lookupAll(e, func(p *sbdb.PortGroup) bool { return p.Name == "pg1" })[0]
	pg.Ports = []string{"a", "n1"}
	ops, err = ovsdbclient.UpdateOps(e.sb, nil, pg, &pg.Ports)
	e.txn("port group changed", ops, err)
	e.verify("port group changed")

	// A logical flow is modified.
	lf := lookupAll(e, func(f *sbdb.LogicalFlow) bool {
		return strings.Contains(f.Match, "00:00:00:00:00:04") && f.TableID == 1
	})[0]
	lf.Match, lf.Priority = `eth.dst == 00:00:00:00:00:44`, 60
	ops, err = ovsdbclient.UpdateOps(e.sb, nil, lf, &lf.Match, &lf.Priority)
	e.txn("logical flow modified", ops, err)
	flows = e.verify("logical flow modified")
	if !strings.Contains(flows, "dl_dst=00:00:00:00:00:44") || strings.Contains(flows, "dl_dst=00:00:00:00:00:04") {
		t.Errorf("modified logical flow not installed:\n%s", flows)
	}

	// A bad row (the match does not parse) is reported and skipped.
	ops, err = ovsdbclient.CreateOps(e.sb, nil, e.lflow(dp1, ingress, 5, 10, `ip4.dst ==`, "next;"))
	e.txn("bad logical flow", ops, err)
	e.verify("bad logical flow")

	// Switch 2 becomes local (d plugged here), then non-local again.
	e.vsctl("add-port", "br-int", "vd", "--", "set", "Interface", "vd", "type=internal", "external_ids:iface-id=d")
	eventually(t, "d claimed", func() string {
		if p := e.port("d"); p == nil || e.chassisName(p.Chassis) != "ch1" {
			return fmt.Sprintf("d = %+v", p)
		}
		return ""
	})
	e.txn("switch 2 local", nil, nil)
	flows = e.verify("switch 2 local")
	if s := e.has(flows, "metadata=0x2,dl_src=00:00:00:00:02:01"); s != "" {
		t.Errorf("switch 2 local: %s", s)
	}
	e.vsctl("del-port", "br-int", "vd")
	eventually(t, "d released", func() string {
		if p := e.port("d"); p == nil || p.Chassis != nil {
			return fmt.Sprintf("d = %+v", p)
		}
		return ""
	})
	e.txn("switch 2 not local", nil, nil)
	flows = e.verify("switch 2 not local")
	if strings.Contains(flows, "metadata=0x2,") {
		t.Errorf("switch 2 flows left after it stopped being local:\n%s", flows)
	}

	// The port is deleted with its flows.
	var del []model.Model
	del = append(del, &sbdb.PortBinding{UUID: e.port("n1").UUID})
	for _, f := range lookupAll(e, func(f *sbdb.LogicalFlow) bool {
		return strings.Contains(f.Match, `"n1"`) || strings.Contains(f.Actions, `"n1"`)
	}) {
		del = append(del, &sbdb.LogicalFlow{UUID: f.UUID})
	}
	pg.Ports = []string{"a"}
	ops, err = ovsdbclient.DeleteOps(e.sb, nil, del...)
	if err == nil {
		ops, err = ovsdbclient.UpdateOps(e.sb, ops, pg, &pg.Ports)
	}
	e.txn("port n1 deleted", ops, err)
	flows = e.verify("port n1 deleted")
	if strings.Contains(flows, "dl_src=00:00:00:00:00:04") {
		t.Errorf("deleted port's flows still installed:\n%s", flows)
	}
}
