package translate

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/govn/govn/controller"
	"github.com/govn/govn/controller/ofctrl"
)

const (
	uPS    = "11111111-0000-0000-0000-000000000001"
	uACL1  = "22222222-0000-0000-0000-000000000002"
	uACL2  = "22222222-0000-0000-0000-000000000003" // same cookie as uACL1
	uCT    = "33333333-0000-0000-0000-000000000004"
	uOut   = "44444444-0000-0000-0000-000000000005"
	uBad   = "55555555-0000-0000-0000-000000000006"
	uGrp   = "66666666-0000-0000-0000-000000000007"
	uLB    = "77777777-0000-0000-0000-000000000008"
	uAS    = "88888888-0000-0000-0000-000000000009"
	uNone  = "99999999-0000-0000-0000-00000000000a"
	uNone2 = "aaaaaaaa-0000-0000-0000-00000000000b"
)

func testFlows() []Flow {
	return []Flow{
		{UUID: uPS, Table: 0, Priority: 50, Match: `inport == "a" && eth.src == 00:00:00:00:00:01`, Actions: "next;", Datapaths: []uint32{1}},
		{UUID: uACL1, Pipeline: controller.Egress, Table: 4, Priority: 2001, Match: `ip4.src == {10.0.0.1, 10.0.0.2} && tcp.dst == {22, 23}`, Actions: "drop;", Datapaths: []uint32{1}},
		{UUID: uACL2, Pipeline: controller.Egress, Table: 4, Priority: 2002, Match: `ip4.src == {10.0.0.3, 10.0.0.4} && tcp.dst == {80, 443}`, Actions: "drop;", Datapaths: []uint32{1}},
		{UUID: uCT, Table: 6, Priority: 100, Match: "ip", Actions: "ct_next;", Datapaths: []uint32{1}},
		{UUID: uOut, Table: 30, Priority: 100, Match: `eth.mcast`, Actions: `outport = "_MC_flood"; output;`, Datapaths: []uint32{1}},
		{UUID: uBad, Table: 1, Priority: 1, Match: "nosuchfield == 1", Actions: "next;", Datapaths: []uint32{1}},
		{UUID: uGrp, Table: 2, Priority: 0, Match: "1", Actions: "next;", Datapaths: []uint32{1, 2}},
		{UUID: uLB, Table: 12, Priority: 120, Match: "ct.new && ip4.dst == 10.0.0.100 && tcp.dst == 80", Actions: "ct_lb_mark(backends=10.0.0.1:80,10.0.0.2:80);", Datapaths: []uint32{1}},
		{UUID: uAS, Table: 8, Priority: 10, Match: "ip4.src == $as1", Actions: "next;", Datapaths: []uint32{1}},
		{UUID: uNone, Table: 25, Priority: 0, Match: "1", Actions: `outport = get_fdb(eth.dst); next;`, Datapaths: []uint32{1}},
		{UUID: uNone2, Table: 26, Priority: 50, Match: `outport == "none"`, Actions: `outport = "_MC_flood"; output;`, Datapaths: []uint32{1}},
	}
}

func testEnv() *Env {
	return &Env{
		Datapaths:   map[uint32]*Datapath{1: {Key: 1, Ports: map[string]uint32{"a": 1, "b": 2, "_MC_flood": 32768}}},
		AddressSets: map[string][]string{"as1": {"10.1.0.1", "10.1.0.2"}},
		Resident:    map[string]bool{"a": true},
	}
}

func find(fs []ofctrl.Flow, pred func(ofctrl.Flow) bool) []ofctrl.Flow {
	var out []ofctrl.Flow
	for _, f := range fs {
		if pred(f) {
			out = append(out, f)
		}
	}
	return out
}

