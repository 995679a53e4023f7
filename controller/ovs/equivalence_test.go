package ovs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/govn/govn/controller"
	"github.com/govn/govn/controller/ofctrl"
	"github.com/govn/govn/controller/physical"
	"github.com/govn/govn/controller/translate"
	"github.com/govn/govn/internal/ovstest"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/northd"
)

// northdFlows computes a real northd topology — two switches with ACLs
// (stateful and stateless, conjunctive matches) joined by a router — plus a
// few hand-written logical flows for actions northd does not emit yet (load
// balancing, NAT, select, clone-like blocks, check_pkt_larger…), translates
// it for a chassis with a VIF on each switch and returns the OpenFlow flows
// and groups (translated + physical), as the controller would install them.
func northdFlows(t *testing.T) ([]ofctrl.Flow, []ofctrl.Group) {
	t.Helper()
	nb := northd.NewNB()
	nb.SetSvcMonitorMAC("3a:ab:e1:3c:9b:50")
	r := &northd.Router{UUID: "00000000-0000-0000-0006-000000000001", Name: "lr0"}
	for s := 0; s < 2; s++ {
		sw := &northd.Switch{UUID: fmt.Sprintf("00000000-0000-0000-0001-%012d", s), Name: fmt.Sprintf("sw%d", s)}
		for p := 0; p < 4; p++ {
			id := fmt.Sprintf("00000000-0000-0000-0002-%06d%06d", s, p)
			sp := &northd.SwitchPort{UUID: id, Name: fmt.Sprintf("sw%d-p%d", s, p),
				Addresses: []string{fmt.Sprintf("0a:00:00:00:%02x:%02x 10.%d.0.%d", s, p, s, p+2)}}
			if p == 1 {
				sp.PortSecurity = sp.Addresses
			}
			nb.SetPort(sp)
			sw.Ports = append(sw.Ports, id)
		}
		for i, a := range []northd.ACL{
			{Direction: "from-lport", Priority: 1001, Match: "ip4 && tcp.dst == 23", Action: "drop"},
			{Direction: "to-lport", Priority: 1002, Match: "ip4.src == {10.0.0.2, 10.0.0.3} && tcp.dst == {80, 443}", Action: "allow-related"},
			{Direction: "from-lport", Priority: 1003, Match: "udp.dst == 53", Action: "allow-stateless"},
			{Direction: "to-lport", Priority: 1004, Match: "icmp4", Action: "reject"},
		} {
			a := a
			a.UUID = fmt.Sprintf("00000000-0000-0000-0004-%06d%06d", s, i)
			nb.SetACL(&a)
			sw.ACLs = append(sw.ACLs, a.UUID)
		}
		lrp := &northd.RouterPort{UUID: fmt.Sprintf("00000000-0000-0000-0007-%012d", s), Name: fmt.Sprintf("lrp%d", s),
			MAC: fmt.Sprintf("0c:00:00:00:00:%02x", s), Networks: []string{fmt.Sprintf("10.%d.255.1/16", s)}}
		nb.SetRouterPort(lrp)
		r.Ports = append(r.Ports, lrp.UUID)
		lsp := &northd.SwitchPort{UUID: fmt.Sprintf("00000000-0000-0000-0003-%012d", s), Name: fmt.Sprintf("sw%d-rtr", s),
			Type: "router", Addresses: []string{"router"}, Options: map[string]string{"router-port": lrp.Name}}
		nb.SetPort(lsp)
		sw.Ports = append(sw.Ports, lsp.UUID)
		nb.SetSwitch(sw)
	}
	nb.SetRouter(r)
	e := northd.NewEngine(nil, nil)
	e.Run(nb)
	if errs := e.FlowErrors(); len(errs) > 0 {
		t.Fatalf("northd: %v", errs[0])
	}

	env := &translate.Env{Datapaths: map[uint32]*translate.Datapath{}, Resident: map[string]bool{},
		AddressSets: map[string][]string{"svc_monitor_mac": {"3a:ab:e1:3c:9b:50"}}}
	phys := &physical.Input{Chassis: "ch1", VIFs: map[string]uint32{}, Tunnels: map[string]uint32{"ch2": 1000}}
	var lflows []translate.Flow
	routers := 0
	for i, dpID := range e.Switches() {
		dk := uint32(i + 1)
		_, isSwitch := nb.Switches[dpID]
		dp := &translate.Datapath{Key: dk, Router: !isSwitch, Ports: map[string]uint32{}}
		if !isSwitch {
			routers++
		}
		env.Datapaths[dk] = dp
		for j, pb := range e.SwitchPorts(dpID) {
			key := uint32(j + 1)
			dp.Ports[pb.Name] = key
			ch := "ch2"
			if isSwitch && j%2 == 0 {
				ch = "ch1"
				phys.VIFs[pb.Name] = uint32(len(phys.VIFs) + 1)
				env.Resident[pb.Name] = true
			}
			phys.Ports = append(phys.Ports, physical.Port{Name: pb.Name, Datapath: dk, Key: key, Chassis: ch})
		}
		for _, mc := range e.SwitchMulticast(dpID) {
			dp.Ports[mc.Name] = uint32(mc.Key)
			phys.Groups = append(phys.Groups, physical.MulticastGroup{Datapath: dk, Key: uint32(mc.Key), Name: mc.Name, Ports: mc.Ports})
		}
		for n, f := range e.SwitchFlows(dpID) {
			p := controller.Ingress
			if f.Stage.Pipeline() == northd.Egress {
				p = controller.Egress
			}
			lflows = append(lflows, translate.Flow{UUID: fmt.Sprintf("%08x-0000-4000-8000-%012x", dk*100000+uint32(n), n),
				Pipeline: p, Table: f.Stage.Table(), Priority: int(f.Priority), Match: f.Match, Actions: f.Actions,
				Datapaths: []uint32{dk}})
		}
	}
	if routers != 1 {
		t.Fatalf("want one router datapath, have %d", routers)
	}
	// Actions northd does not write yet, on switch 1 / the router.
	extra := []struct {
		table, prio   int
		match, action string
	}{
		{12, 120, "ct.new && ip4.dst == 10.0.0.100 && tcp.dst == 80", "ct_lb_mark(backends=10.0.0.2:80,10.0.0.3:80);"},
		{12, 121, "ct.new && ip4.dst == 10.0.0.101 && tcp.dst == 80", `ct_lb_mark(backends=10.0.0.2:80,10.0.0.3:8080; hash_fields="ip_src,ip_dst,tcp_src,tcp_dst");`},
		{13, 100, "ip4.dst == 10.0.0.200", "ct_dnat(10.0.0.2);"},
		{13, 101, "ip4.src == 10.0.0.2", "ct_snat(192.168.0.1);"},
		{13, 102, "ip4", "ct_dnat;"},
		{13, 103, "ip4 && ct.est", "ct_commit { ct_mark.blocked = 0; ct_label.label = 5; }; next;"},
		{14, 100, "ip4", "reg0[0] = check_pkt_larger(1500); next;"},
		{14, 101, "ip4 && udp", `reg9[0..1] = select(1=50, 2=50);`},
		{14, 102, "arp.op == 1", "put_arp(inport, arp.spa, arp.sha); next;"},
		{14, 103, "ip4 && ip.ttl == {0, 1}", "icmp4 { eth.dst <-> eth.src; ip4.dst <-> ip4.src; ip.ttl = 255; icmp4.type = 11; icmp4.code = 0; outport = inport; flags.loopback = 1; output; };"},
		{14, 104, "ip6 && nd_ns", "nd_na { eth.src = 0a:00:00:00:00:01; nd.tll = 0a:00:00:00:00:01; outport = inport; flags.loopback = 1; output; };"},
		{14, 105, "ip4 && tcp", "tcp_reset { outport <-> inport; output; };"},
		{14, 106, "ip4.mcast", "ct_clear; eth.dst = ff:ff:ff:ff:ff:ff; ip.ttl--; next;"},
		{14, 107, "ip6", "xxreg0 = ip6.dst; reg8[0..15] = 1; next;"},
		{14, 108, "ip4", "reg0 = ip4.dst; reg1 <-> reg2; next;"},
		{14, 109, "ct.new && ip4.dst == 10.0.0.100 && tcp.dst == 80", "reg9[6] = chk_lb_aff(); next;"},
		{14, 110, "reg9[6] == 0 && ct.new && ip4 && reg1 == 10.0.0.100 && ip4.dst == 10.0.0.2 && tcp.dst == 80",
			`commit_lb_aff(vip = "10.0.0.100:80", backend = "10.0.0.2:80", proto = tcp, timeout = 60);`},
		{14, 111, "reg9[6] == 0 && ct.new && ip6 && ip6.dst == fd00::2", `commit_lb_aff(vip = "[fd00::64]:53", backend = "[fd00::2]:5353", proto = udp, timeout = 300);`},
		{14, 112, "reg9[6] == 0 && ct.new && ip4 && ip4.dst == 10.0.0.3", `commit_lb_aff(vip = "10.0.0.200", backend = "10.0.0.3", timeout = 0);`},
	}
	for i, x := range extra {
		lflows = append(lflows, translate.Flow{UUID: fmt.Sprintf("ee%06x-0000-4000-8000-%012x", i, i), Table: x.table,
			Priority: x.prio, Match: x.match, Actions: x.action, Datapaths: []uint32{1}})
	}
	out := translate.New().Translate(lflows, env)
	for _, err := range out.Errors {
		t.Errorf("translate: %v", err)
	}
	zones := make([]string, 0, len(phys.VIFs))
	for n := range phys.VIFs {
		zones = append(zones, n)
	}
	phys.Zones, _ = physical.AssignZones(zones, nil)
	pf := physical.Flows(phys)
	flows := make([]ofctrl.Flow, 0, len(pf)+len(out.Flows))
	for i := range pf {
		flows = append(flows, translate.OFText(&pf[i]))
	}
	flows = append(flows, out.Flows...)
	// A learn action with every option and kind of spec (commit_lb_aff
	// uses only some).
	flows = append(flows, ofctrl.Flow{Table: controller.TableLBAffinity, Priority: 5, Match: "ip,reg0=0x7",
		Actions: "learn(table=87,idle_timeout=10,hard_timeout=20,fin_idle_timeout=3,fin_hard_timeout=4,priority=7," +
			"send_flow_rem,delete_learned,cookie=0x1234,metadata[],eth_type=0x800,ip_src[],reg1[]=ip_dst[]," +
			"reg2[0..15]=0x50,ip_proto=6,eth_src=0a:00:00:00:00:01,load:ip_src[]->reg4[],load:0x1->reg10[14]," +
			"load:0xfd000000000000000000000000000011->xxreg1[],output:reg15[]),resubmit(,8)"})
	if len(out.Groups) < 3 {
		t.Fatalf("expected load-balancer and select groups, have %d", len(out.Groups))
	}
	return flows, out.Groups
}

