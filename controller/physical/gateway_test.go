package physical

import (
	"regexp"

	"github.com/govn/govn/internal/ovstest"
	"net/netip"
	"strings"
	"testing"

	"github.com/govn/govn/lflow/of"
)

// gwTopo: chassis ch1. Switch 1: VIF a (key 1, ofport 1), localnet ln (key
// 3, VLAN 42, br-int patch ofport 5), patch s-r to router 2, l3gateway
// s-gw (key 4) to gateway router 4 on ch2, VIF c (key 5) on ch2. Router 2:
// r-s, distributed gateway port r-ext (key 2) patched to switch 3, and its
// chassisredirect port cr-r-ext (key 9) active on ch1. Router 4: gw-s
// (l3gateway on ch2).
func gwTopo() *Input {
	return &Input{
		Chassis: "ch1",
		Ports: []Port{
			{Name: "a", Datapath: 1, Key: 1, Chassis: "ch1"},
			{Name: "ln", Datapath: 1, Key: 3, Type: TypeLocalnet, Tag: 42},
			{Name: "s-r", Datapath: 1, Key: 2, Type: TypePatch, Peer: "r-s"},
			{Name: "s-gw", Datapath: 1, Key: 4, Type: TypeL3Gateway, Peer: "gw-s", GatewayChassis: "ch2"},
			{Name: "c", Datapath: 1, Key: 5, Chassis: "ch2"},
			{Name: "r-s", Datapath: 2, Key: 1, Type: TypePatch, Peer: "s-r"},
			{Name: "r-ext", Datapath: 2, Key: 2, Type: TypePatch, Peer: "ext-r"},
			{Name: "cr-r-ext", Datapath: 2, Key: 9, Type: TypeChassisRedirect, Chassis: "ch1", DistributedPort: "r-ext"},
			{Name: "ext-r", Datapath: 3, Key: 1, Type: TypePatch, Peer: "r-ext"},
			{Name: "gw-s", Datapath: 4, Key: 1, Type: TypeL3Gateway, Peer: "s-gw", GatewayChassis: "ch2"},
		},
		Groups: []MulticastGroup{
			{Datapath: 1, Key: 32768, Name: "_MC_flood", Ports: []string{"a", "ln", "s-r", "s-gw", "c"}},
		},
		VIFs:     map[string]uint32{"a": 1},
		Localnet: map[string]uint32{"ln": 5},
		Tunnels:  map[string]uint32{"ch2": 10},
		Zones:    map[string]uint16{"a": 1, "ln": 2},
		DPZones:  map[uint32]DPZones{1: {DNAT: 3, SNAT: 4}, 2: {DNAT: 5, SNAT: 6}, 3: {DNAT: 7, SNAT: 8}, 4: {DNAT: 9, SNAT: 10}},
	}
}

func requireFlows(t *testing.T, text string, want, bad []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w+"\n") {
			t.Errorf("missing flow\n  %s\nin\n%s", w, text)
		}
	}
	for _, b := range bad {
		if strings.Contains(text, b) {
			t.Errorf("unexpected %q in\n%s", b, text)
		}
	}
}