func TestTranslate(t *testing.T) {
	tr := New()
	out := tr.Translate(testFlows(), testEnv())
	if len(out.Errors) != 1 || out.Errors[0].UUID != uBad || !strings.Contains(out.Errors[0].Error(), "nosuchfield") {
		t.Fatalf("errors = %v, want one for %s naming the field", out.Errors, uBad)
	}
	if out.Skipped != 1 {
		t.Errorf("skipped = %d, want 1 (datapath 2 is not local)", out.Skipped)
	}
	// Port security: ingress table 0 → OpenFlow table 8, cookie = UUID prefix.
	ps := find(out.Flows, func(f ofctrl.Flow) bool { return f.Cookie == 0x11111111 })
	if len(ps) != 1 || ps[0].Table != controller.TableLogIngress || ps[0].Priority != 50 ||
		ps[0].Match != "reg14=0x1,metadata=0x1,eth_src=00:00:00:00:00:01" || ps[0].Actions != "resubmit(,9)" {
		t.Errorf("port security flow = %+v", ps)
	}
	// Output: outport = "_MC_flood" then the remote output table.
	o := find(out.Flows, func(f ofctrl.Flow) bool { return f.Cookie == 0x44444444 })
	if len(o) != 1 || !strings.Contains(o[0].Actions, "set_field:0x8000->reg15") ||
		!strings.HasSuffix(o[0].Actions, "resubmit(,41)") || o[0].Table != controller.TableLogIngress+30 {
		t.Errorf("output flow = %+v", o)
	}
	// Two ACLs with one cookie prefix get disjoint conjunction ids in
	// egress table 4 (OpenFlow 48).
	conjIDs := map[string]bool{}
	for _, f := range out.Flows {
		if f.Table == controller.TableLogEgress+4 && strings.Contains(f.Match, "conj_id=") {
			id := strings.SplitN(strings.SplitN(f.Match, "conj_id=", 2)[1], ",", 2)[0]
			if conjIDs[id] {
				t.Errorf("conj_id %s used twice", id)
			}
			conjIDs[id] = true
		}
	}
	if len(conjIDs) != 2 {
		t.Errorf("conj_id flows in egress table 4: %v, want 2", conjIDs)
	}
	// Load balancer: one select group, referenced by the flow.
	if len(out.Groups) != 1 || !strings.Contains(out.Groups[0].Spec, "type=select") {
		t.Fatalf("groups = %+v", out.Groups)
	}
	lb := find(out.Flows, func(f ofctrl.Flow) bool { return f.Cookie == 0x77777777 })
	if len(lb) != 1 || !strings.Contains(lb[0].Actions, "group:1") {
		t.Errorf("lb flow = %+v", lb)
	}
	// get_fdb looks up the FDB table; outport "none" is key 0.
	if f := find(out.Flows, func(f ofctrl.Flow) bool { return f.Cookie == 0x99999999 }); len(f) != 1 ||
		!strings.Contains(f[0].Actions, fmt.Sprintf("resubmit(,%d)", controller.TableGetFDB)) {
		t.Errorf("get_fdb flow = %+v", f)
	}
	if f := find(out.Flows, func(f ofctrl.Flow) bool { return f.Cookie == 0xaaaaaaaa }); len(f) != 1 ||
		!strings.Contains(f[0].Match, "reg15=0,") && !strings.Contains(f[0].Match, "reg15=0x0") {
		t.Errorf(`outport == "none" flow = %+v`, f)
	}
	checkOfctl(t, out)

	// A second run with nothing changed reuses everything.
	out2 := tr.Translate(testFlows(), testEnv())
	if out2.Compiled != 0 || out2.Reused != out.Compiled+out.Reused || len(out2.Flows) != len(out.Flows) {
		t.Errorf("second run: compiled %d reused %d flows %d; first: compiled %d flows %d",
			out2.Compiled, out2.Reused, len(out2.Flows), out.Compiled, len(out.Flows))
	}
	if len(out2.Groups) != 1 || out2.Groups[0] != out.Groups[0] {
		t.Errorf("groups changed: %v → %v", out.Groups, out2.Groups)
	}
	// Changing a's port key recompiles only the flow that names it; changing
	// the address set only the flow that uses it.
	env := testEnv()
	env.Datapaths[1].Ports["a"] = 7
	env.AddressSets["as1"] = []string{"10.1.0.9"}
	out3 := tr.Translate(testFlows(), env)
	if out3.Compiled != 2 { // port security and the address set flow
		t.Errorf("after port key change: compiled %d, want 2", out3.Compiled)
	}
	if ps := find(out3.Flows, func(f ofctrl.Flow) bool { return f.Cookie == 0x11111111 }); len(ps) != 1 || !strings.Contains(ps[0].Match, "reg14=0x7") {
		t.Errorf("port security after key change = %+v", ps)
	}
	as := find(out3.Flows, func(f ofctrl.Flow) bool { return f.Cookie == 0x88888888 })
	if len(as) != 1 || !strings.Contains(as[0].Match, "ip_src=10.1.0.9") {
		t.Errorf("address set flow after change = %+v", as)
	}
	// Dropping the LB flow frees its group.
	var fl []Flow
	for _, f := range testFlows() {
		if f.UUID != uLB {
			fl = append(fl, f)
		}
	}
	if out4 := tr.Translate(fl, env); len(out4.Groups) != 0 || len(tr.groupIDs) != 0 {
		t.Errorf("groups after removing the LB flow: %v (allocator %v)", out4.Groups, tr.groupIDs)
	}
}

func TestCookie(t *testing.T) {
	for in, want := range map[string]uint64{"deadbeef-1234": 0xdeadbeef, "0000000a-x": 0xa, "xyz": 0, "": 0, "gggggggg-": 0} {
		if got := Cookie(in); got != want {
			t.Errorf("Cookie(%q) = %#x, want %#x", in, got, want)
		}
	}
}