// dumpSorted returns a bridge's flows (without statistics) and groups, one
// per line, sorted.
func dumpSorted(t *testing.T, v *ovstest.OVS, br string) (flows, groups []string) {
	t.Helper()
	out, err := v.Ofctl("-O", "OpenFlow15", "--no-stats", "--no-names", "dump-flows", br)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			flows = append(flows, l)
		}
	}
	out, err = v.Ofctl("-O", "OpenFlow15", "--no-names", "dump-groups", br)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "OFPST_GROUP_DESC") {
			groups = append(groups, l)
		}
	}
	slices.Sort(flows)
	slices.Sort(groups)
	return flows, groups
}

// TestNativeEquivalence installs the flows and groups of a real northd
// topology (switches with ACLs, a router, load balancers, NAT…) twice on one
// ovs-vswitchd: on br-txt through ovs-ofctl from their text (the reference:
// OVS parses our text itself) and on br-int through the native OpenFlow 1.5
// encoder. The two bridges' dump-flows and dump-groups must be identical.
// Then a fresh syncer (a restarted controller) reconciles br-int and must
// find nothing to change, and a changed desired state is applied natively
// and compared again.
func TestNativeEquivalence(t *testing.T) {
	flows, groups := northdFlows(t)
	// The parser reads back exactly what lflow/of printed.
	for _, f := range flows {
		m, err := ofctrl.ParseMatch(f.Match)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		as, err := ofctrl.ParseActions(f.Actions)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if got := m.String(); got != f.Match {
			t.Errorf("match round trip: %q -> %q", f.Match, got)
		}
		if got := of.ActionsString(as); got != f.Actions && !(f.Actions == "" && got == "drop") {
			t.Errorf("actions round trip: %q -> %q", f.Actions, got)
		}
	}
	for _, g := range groups {
		og, err := ofctrl.ParseGroup(g.ID, g.Spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := og.String(); got != g.String() {
			t.Errorf("group round trip: %q -> %q", g.String(), got)
		}
	}
	v := ovstest.Start(t, ovstest.Options{PrivateNetns: true, Bridges: []string{"br-int", "br-txt"}})
	tlv, err := ofctrl.ParseTLVMap(controller.TLVMap)
	if err != nil {
		t.Fatal(err)
	}
	for _, br := range []string{"br-int", "br-txt"} {
		if _, err := v.Ofctl("-O", "OpenFlow15", "add-tlv-map", br, controller.TLVMap); err != nil {
			t.Fatal(err)
		}
	}
	install := func(fs []ofctrl.Flow, gs []ofctrl.Group) {
		t.Helper()
		// Reference: ovs-ofctl parses our text. Replace everything.
		if _, err := v.Ofctl("-O", "OpenFlow15", "del-flows", "br-txt"); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Ofctl("-O", "OpenFlow15", "del-groups", "br-txt"); err != nil {
			t.Fatal(err)
		}
		st, err := ofctrl.NewState(ofctrl.DefaultOwner, fs, gs)
		if err != nil {
			t.Fatal(err)
		}
		empty, _ := ofctrl.NewState(ofctrl.DefaultOwner, nil, nil)
		if out, err := v.OfctlStdin(ofctrl.Compute(st, empty).Bundle(ofctrl.DefaultOwner), "-O", "OpenFlow15", "bundle", "br-txt", "-"); err != nil {
			t.Fatalf("reference install: %v\n%s", err, out)
		}
	}
	compare := func(what string) {
		t.Helper()
		nf, ng := dumpSorted(t, v, "br-int")
		rf, rg := dumpSorted(t, v, "br-txt")
		if len(nf) < 100 {
			t.Fatalf("%s: only %d flows installed", what, len(nf))
		}
		if what == "install" {
			learns := 0
			for _, l := range nf {
				if strings.Contains(l, "learn(") {
					learns++
				}
			}
			if learns != 4 {
				t.Errorf("%s: %d flows with learn actions installed, want 4 (3 commit_lb_aff + 1)", what, learns)
			}
		}
		if !slices.Equal(nf, rf) {
			for _, l := range nf {
				if !slices.Contains(rf, l) {
					t.Errorf("%s: native only: %s", what, l)
				}
			}
			for _, l := range rf {
				if !slices.Contains(nf, l) {
					t.Errorf("%s: text only:   %s", what, l)
				}
			}
		}
		if !slices.Equal(ng, rg) {
			t.Errorf("%s: groups differ:\nnative: %s\ntext:   %s", what, strings.Join(ng, "\n        "), strings.Join(rg, "\n        "))
		}
	}

	install(flows, groups)
	of1, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer of1.Close()
	of1.SetTLVMaps(tlv)
	res := mustSync(t, of1, flows, groups)
	if len(res.Diff.AddFlows) != len(flows) || len(res.Diff.AddGroups) != len(groups) {
		t.Fatalf("native install: %s for %d flows, %d groups", res.Diff, len(flows), len(groups))
	}
	compare("install")
	t.Logf("%d flows, %d groups identical", len(flows), len(groups))

	// A restarted controller: reconcile through ovs-ofctl finds nothing.
	of2, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer of2.Close()
	of2.SetTLVMaps(tlv)
	if res := mustSync(t, of2, flows, groups); !res.Diff.Empty() {
		t.Fatalf("restart reconcile changed something: %s\n%s", res.Diff, res.Diff.Bundle(ofctrl.DefaultOwner))
	}

	// Changes after the restart go native: drop every third flow, change
	// the actions of every fifth, the cookie of every seventh, drop a group.
	var changed []ofctrl.Flow
	for i, f := range flows {
		switch {
		case i%3 == 0:
			continue
		case i%5 == 0:
			f.Actions = "drop"
		case i%7 == 0:
			f.Cookie ^= 0x5a5a
		}
		changed = append(changed, f)
	}
	cg := groups[1:]
	// Keep flows pointing to the dropped group out too.
	drop := fmt.Sprintf("group:%d", groups[0].ID)
	changed = slices.DeleteFunc(changed, func(f ofctrl.Flow) bool { return strings.Contains(f.Actions, drop) })
	res = mustSync(t, of2, changed, cg)
	if len(res.Diff.DelFlows) == 0 || len(res.Diff.ModFlows) == 0 || len(res.Diff.ReplFlows) == 0 || len(res.Diff.DelGroups) != 1 {
		t.Fatalf("change: %s", res.Diff)
	}
	install(changed, cg)
	compare("change")
	if res := mustSync(t, of2, changed, cg); !res.Diff.Empty() {
		t.Fatalf("second sync of the same state: %s", res.Diff)
	}
}

// TestNativeRejects: flows the encoder cannot express and flows the switch
// refuses are reported and left out; the rest is installed in one bundle.
func TestNativeRejects(t *testing.T) {
	v := startBridge(t)
	o, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	flows := []ofctrl.Flow{
		{Table: 1, Priority: 1, Cookie: 1, Match: "ip", Actions: "output:1"},
		{Table: 1, Priority: 2, Cookie: 2, Match: "ip", Actions: "multipath(nw_src,50,hrw,12,0,reg0[0..3])"}, // unknown to the encoder
		{Table: 1, Priority: 3, Cookie: 3, Match: "ip", Actions: "group:77"},                                 // refused by the switch
		{Table: 1, Priority: 4, Cookie: 4, Match: "ip,bogus=1", Actions: "drop"},                             // unknown field
		{Table: 1, Priority: 5, Cookie: 5, Match: "tcp,tcp_dst=80", Actions: "resubmit(,2)"},                 // fine
	}
	res, err := o.Sync(context.Background(), flows, []ofctrl.Group{{ID: 9, Spec: "type=bogus"}})
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(res.Rejected)
	if len(res.Rejected) != 4 {
		t.Fatalf("rejected %d, want 4: %s", len(res.Rejected), got)
	}
	for _, want := range []string{"multipath(", "OFPBAC_BAD_OUT_GROUP", "unknown field \"bogus\"", "unknown type \"bogus\""} {
		if !strings.Contains(got, want) {
			t.Errorf("rejections lack %q: %s", want, got)
		}
	}
	if n := flowCount(t, v); n != 2 {
		t.Fatalf("flow_count = %d, want 2", n)
	}
}

// TestNativeRejectsInBigBundle: flows that cannot be encoded, found after
// part of a big bundle was already written to the switch (the messages go
// out in chunks), are all reported in one pass; that bundle is discarded and
// the rest installed in the next.
func TestNativeRejectsInBigBundle(t *testing.T) {
	v := startBridge(t)
	o, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	var flows []ofctrl.Flow
	for i := 0; i < 4000; i++ { // ≈ 0.5 MB of flow mods: more than one chunk
		flows = append(flows, ofctrl.Flow{Table: 1, Priority: 100, Cookie: uint64(i),
			Match: fmt.Sprintf("ip,reg0=%#x,reg2=%#x", i, i*7), Actions: "set_field:0x1->reg1,resubmit(,2)"})
	}
	// Sorted after every good flow (table 9), so found once chunks were sent.
	flows = append(flows,
		ofctrl.Flow{Table: 9, Priority: 1, Match: "ip,bogus=1", Actions: "drop"},
		ofctrl.Flow{Table: 9, Priority: 2, Match: "ip", Actions: "multipath(nw_src,50,hrw,12,0,reg0[0..3])"})
	res, err := o.Sync(context.Background(), flows, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(res.Rejected)
	if len(res.Rejected) != 2 || !strings.Contains(got, `unknown field "bogus"`) || !strings.Contains(got, "multipath(") {
		t.Fatalf("rejected %d: %.500s", len(res.Rejected), got)
	}
	if n := flowCount(t, v); n != 4000 {
		t.Fatalf("flow_count = %d, want 4000", n)
	}
	if len(res.Diff.AddFlows) != 4000 {
		t.Fatalf("diff adds %d, want 4000", len(res.Diff.AddFlows))
	}
}
