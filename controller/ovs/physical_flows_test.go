package ovs

import (
	"net/netip"
	"testing"

	"github.com/govn/govn/controller"
	"github.com/govn/govn/controller/ofctrl"
	"github.com/govn/govn/controller/physical"
	"github.com/govn/govn/controller/translate"
	"github.com/govn/govn/lflow/of"
)

// TestPhysicalFlowsReconcile installs the flows controller/physical
// generates (typed lflow/of flows rendered as text) and checks that a
// restarted syncer finds nothing to change: our normalization agrees with
// what ovs-vswitchd prints for real generator output.
func TestPhysicalFlowsReconcile(t *testing.T) {
	in := &physical.Input{
		Chassis: "ch1",
		Ports: []physical.Port{
			{Name: "a", Datapath: 1, Key: 1, Chassis: "ch1"},
			{Name: "b", Datapath: 1, Key: 2, Chassis: "ch1"},
			{Name: "c", Datapath: 1, Key: 3, Chassis: "ch2"},
			{Name: "e", Datapath: 1, Key: 5},
			// A patch pair to a router: the crossing clone sets in_port
			// (which OVS accepts only as the 16-bit NXM field).
			{Name: "ls-rtr", Datapath: 1, Key: 6, Type: physical.TypePatch, Peer: "rtr-ls"},
			{Name: "rtr-ls", Datapath: 2, Key: 1, Type: physical.TypePatch, Peer: "ls-rtr"},
		},
		Groups: []physical.MulticastGroup{
			{Datapath: 1, Key: 32768, Name: "_MC_flood", Ports: []string{"a", "b", "c", "e"}},
		},
		VIFs:        map[string]uint32{"a": 1, "b": 2},
		Tunnels:     map[string]uint32{"ch2": 10},
		Zones:       map[string]uint16{"a": 1, "b": 2},
		MACBindings: []physical.MACBinding{{Datapath: 1, Port: 3, IP: netip.MustParseAddr("10.0.0.3"), MAC: 0x0a0000000003}},
	}
	typed := physical.Flows(in)
	if len(typed) == 0 {
		t.Fatal("physical produced no flows")
	}
	flows := make([]ofctrl.Flow, len(typed))
	for i := range typed {
		f := &typed[i]
		flows[i] = ofctrl.Flow{Table: f.Table, Priority: f.Priority, Cookie: f.Cookie, Match: f.Match.String(), Actions: of.ActionsString(f.Actions)}
	}
	tlv, err := ofctrl.ParseTLVMap(controller.TLVMap)
	if err != nil {
		t.Fatal(err)
	}
	v := startBridge(t)
	of1, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	of1.SetTLVMaps(tlv)
	res := mustSync(t, of1, flows, nil)
	if len(res.Diff.AddFlows) == 0 {
		t.Fatalf("nothing installed: %s", res.Diff)
	}
	if n := flowCount(t, v); n != len(res.Diff.AddFlows) {
		t.Fatalf("flow_count = %d, installed %d", n, len(res.Diff.AddFlows))
	}
	of2, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	of2.SetTLVMaps(tlv)
	if res := mustSync(t, of2, flows, nil); !res.Diff.Empty() {
		t.Fatalf("restart reconcile of physical flows changed something: %s\n%s", res.Diff, res.Diff.Bundle(ofctrl.DefaultOwner))
	}
}

// TestTranslatedFlowsReconcile does the same for controller/translate's
// output from logical flows (conjunctions, conntrack, a load-balancer
// select group, address sets).
func TestTranslatedFlowsReconcile(t *testing.T) {
	lflows := []translate.Flow{
		{UUID: "11111111-0000-0000-0000-000000000001", Table: 0, Priority: 50, Match: `inport == "a" && eth.src == 00:00:00:00:00:01`, Actions: "next;", Datapaths: []uint32{1}},
		{UUID: "22222222-0000-0000-0000-000000000002", Pipeline: controller.Egress, Table: 4, Priority: 2001, Match: `ip4.src == {10.0.0.1, 10.0.0.2} && tcp.dst == {22, 23}`, Actions: "drop;", Datapaths: []uint32{1}},
		{UUID: "33333333-0000-0000-0000-000000000004", Table: 6, Priority: 100, Match: "ip", Actions: "ct_next;", Datapaths: []uint32{1}},
		{UUID: "44444444-0000-0000-0000-000000000005", Table: 30, Priority: 100, Match: `eth.mcast`, Actions: `outport = "_MC_flood"; output;`, Datapaths: []uint32{1}},
		{UUID: "77777777-0000-0000-0000-000000000008", Table: 12, Priority: 120, Match: "ct.new && ip4.dst == 10.0.0.100 && tcp.dst == 80", Actions: "ct_lb_mark(backends=10.0.0.1:80,10.0.0.2:80);", Datapaths: []uint32{1}},
		{UUID: "88888888-0000-0000-0000-000000000009", Table: 8, Priority: 10, Match: "ip4.src == $as1", Actions: "next;", Datapaths: []uint32{1}},
	}
	env := &translate.Env{
		Datapaths:   map[uint32]*translate.Datapath{1: {Key: 1, Ports: map[string]uint32{"a": 1, "b": 2, "_MC_flood": 32768}}},
		AddressSets: map[string][]string{"as1": {"10.1.0.1", "10.1.0.2"}},
		Resident:    map[string]bool{"a": true},
	}
	out := translate.New().Translate(lflows, env)
	if len(out.Errors) > 0 || len(out.Groups) == 0 {
		t.Fatalf("translate: errors %v, groups %v", out.Errors, out.Groups)
	}
	v := startBridge(t)
	of1, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	res := mustSync(t, of1, out.Flows, out.Groups)
	if len(res.Diff.AddFlows) == 0 || len(res.Diff.AddGroups) != len(out.Groups) {
		t.Fatalf("install: %s", res.Diff)
	}
	of2, err := NewOpenFlow(v.MgmtSock("br-int"), ofctrl.DefaultOwner, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res := mustSync(t, of2, out.Flows, out.Groups); !res.Diff.Empty() {
		t.Fatalf("restart reconcile of translated flows changed something: %s\n%s", res.Diff, res.Diff.Bundle(ofctrl.DefaultOwner))
	}
}