// checkOfctl checks that ovs-ofctl accepts every flow and group.
func checkOfctl(t *testing.T, out *Output) {
	t.Helper()
	if _, err := exec.LookPath("ovs-ofctl"); err != nil {
		t.Skip("ovs-ofctl not installed")
	}
	var sb strings.Builder
	for _, f := range out.Flows {
		sb.WriteString(f.String())
		sb.WriteByte('\n')
	}
	cmd := exec.Command("ovs-ofctl", "-O", "OpenFlow15", "parse-flows", "-")
	cmd.Stdin = strings.NewReader(sb.String())
	res, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(res), "decode error") {
		t.Fatalf("ovs-ofctl parse-flows: %v\n%s\ninput:\n%s", err, res, sb.String())
	}
	for _, g := range out.Groups {
		if res, err := exec.Command("ovs-ofctl", "-O", "OpenFlow15", "parse-group", g.String()).CombinedOutput(); err != nil {
			t.Fatalf("ovs-ofctl parse-group %s: %v\n%s", g, err, res)
		}
	}
}

// TestSharedAcrossDatapaths: a flow on several datapaths is compiled once
// when it names no port, per datapath when it does.
func TestSharedAcrossDatapaths(t *testing.T) {
	env := &Env{Datapaths: map[uint32]*Datapath{
		1:  {Key: 1, Ports: map[string]uint32{"b": 2}},
		16: {Key: 16, Ports: map[string]uint32{"b": 5}},
	}}
	flows := []Flow{
		{UUID: "00000001-0000-0000-0000-000000000000", Table: 3, Priority: 10, Match: "ip4 && ip4.dst == {10.0.0.1, 10.0.0.2} && tcp.dst == {1, 2}", Actions: "next;", Datapaths: []uint32{16, 1}},
		{UUID: "00000002-0000-0000-0000-000000000000", Table: 4, Priority: 10, Match: `outport == "b"`, Actions: "next;", Datapaths: []uint32{1, 16}},
	}
	tr := New()
	out := tr.Translate(flows, env)
	if len(out.Errors) > 0 || out.Compiled != 4 {
		t.Fatalf("compiled %d, errors %v", out.Compiled, out.Errors)
	}
	count := map[string]int{}
	for _, f := range out.Flows {
		switch {
		case strings.Contains(f.Match, "metadata=0x10"):
			count["16"]++
		case strings.Contains(f.Match, "metadata=0x1"):
			count["1"]++
		}
	}
	if count["1"] != count["16"] || count["1"] != 6 { // 4 conjunction clauses + conj_id + outport flow
		t.Errorf("flows per datapath = %v, want 6 each\n%v", count, out.Flows)
	}
	outFlows := find(out.Flows, func(f ofctrl.Flow) bool { return f.Cookie == 2 })
	if len(outFlows) != 2 || !strings.Contains(outFlows[0].Match+outFlows[1].Match, "reg15=0x2,metadata=0x1") ||
		!strings.Contains(outFlows[0].Match+" "+outFlows[1].Match, "reg15=0x5,metadata=0x10") {
		t.Errorf("outport flows = %v", outFlows)
	}
	checkOfctl(t, out)
}

// TestGroupBackendChange: a load balancer flow whose backends change (as
// northd rewrites it) gets a group with the new buckets and the old group's
// id is freed, so changing backends back and forth never grows the id set.
func TestGroupBackendChange(t *testing.T) {
	tr := New()
	env := testEnv()
	dp := uint32(1)
	lb := func(uuid, backends string) []Flow {
		return []Flow{{UUID: uuid, Pipeline: controller.Ingress, Table: 6, Priority: 120,
			Match: "ct.new && ip4.dst == 10.0.0.100 && tcp.dst == 80", Actions: "ct_lb_mark(backends=" + backends + ");", Datapaths: []uint32{dp}}}
	}
	ids := map[uint32]bool{}
	for i, bs := range []string{"10.0.0.1:8080,10.0.0.2:8080", "10.0.0.1:8080", "10.0.0.1:8080,10.0.0.2:8080", "10.0.0.1:8080"} {
		out := tr.Translate(lb(fmt.Sprintf("%08x-0000-0000-0000-000000000000", 0x5000+i), bs), env)
		if len(out.Errors) > 0 || len(out.Groups) != 1 {
			t.Fatalf("run %d: groups %v errors %v", i, out.Groups, out.Errors)
		}
		g := out.Groups[0]
		if n := strings.Count(g.Spec, "bucket="); n != strings.Count(bs, ",")+1 {
			t.Errorf("run %d: group %q has %d buckets for backends %s", i, g.Spec, n, bs)
		}
		if len(tr.groupIDs) != 1 {
			t.Errorf("run %d: allocator holds %v, want only the live group", i, tr.groupIDs)
		}
		ids[g.ID] = true
	}
	if len(ids) > 2 {
		t.Errorf("group ids used across 4 backend changes: %v, want at most 2 (freed ids are reused)", ids)
	}
}