func TestGatewayFlowsCh1(t *testing.T) {
	in := gwTopo()
	local := LocalDatapaths(in)
	if len(local) != 3 || !local[1] || !local[2] || !local[3] {
		t.Fatalf("LocalDatapaths = %v, want {1,2,3} (router 4 lives on ch2)", local)
	}
	text := of.FlowsString(Flows(in))
	requireFlows(t, text, []string{
		// Localnet: tagged frames from the provider bridge, VLAN stripped,
		// with the switch's zones.
		"table=0, priority=150, cookie=0x0, in_port=5,vlan_tci=0x102a/0x1fff actions=pop_vlan,set_field:0x1->metadata,set_field:0x3->reg14,set_field:0x2/0xffff->reg13,set_field:0x3/0xffff->reg11,set_field:0x4/0xffff->reg12,resubmit(,8)",
		// A VIF loads its datapath's DNAT/SNAT zones too.
		"table=0, priority=100, cookie=0x0, in_port=1 actions=set_field:0x1->metadata,set_field:0x1->reg14,set_field:0x1/0xffff->reg13,set_field:0x3/0xffff->reg11,set_field:0x4/0xffff->reg12,resubmit(,8)",
		// Output to the localnet port pushes the tag.
		"table=77, priority=100, cookie=0x0, reg15=0x3,metadata=0x1 actions=push_vlan:0x8100,set_field:0x102a->vlan_tci,output:5,pop_vlan",
		// The l3gateway port of ch2's router is remote: tunnel to ch2.
		"table=41, priority=100, cookie=0x0, reg15=0x4,metadata=0x1 actions=set_field:0x1->tun_id,set_field:0x4->tun_metadata0,move:reg14[0..14]->tun_metadata0[16..30],output:10",
		// The chassisredirect port is active here: continue as r-ext (key 2)
		// with the router's zones.
		"table=42, priority=100, cookie=0x0, reg15=0x9,metadata=0x2 actions=set_field:0x2->reg15,set_field:0x5/0xffff->reg11,set_field:0x6/0xffff->reg12,resubmit(,43)",
		// Crossing s-r into router 2 loads the router's zones.
		"table=77, priority=100, cookie=0x0, reg15=0x2,metadata=0x1 actions=clone(ct_clear,set_field:0x0->reg10,set_field:0x0/0xffff->reg11,set_field:0x0/0xffff->reg12,set_field:0x0/0xffff->reg13,set_field:0x0->reg0,set_field:0x0->reg1,set_field:0x0->reg2,set_field:0x0->reg3,set_field:0x0->reg4,set_field:0x0->reg5,set_field:0x0->reg6,set_field:0x0->reg7,set_field:0x0->reg8,set_field:0x0->reg9,set_field:0x5/0xffff->reg11,set_field:0x6/0xffff->reg12,set_field:0->in_port,set_field:0x2->metadata,set_field:0x1->reg14,set_field:0x0->reg15,resubmit(,8))",
		// Flood from a tunnel: VIF a only (not the localnet port, not the
		// patch port, and the l3gateway port is not crossed here).
		"table=42, priority=150, cookie=0x0, reg10=0x2/0x2,reg15=0x8000,metadata=0x1 actions=set_field:0x3/0xffff->reg11,set_field:0x4/0xffff->reg12,set_field:0x1->reg15,set_field:0x1/0xffff->reg13,resubmit(,43),set_field:0x8000->reg15",
		// Local flood: a, s-r, ln (not s-gw: that goes to ch2 with c).
		"table=42, priority=100, cookie=0x0, reg15=0x8000,metadata=0x1 actions=set_field:0x3/0xffff->reg11,set_field:0x4/0xffff->reg12,set_field:0x1->reg15,set_field:0x1/0xffff->reg13,resubmit(,43),set_field:0x2->reg15,resubmit(,43),set_field:0x3->reg15,set_field:0x2/0xffff->reg13,resubmit(,43),set_field:0x8000->reg15",
	}, []string{"metadata=0x4", "reg15=0x4,metadata=0x1 actions=clone"})
	// Unmapped physical network: the localnet port is dropped, nothing
	// from its patch port is classified.
	in.Localnet = nil
	text = of.FlowsString(Flows(in))
	requireFlows(t, text, nil, []string{"in_port=5", "vlan"})
}

func TestLocalnetOnlyIsLocal(t *testing.T) {
	in := &Input{Chassis: "ch1", Ports: []Port{{Name: "ln", Datapath: 3, Key: 1, Type: TypeLocalnet}},
		Localnet: map[string]uint32{"ln": 7}}
	if got := LocalDatapaths(in); !got[3] {
		t.Fatalf("localnet datapath not local: %v", got)
	}
	requireFlows(t, of.FlowsString(Flows(in)), []string{
		// Untagged: only frames without a VLAN header.
		"table=0, priority=100, cookie=0x0, in_port=7,vlan_tci=0x0/0x1000 actions=set_field:0x3->metadata,set_field:0x1->reg14,set_field:0x0/0xffff->reg13,resubmit(,8)",
		"table=77, priority=100, cookie=0x0, reg15=0x1,metadata=0x3 actions=output:7",
	}, nil)
	in.Localnet = nil
	if got := LocalDatapaths(in); len(got) != 0 {
		t.Fatalf("unmapped localnet: local = %v", got)
	}
}

