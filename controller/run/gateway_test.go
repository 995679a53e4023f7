package run

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/sbdb"
)

// gwPopulate writes, in one transaction: switch ls1 (key 1) with VIF a (key
// 1), localnet ln (key 3, physnet, VLAN 42), patch s-r (key 2) and
// l3gateway s-gw (key 4); distributed router lr (key 2) with r-s (key 1),
// gateway port r-ext (key 2) to switch ext (key 3, port ext-r) and its
// chassisredirect port cr-r-ext (key 3) in HA_Chassis_Group r-ext {ch1:10,
// ch2:20}; gateway router gw (key 4) on ch1 with l3gateway gw-s (key 1);
// chassis ch2 (encap 172.16.0.2); load balancer lb1 on ls1.
func (e *env) gwPopulate() {
	var ops []ovsdb.Operation
	must := func(o []ovsdb.Operation, err error) {
		e.t.Helper()
		if err != nil {
			e.t.Fatal(err)
		}
		ops = o
	}
	ch2 := &sbdb.Chassis{UUID: "ch2row", Name: "ch2", Hostname: "h2"}
	must(sbdb.CreateChassisOps(e.sb, ops, ch2, &sbdb.Encap{Type: sbdb.EncapTypeGeneve, IP: "172.16.0.2"}))
	dps := []*sbdb.DatapathBinding{
		{UUID: "dp1", TunnelKey: 1, ExternalIDs: map[string]string{"name": "ls1", "logical-switch": "x"}},
		{UUID: "dp2", TunnelKey: 2, ExternalIDs: map[string]string{"name": "lr", "logical-router": "x"}},
		{UUID: "dp3", TunnelKey: 3, ExternalIDs: map[string]string{"name": "ext", "logical-switch": "x"}},
		{UUID: "dp4", TunnelKey: 4, ExternalIDs: map[string]string{"name": "gw", "logical-router": "x"}},
	}
	for _, d := range dps {
		must(ovsdbclient.CreateOps(e.sb, ops, d))
	}
	tag := 42
	pbs := []*sbdb.PortBinding{
		{UUID: "pba", LogicalPort: "a", TunnelKey: 1, Datapath: "dp1"},
		{UUID: "pbsr", LogicalPort: "s-r", TunnelKey: 2, Datapath: "dp1", Type: "patch", Options: map[string]string{"peer": "r-s"}},
		{UUID: "pbln", LogicalPort: "ln", TunnelKey: 3, Datapath: "dp1", Type: "localnet", Tag: &tag, Options: map[string]string{"network_name": "physnet"}},
		{UUID: "pbsgw", LogicalPort: "s-gw", TunnelKey: 4, Datapath: "dp1", Type: "l3gateway", Options: map[string]string{"peer": "gw-s", "l3gateway-chassis": "ch1"}},
		{UUID: "pbrs", LogicalPort: "r-s", TunnelKey: 1, Datapath: "dp2", Type: "patch", Options: map[string]string{"peer": "s-r"}},
		{UUID: "pbrext", LogicalPort: "r-ext", TunnelKey: 2, Datapath: "dp2", Type: "patch", Options: map[string]string{"peer": "ext-r"}},
		{UUID: "pbextr", LogicalPort: "ext-r", TunnelKey: 1, Datapath: "dp3", Type: "patch", Options: map[string]string{"peer": "r-ext"}},
		{UUID: "pbgws", LogicalPort: "gw-s", TunnelKey: 1, Datapath: "dp4", Type: "l3gateway", Options: map[string]string{"peer": "s-gw", "l3gateway-chassis": "ch1"}},
	}
	for _, p := range pbs {
		must(ovsdbclient.CreateOps(e.sb, ops, p))
	}
	// The HA group refers to ch1 once it registers: added by the test.
	h2 := &sbdb.HAChassis{UUID: "ha2", Chassis: &ch2.UUID, Priority: 20}
	grp := &sbdb.HAChassisGroup{UUID: "hag", Name: "r-ext", HaChassis: []string{"ha2"}}
	cr := &sbdb.PortBinding{UUID: "pbcr", LogicalPort: "cr-r-ext", TunnelKey: 3, Datapath: "dp2", Type: "chassisredirect",
		Options: map[string]string{"distributed-port": "r-ext"}, HaChassisGroup: &grp.UUID}
	must(ovsdbclient.CreateOps(e.sb, ops, h2, grp, cr))
	proto := sbdb.LoadBalancerProtocolTCP
	lb := &sbdb.LoadBalancer{Name: "lb1", Datapaths: []string{"dp1"}, Protocol: &proto,
		Vips: map[string]string{"10.0.0.100:80": "10.0.0.1:8080,10.0.0.2:8080"}, Options: map[string]string{"hairpin_orig_tuple": "true"}}
	must(ovsdbclient.CreateOps(e.sb, ops, lb))
	e.transact(ops, nil)
}

