package translate

import (
	"testing"

	"github.com/govn/govn/controller"
	"github.com/govn/govn/lflow/expr"
	"github.com/govn/govn/lflow/symtab"
)

func TestRequiredInport(t *testing.T) {
	cases := []struct {
		match, port string
		ok          bool
	}{
		{`inport == "p1"`, "p1", true},
		{`inport == "p1" && arp.tpa == 10.0.0.1 && arp.op == 1`, "p1", true},
		{`arp.op == 1 && inport == "p1"`, "p1", true},
		{`ip4 && (tcp || udp) && inport == "p1"`, "p1", true},
		{`inport == "p1" || eth.bcast`, "", false},
		{`eth.bcast || inport == "p1"`, "", false},
		{`!inport == "p1"`, "", false}, // not valid OVN, never a skip
		{`(inport == "p1" || inport == "p2") && ip4`, "", false},
		{`inport == {"p1", "p2"}`, "", false},
		{`inport != "p1" && ip4`, "", false},
		{`outport == "p1"`, "", false},
		{`ip4 && inport == "p1" == 1`, "", false},
		{`inport == "unterminated`, "", false},
		{`ip4`, "", false},
	}
	for _, c := range cases {
		p, ok := requiredInport(c.match)
		if p != c.port || ok != c.ok {
			t.Errorf("requiredInport(%q) = %q, %v; want %q, %v", c.match, p, ok, c.port, c.ok)
		}
		// A reported port comes from a match the compiler accepts.
		if ok {
			if _, err := expr.Parse(c.match, symtab.Default()); err != nil {
				t.Errorf("requiredInport accepted %q which does not parse: %v", c.match, err)
			}
		}
	}
}

// TestRemoteVIFSkip: an ingress flow of a switch that requires inport ==
// a VIF bound on another chassis yields no OpenFlow flows; the same flow
// on a router, in egress, or for a local port does; and when the port
// becomes local the cached translation is redone.
func TestRemoteVIFSkip(t *testing.T) {
	env := &Env{Datapaths: map[uint32]*Datapath{
		1: {Key: 1, Ports: map[string]uint32{"vm1": 1, "vm2": 2}},
		2: {Key: 2, Router: true, Ports: map[string]uint32{"vm1": 1}},
	}, RemoteVIFs: map[string]bool{"vm1": true}}
	flows := []Flow{
		{UUID: "00000001-0000-0000-0000-000000000000", Pipeline: controller.Ingress, Table: 19, Priority: 100,
			Match: `inport == "vm1" && arp.tpa == 10.0.0.1 && arp.op == 1`, Actions: "next;", Datapaths: []uint32{1, 2}},
		{UUID: "00000002-0000-0000-0000-000000000000", Pipeline: controller.Ingress, Table: 19, Priority: 100,
			Match: `inport == "vm2" && arp.tpa == 10.0.0.2 && arp.op == 1`, Actions: "next;", Datapaths: []uint32{1}},
		{UUID: "00000003-0000-0000-0000-000000000000", Pipeline: controller.Egress, Table: 1, Priority: 100,
			Match: `inport == "vm1" && ip4`, Actions: "next;", Datapaths: []uint32{1}},
		{UUID: "00000004-0000-0000-0000-000000000000", Pipeline: controller.Ingress, Table: 19, Priority: 90,
			Match: `inport == "vm1" || arp.op == 2`, Actions: "next;", Datapaths: []uint32{1}},
	}
	count := func(out *Output) map[[2]uint64]int {
		m := map[[2]uint64]int{}
		for _, f := range out.Flows {
			dp := uint64(1)
			if containsMeta(f.Match, "metadata=0x2") {
				dp = 2
			}
			m[[2]uint64{f.Cookie, dp}]++
		}
		return m
	}
	tr := New()
	out := tr.Translate(flows, env)
	if len(out.Errors) > 0 {
		t.Fatal(out.Errors)
	}
	c := count(out)
	if c[[2]uint64{1, 1}] != 0 {
		t.Errorf("remote VIF's ingress flow installed on the switch: %v", out.Flows)
	}
	for _, k := range [][2]uint64{{1, 2}, {2, 1}, {3, 1}, {4, 1}} {
		if c[k] == 0 {
			t.Errorf("flow %d on datapath %d missing (only a switch ingress flow requiring a remote VIF is skipped): %v", k[0], k[1], out.Flows)
		}
	}
	checkOfctl(t, out)

	// vm1 binds here: the skipped flow appears.
	env.RemoteVIFs = map[string]bool{}
	out = tr.Translate(flows, env)
	if count(out)[[2]uint64{1, 1}] == 0 {
		t.Errorf("flow not installed after its port became local: %v", out.Flows)
	}
	// And goes again when it leaves.
	env.RemoteVIFs = map[string]bool{"vm1": true}
	out = tr.Translate(flows, env)
	if count(out)[[2]uint64{1, 1}] != 0 {
		t.Errorf("flow still installed after its port moved away: %v", out.Flows)
	}
}

func containsMeta(match, meta string) bool {
	for i := 0; i+len(meta) <= len(match); i++ {
		if match[i:i+len(meta)] == meta && (i+len(meta) == len(match) || match[i+len(meta)] == ',') {
			return true
		}
	}
	return false
}