func TestGatewayFlowsCh2(t *testing.T) {
	in := gwTopo()
	in.Chassis = "ch2"
	in.VIFs = map[string]uint32{"c": 1}
	in.Tunnels = map[string]uint32{"ch1": 10}
	in.Localnet = nil
	local := LocalDatapaths(in)
	if len(local) != 4 {
		t.Fatalf("LocalDatapaths = %v, want {1,2,3,4} (the gateway router is local on its chassis)", local)
	}
	text := of.FlowsString(Flows(in))
	requireFlows(t, text, []string{
		// The cr port is active on ch1: tunnel there.
		"table=41, priority=100, cookie=0x0, reg15=0x9,metadata=0x2 actions=set_field:0x2->tun_id,set_field:0x9->tun_metadata0,move:reg14[0..14]->tun_metadata0[16..30],output:10",
		// s-gw is crossed here into router 4 with its zones.
		"table=77, priority=100, cookie=0x0, reg15=0x4,metadata=0x1 actions=clone(ct_clear,set_field:0x0->reg10,set_field:0x0/0xffff->reg11,set_field:0x0/0xffff->reg12,set_field:0x0/0xffff->reg13,set_field:0x0->reg0,set_field:0x0->reg1,set_field:0x0->reg2,set_field:0x0->reg3,set_field:0x0->reg4,set_field:0x0->reg5,set_field:0x0->reg6,set_field:0x0->reg7,set_field:0x0->reg8,set_field:0x0->reg9,set_field:0x9/0xffff->reg11,set_field:0xa/0xffff->reg12,set_field:0->in_port,set_field:0x4->metadata,set_field:0x1->reg14,set_field:0x0->reg15,resubmit(,8))",
		// Flood from a tunnel reaches c and crosses s-gw (only ch2 can).
		"table=42, priority=150, cookie=0x0, reg10=0x2/0x2,reg15=0x8000,metadata=0x1 actions=set_field:0x3/0xffff->reg11,set_field:0x4/0xffff->reg12,set_field:0x5->reg15,set_field:0x0/0xffff->reg13,resubmit(,43),set_field:0x4->reg15,resubmit(,43),set_field:0x8000->reg15",
	}, []string{"reg15=0x9,metadata=0x2 actions=set_field:0x2->reg15"})
}

func TestLoadBalancerFlows(t *testing.T) {
	lb, errs := ParseLoadBalancer("lb1", []uint32{1, 7}, map[string]string{
		"10.0.0.100:80":  "10.0.0.1:8080,10.0.0.2:8080",
		"10.0.0.101":     "10.0.0.3",
		"[fd00::64]:80":  "[fd00::1]:8080",
		"10.0.0.102:80":  "10.0.0.9", // port on one side only
		"10.0.0.103:80":  "fd00::1",  // mixed families
		"bogus":          "10.0.0.1", // not an address
		"10.0.0.104:443": "",         // no backends: no hairpin flows
	}, "tcp", map[string]string{"hairpin_snat_ip": "169.254.0.1 fd69::1"})
	if len(errs) != 3 {
		t.Fatalf("errors = %v, want 3 (port on one side, family, bogus)", errs)
	}
	for _, e := range errs {
		if !strings.Contains(e.Error(), "load balancer lb1: VIP ") {
			t.Errorf("error %q does not name the load balancer and VIP", e)
		}
	}
	if len(lb.VIPs) != 4 || lb.HairpinSNAT4 != netip.MustParseAddr("169.254.0.1") || lb.HairpinSNAT6 != netip.MustParseAddr("fd69::1") {
		t.Fatalf("parsed %+v", lb)
	}
	if _, errs := ParseLoadBalancer("x", nil, nil, "icmp", nil); len(errs) != 1 {
		t.Errorf("protocol icmp: errs = %v", errs)
	}
	in := topo()                              // datapath 1 local, 7 not
	in.LoadBalancers = []LoadBalancer{lb, lb} // a duplicate changes nothing
	text := of.FlowsString(Flows(in))
	requireFlows(t, text, []string{
		"table=83, priority=100, cookie=0x0, tcp,metadata=0x1,ct_state=-inv+trk,ct_mark=0x2/0x2,ip_src=10.0.0.1,ip_dst=10.0.0.1,tcp_dst=8080,ct_nw_proto=6,ct_nw_dst=10.0.0.100,ct_tp_dst=80 actions=set_field:0x80/0x80->reg10",
		"table=83, priority=100, cookie=0x0, ip,metadata=0x1,ct_state=-inv+trk,ct_mark=0x2/0x2,ip_src=10.0.0.3,ip_dst=10.0.0.3,ct_nw_dst=10.0.0.101 actions=set_field:0x80/0x80->reg10",
		"table=84, priority=100, cookie=0x0, tcp,metadata=0x1,ip_src=10.0.0.2,ip_dst=169.254.0.1,tcp_src=8080 actions=set_field:0x80/0x80->reg10",
		"table=84, priority=100, cookie=0x0, tcp6,metadata=0x1,ipv6_src=fd00::1,ipv6_dst=fd69::1,tcp_src=8080 actions=set_field:0x80/0x80->reg10",
		"table=85, priority=100, cookie=0x0, ip,metadata=0x1,ct_state=-inv+trk,ct_nw_proto=6,ct_nw_dst=10.0.0.100,ct_tp_dst=80 actions=ct(commit,zone=reg12[0..15],nat(src=169.254.0.1))",
		"table=85, priority=100, cookie=0x0, ipv6,metadata=0x1,ct_state=-inv+trk,ct_nw_proto=6,ct_ipv6_dst=fd00::64,ct_tp_dst=80 actions=ct(commit,zone=reg12[0..15],nat(src=[fd69::1]))",
	}, []string{"metadata=0x7", "10.0.0.104", "10.0.0.102", "10.0.0.103"})
	if n := strings.Count(text, "table=83, priority=100"); n != 4 {
		t.Errorf("%d chk_lb_hairpin flows, want 4 (one per backend)", n)
	}
}