func TestGatewayLocalnetLB(t *testing.T) {
	e := newEnv(t, "ch1", "172.16.0.1")
	e.gwPopulate()
	e.vsctl("set", "Open_vSwitch", ".", "external_ids:ovn-bridge-mappings=physnet:br-ex")
	e.vsctl("add-br", "br-ex", "--", "set", "Bridge", "br-ex", "datapath_type=netdev")
	e.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev", "fail_mode=secure")
	e.vsctl("add-port", "br-int", "va", "--", "set", "Interface", "va", "type=internal", "external_ids:iface-id=a")
	c1, cancel1, done1 := startController(t, e, Options{Conditional: true, KeepOnExit: true})
	ch1 := ""
	eventually(t, "ch1 registered", func() string {
		ch, err := ovsdbclient.Lookup(e.sb, &sbdb.Chassis{Name: "ch1"})
		if err != nil {
			return err.Error()
		}
		ch1 = ch.UUID
		return ""
	})
	// ch1 joins the HA group with the lower priority.
	grp, err := ovsdbclient.Lookup(e.sb, &sbdb.HAChassisGroup{Name: "r-ext"})
	if err != nil {
		t.Fatal(err)
	}
	h1 := &sbdb.HAChassis{UUID: "ha1", Chassis: &ch1, Priority: 10}
	ops, err := ovsdbclient.CreateOps(e.sb, nil, h1)
	if err != nil {
		t.Fatal(err)
	}
	grp.HaChassis = append(grp.HaChassis, "ha1")
	e.transact(ovsdbclient.UpdateOps(e.sb, ops, grp, &grp.HaChassis))

	// l3gateway ports of this chassis are claimed; the cr port is left to
	// ch2 (priority 20).
	eventually(t, "l3gateway claims", func() string {
		for _, n := range []string{"a", "s-gw", "gw-s"} {
			if p := e.port(n); p == nil || e.chassisName(p.Chassis) != "ch1" {
				return fmt.Sprintf("port %s = %+v", n, p)
			}
		}
		if p := e.port("cr-r-ext"); p == nil || p.Chassis != nil {
			return fmt.Sprintf("cr-r-ext claimed while ch2 has priority: %+v", p)
		}
		return ""
	})
	// Localnet: the patch pair exists and its br-int side classifies VLAN
	// 42 into ls1 with the switch's zones.
	var lnOF string
	eventually(t, "localnet patch port", func() string {
		out, err := e.ovs.Vsctl("get", "Interface", "patch-br-int-to-ln", "ofport")
		if err != nil || strings.TrimSpace(out) == "[]" || strings.HasPrefix(strings.TrimSpace(out), "-") {
			return fmt.Sprintf("ofport %q %v", out, err)
		}
		lnOF = strings.TrimSpace(out)
		if br, err := e.ovs.Vsctl("port-to-br", "patch-ln-to-br-int"); err != nil || strings.TrimSpace(br) != "br-ex" {
			return fmt.Sprintf("provider side on %q %v", br, err)
		}
		return ""
	})
	zoneRe := func(dp int) *regexp.Regexp {
		return regexp.MustCompile(`reg15=0x1,metadata=0x` + fmt.Sprint(dp) + ` actions=set_field:0x([0-9a-f]+)/0xffff->reg11,set_field:0x([0-9a-f]+)/0xffff->reg12,resubmit\(,43\)`)
	}
	eventually(t, "gateway flows", func() string {
		f := e.dumpFlows()
		for _, want := range []string{
			"priority=150,in_port=" + lnOF + ",dl_vlan=42 actions=pop_vlan,set_field:0x1->metadata,set_field:0x3->reg14,",
			"reg15=0x3,metadata=0x1 actions=push_vlan:0x8100,set_field:0x102a->vlan_tci,output:" + lnOF + ",pop_vlan",
			// cr-r-ext is remote: tunnel to ch2.
			"table=41, priority=100,reg15=0x3,metadata=0x2 actions=set_field:0x2->tun_id,set_field:0x3->tun_metadata0,",
			// LB hairpin tables for lb1 on ls1.
			"table=83, priority=100,ct_state=-inv+trk,ct_mark=0x2/0x2,ct_nw_dst=10.0.0.100,ct_nw_proto=6,ct_tp_dst=80,tcp,metadata=0x1,nw_src=10.0.0.2,nw_dst=10.0.0.2,tp_dst=8080 actions=set_field:0x80/0x80->reg10",
			"ct(commit,zone=NXM_NX_REG12[0..15],nat(src=10.0.0.100))",
		} {
			if !strings.Contains(f, want) {
				return "missing " + want + " in\n" + f
			}
		}
		// Router zones: the gateway router (local through s-gw) and the
		// distributed router have distinct, non-zero DNAT/SNAT zones.
		seen := map[string]bool{}
		for _, dp := range []int{2, 4} {
			m := zoneRe(dp).FindStringSubmatch(f)
			if m == nil || m[1] == "0" || m[2] == "0" || m[1] == m[2] || seen[m[1]] || seen[m[2]] {
				return fmt.Sprintf("datapath %d zones %v", dp, m)
			}
			seen[m[1]], seen[m[2]] = true, true
		}
		return ""
	})
	if !strings.Contains(e.dumpFlows(), "table=83") {
		t.Fatal("no hairpin table")
	}

	// Restart: every zone (ports and datapaths) is kept, and the new
	// controller changes no flow.
	var before string
	eventually(t, "flows stable", func() string {
		f1 := e.dumpFlows()
		time.Sleep(300 * time.Millisecond)
		if f2 := e.dumpFlows(); f1 != f2 {
			return "flows still changing"
		}
		before = f1
		return ""
	})
	zones1 := fmt.Sprint(c1.zones)
	if !strings.Contains(zones1, "_dnat") || !strings.Contains(zones1, "_snat") {
		t.Fatalf("no datapath zones in %s", zones1)
	}
	cancel1()
	if err := done1.wait(); err != nil {
		t.Fatal(err)
	}
	c2, _, _ := startController(t, e, Options{Conditional: true})
	if z := fmt.Sprint(c2.zones); z != zones1 {
		t.Errorf("zones after restart %s, before %s", z, zones1)
	}
	if after := e.dumpFlows(); after != before {
		t.Errorf("flows changed across restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if n := c2.FlowMods(); n != 0 {
		t.Errorf("restarted controller applied %d flow modifications, want 0", n)
	}

	// Failover: ch2 disappears, ch1 takes cr-r-ext and outputs to it as
	// r-ext (key 2) with the router's zones.
	ch2, err := ovsdbclient.Lookup(e.sb, &sbdb.Chassis{Name: "ch2"})
	if err != nil {
		t.Fatal(err)
	}
	e.transact(ovsdbclient.DeleteOps(e.sb, nil, ch2))
	eventually(t, "cr failover", func() string {
		if p := e.port("cr-r-ext"); p == nil || e.chassisName(p.Chassis) != "ch1" {
			return fmt.Sprintf("cr-r-ext = %+v", p)
		}
		if f := e.dumpFlows(); !strings.Contains(f, "reg15=0x3,metadata=0x2 actions=set_field:0x2->reg15,") {
			return "no local cr flow in\n" + f
		}
		return ""
	})
	// A backend removed from the load balancer: its hairpin flows go.
	lbRow, err := ovsdbclient.Lookup(e.sb, &sbdb.LoadBalancer{Name: "lb1"})
	if err != nil {
		var lbs []sbdb.LoadBalancer
		if err := e.sb.List(context.Background(), &lbs); err != nil || len(lbs) != 1 {
			t.Fatalf("load balancer: %v %v", lbs, err)
		}
		lbRow = &lbs[0]
	}
	lbRow.Vips = map[string]string{"10.0.0.100:80": "10.0.0.1:8080"}
	e.transact(ovsdbclient.UpdateOps(e.sb, nil, lbRow, &lbRow.Vips))
	eventually(t, "backend removed", func() string {
		f := e.dumpFlows()
		if strings.Contains(f, "nw_src=10.0.0.2") || !strings.Contains(f, "nw_src=10.0.0.1") {
			return "hairpin flows not updated:\n" + f
		}
		return ""
	})
	// The localnet port goes: so does its patch pair.
	e.transact(ovsdbclient.DeleteOps(e.sb, nil, &sbdb.PortBinding{UUID: e.port("ln").UUID}))
	eventually(t, "localnet patch removed", func() string {
		if out, _ := e.ovs.Vsctl("show"); strings.Contains(out, "patch-") || !strings.Contains(out, "br-ex") {
			return out
		}
		return ""
	})
}