// TestLocalnetRealOVS installs gwTopo's flows (with a load balancer's
// hairpin tables, so OVS must accept the conntrack original-tuple matches)
// into a real br-int and traces the localnet VLAN handling.
func TestLocalnetRealOVS(t *testing.T) {
	v := ovstest.Start(t, ovstest.Options{Bridges: []string{"br-int"}, PrivateNetns: true})
	for _, args := range [][]string{
		{"add-port", "br-int", "va", "--", "set", "Interface", "va", "type=internal", "ofport_request=1"},
		{"add-port", "br-int", "pln", "--", "set", "Interface", "pln", "type=internal", "ofport_request=5"},
	} {
		if out, err := v.Vsctl(args...); err != nil {
			t.Fatalf("ovs-vsctl %v: %v %s", args, err, out)
		}
	}
	in := gwTopo()
	in.Tunnels = nil
	lb, errs := ParseLoadBalancer("lb", []uint32{1}, map[string]string{"10.0.0.100:80": "10.0.0.1:8080", "[fd00::64]:80": "[fd00::1]:8080"}, "tcp", nil)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	in.LoadBalancers = []LoadBalancer{lb}
	text := of.FlowsString(Flows(in)) +
		"table=8,priority=50,metadata=0x1,dl_dst=00:00:00:00:00:01 actions=set_field:0x1->reg15,resubmit(,41)\n" +
		"table=8,priority=50,metadata=0x1,dl_dst=00:00:00:00:00:ee actions=set_field:0x3->reg15,resubmit(,41)\n" +
		"table=44,priority=0 actions=resubmit(,77)\n"
	if out, err := v.OfctlStdin(text, "-O", "OpenFlow15", "add-flows", "br-int", "-"); err != nil {
		t.Fatalf("add-flows: %v %s\n%s", err, out, text)
	}
	out, err := v.Ofctl("dump-flows", "br-int", "table=85")
	if err != nil || !strings.Contains(out, "ct_nw_dst=10.0.0.100") {
		t.Fatalf("ct_snat_to_vip flow not installed: %v\n%s", err, out)
	}
	trace := func(flow string) string {
		t.Helper()
		out, err := v.Appctl("ofproto/trace", "br-int", flow)
		if err != nil {
			t.Fatalf("trace %s: %v %s", flow, err, out)
		}
		i := strings.Index(out, "Datapath actions:")
		if i < 0 {
			t.Fatalf("trace %s: no datapath actions:\n%s", flow, out)
		}
		return strings.TrimSpace(out[i+len("Datapath actions:"):])
	}
	dpif, err := v.Appctl("dpif/show")
	if err != nil {
		t.Fatal(err)
	}
	portNo := func(name string) string {
		m := regexp.MustCompile(`\b` + name + ` \d+/(\d+)`).FindStringSubmatch(dpif)
		if m == nil {
			t.Fatalf("no datapath port for %s in\n%s", name, dpif)
		}
		return m[1]
	}
	va, pln := portNo("va"), portNo("pln")
	// a → the physical network: tagged with VLAN 42.
	if got := trace("in_port=1,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:ee"); !strings.Contains(got, "push_vlan(vid=42") || !strings.HasSuffix(got, ","+pln) {
		t.Errorf("a→physical: datapath actions %q, want push_vlan(vid=42...),%s", got, pln)
	}
	// VLAN 42 from the physical network → a, untagged.
	if got := trace("in_port=5,dl_vlan=42,dl_src=00:00:00:00:00:ee,dl_dst=00:00:00:00:00:01"); got != "pop_vlan,"+va {
		t.Errorf("physical→a: datapath actions %q, want pop_vlan,%s", got, va)
	}
	// Untagged or another VLAN from the physical network: dropped.
	for _, f := range []string{"in_port=5,dl_dst=00:00:00:00:00:01", "in_port=5,dl_vlan=7,dl_dst=00:00:00:00:00:01"} {
		if got := trace(f); got != "drop" {
			t.Errorf("%s: datapath actions %q, want drop", f, got)
		}
	}
}
