package ofctrl

import (
	"strings"
	"testing"
)

func mustState(t *testing.T, flows []Flow, groups []Group) *State {
	t.Helper()
	s, err := NewState(DefaultOwner, flows, groups)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestComputeAndApply(t *testing.T) {
	installed := mustState(t, []Flow{
		{Table: 0, Priority: 100, Match: "in_port=1", Actions: "resubmit(,8)", Cookie: 1},
		{Table: 8, Priority: 50, Match: "ip", Actions: "drop", Cookie: 2},
		{Table: 8, Priority: 10, Match: "", Actions: "output:2", Cookie: 3},
		{Table: 9, Priority: 1, Match: "arp", Actions: "output:3", Cookie: 4},
	}, []Group{{ID: 1, Spec: "type=all,bucket=bucket_id:0,actions=output:1"}, {ID: 2, Spec: "type=all,bucket=bucket_id:0,actions=output:2"}})
	desired := mustState(t, []Flow{
		{Table: 0, Priority: 100, Match: "in_port=1", Actions: "resubmit(,8)", Cookie: 1}, // same
		{Table: 8, Priority: 50, Match: "ip", Actions: "output:1", Cookie: 2},             // actions changed
		{Table: 8, Priority: 10, Match: "", Actions: "output:2", Cookie: 7},               // cookie changed
		{Table: 10, Priority: 1, Match: "ipv6", Actions: "group:3", Cookie: 5},            // new
	}, []Group{{ID: 1, Spec: "type=all,bucket=bucket_id:0,actions=output:1"}, {ID: 2, Spec: "type=all,bucket=bucket_id:0,actions=output:9"}, {ID: 3, Spec: "type=all"}})
	d := Compute(desired, installed)
	if got, want := d.String(), "flows +1 ~1 ^1 -1 =1, groups +1 ~1 -0 =1"; got != want {
		t.Fatalf("diff = %s, want %s", got, want)
	}
	b := d.Bundle(DefaultOwner)
	want := strings.Join([]string{
		"group add group_id=3,type=all",
		"group modify group_id=2,type=all,bucket=bucket_id:0,actions=output:9",
		"flow delete_strict table=9,priority=1,cookie=0x6776000000000000/0xffff000000000000,arp",
		"flow modify_strict table=8,priority=50,ip,actions=output:1",
		"flow add table=8,priority=10,cookie=0x6776000000000007,actions=output:2",
		"flow add table=10,priority=1,cookie=0x6776000000000005,ipv6,actions=group:3",
		"",
	}, "\n")
	if b != want {
		t.Fatalf("bundle:\n%s\nwant:\n%s", b, want)
	}
	installed.Apply(d)
	if d2 := Compute(desired, installed); !d2.Empty() || d2.Unchanged != 4 || d2.UnchangedGr != 3 {
		t.Fatalf("after Apply: %s", d2)
	}
	// Removing everything deletes flows before groups.
	d3 := Compute(mustState(t, nil, nil), installed)
	b3 := d3.Bundle(DefaultOwner)
	if i, j := strings.Index(b3, "flow delete_strict"), strings.Index(b3, "group delete"); i < 0 || j < i {
		t.Fatalf("group deletes must follow flow deletes:\n%s", b3)
	}
}

func TestNewStateErrors(t *testing.T) {
	f := Flow{Table: 1, Priority: 2, Match: "ip", Actions: "drop"}
	g := f
	g.Actions = "output:1"
	if _, err := NewState(DefaultOwner, []Flow{f, f}, nil); err != nil {
		t.Fatalf("identical duplicates: %v", err)
	}
	if _, err := NewState(DefaultOwner, []Flow{f, g}, nil); err == nil || !strings.Contains(err.Error(), "conflicting flows") {
		t.Fatalf("conflict: %v", err)
	}
	h := f
	h.Cookie = 1 << 60
	if _, err := NewState(DefaultOwner, []Flow{h}, nil); err == nil || !strings.Contains(err.Error(), "owner bits") {
		t.Fatalf("owner bits: %v", err)
	}
	if _, err := NewState(DefaultOwner, nil, []Group{{ID: 0}}); err == nil {
		t.Fatal("group 0 accepted")
	}
	if _, err := NewState(DefaultOwner, nil, []Group{{ID: 4, Spec: "type=all"}, {ID: 4, Spec: "type=select"}}); err == nil {
		t.Fatal("conflicting groups accepted")
	}
	if err := (Owner{Tag: 1, Mask: 0}).Validate(); err == nil {
		t.Fatal("zero mask accepted")
	}
	if err := DefaultOwner.Validate(); err != nil {
		t.Fatal(err)
	}
}

// Real ovs-ofctl 3.1 output (dump-flows --no-stats, OpenFlow15).
const dumped = `OFPST_FLOW reply (OF1.5) (xid=0x2):
 priority=100,in_port=5 actions=set_field:0x1->reg13,resubmit(,8)
 cookie=0x6776000000001234, table=10, priority=5,metadata=0x3,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00 actions=move:NXM_NX_REG14[]->NXM_NX_REG15[],group:3
 cookie=0x6776000000000001, table=20, actions=drop
 cookie=0x6776000000000002, table=21, ip actions=drop
 cookie=0x6776000000000003, table=22, priority=0 actions=drop
 cookie=0x6776000000000004, duration=1.5s, table=23, n_packets=0, n_bytes=0, send_flow_rem idle_age=0, priority=7,tcp,tp_dst=80 actions=ct(table=9,zone=NXM_NX_REG13[0..15])
 cookie=0x6776000000000005, table=24, reset_counts priority=1 actions=drop
`

func TestParseDumpFlows(t *testing.T) {
	flows, err := ParseDumpFlows(DefaultOwner, dumped)
	if err != nil {
		t.Fatal(err)
	}
	want := []Flow{
		{Table: 10, Priority: 5, Cookie: 0x1234, Match: "metadata=0x3,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00", Actions: "move:NXM_NX_REG14[]->NXM_NX_REG15[],group:3"},
		{Table: 20, Priority: 32768, Cookie: 1, Match: "", Actions: "drop"},
		{Table: 21, Priority: 32768, Cookie: 2, Match: "ip", Actions: "drop"},
		{Table: 22, Priority: 0, Cookie: 3, Match: "", Actions: "drop"},
		{Table: 23, Priority: 7, Cookie: 4, Match: "tcp,tp_dst=80", Actions: "ct(table=9,zone=NXM_NX_REG13[0..15])"},
		{Table: 24, Priority: 1, Cookie: 5, Match: "", Actions: "drop"},
	}
	if len(flows) != len(want) {
		t.Fatalf("got %d flows %v, want %d (foreign cookie-0 flow skipped)", len(flows), flows, len(want))
	}
	for i := range want {
		if flows[i] != want[i] {
			t.Errorf("flow %d = %+v, want %+v", i, flows[i], want[i])
		}
	}
	if _, err := ParseDumpFlows(DefaultOwner, " table=3, priority=5,ip"); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("missing actions: %v", err)
	}
	if _, err := ParseDumpFlows(DefaultOwner, " cookie=0xzz, table=3, ip actions=drop"); err == nil {
		t.Fatal("bad cookie accepted")
	}
}

func TestParseFlowMods(t *testing.T) {
	out := `usable protocols: OXM,NXM+table_id
chosen protocol: OXM-OpenFlow15
OFPT_FLOW_MOD (OF1.5) (xid=0x1): ADD priority=100,in_port=5 actions=resubmit(,8)
OFPT_FLOW_MOD (OF1.5) (xid=0x2): ADD table:20 actions=drop
OFPT_FLOW_MOD (OF1.5) (xid=0x3): ADD table:21 ip actions=drop
OFPT_FLOW_MOD (OF1.5) (xid=0x4): ADD table:9 priority=10,ct_state=+new+trk,tcp,tp_dst=80 actions=conjunction(7,1/2)
`
	m, a, err := ParseFlowMods(out, 4)
	if err != nil {
		t.Fatal(err)
	}
	wantM := []string{"in_port=5", "", "ip", "ct_state=+new+trk,tcp,tp_dst=80"}
	wantA := []string{"resubmit(,8)", "drop", "drop", "conjunction(7,1/2)"}
	for i := range wantM {
		if m[i] != wantM[i] || a[i] != wantA[i] {
			t.Errorf("%d: %q %q, want %q %q", i, m[i], a[i], wantM[i], wantA[i])
		}
	}
	if _, _, err := ParseFlowMods(out, 5); err == nil {
		t.Fatal("missing flow mod not reported")
	}
	if _, _, err := ParseFlowMods(out, 3); err == nil {
		t.Fatal("xid out of range not reported")
	}
}

func TestParseGroups(t *testing.T) {
	out := "OFPST_GROUP_DESC reply (OF1.5) (xid=0x2):\n group_id=3,type=select,bucket=bucket_id:0,weight:100,actions=output:1\n group_id=4294967040,type=all\n"
	gs, err := ParseDumpGroups(DefaultOwner, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(gs) != 2 || gs[0] != (Group{ID: 3, Spec: "type=select,bucket=bucket_id:0,weight:100,actions=output:1"}) {
		t.Fatalf("groups = %+v", gs)
	}
	g, err := ParseGroupMod("usable protocols: any\nchosen version: OpenFlow15\nOFPT_GROUP_MOD (OF1.5) (xid=0x1):\n ADD group_id=4,type=all,bucket=bucket_id:0,actions=output:1\n")
	if err != nil || g != (Group{ID: 4, Spec: "type=all,bucket=bucket_id:0,actions=output:1"}) {
		t.Fatalf("group mod = %+v, %v", g, err)
	}
	if _, err := ParseDumpGroups(DefaultOwner, " group_id=x,type=all"); err == nil {
		t.Fatal("bad group id accepted")
	}
}

func FuzzParseDumpFlows(f *testing.F) {
	f.Add(dumped)
	f.Fuzz(func(t *testing.T, s string) {
		flows, err := ParseDumpFlows(DefaultOwner, s)
		if err != nil {
			return
		}
		for _, fl := range flows {
			if fl.Cookie&DefaultOwner.Mask != 0 {
				t.Fatalf("owner bits left in cookie %#x", fl.Cookie)
			}
		}
	})
}

func TestParseBundleError(t *testing.T) {
	e, ok := ParseBundleError("Error OFPBAC_BAD_OUT_GROUP for: OFPT_FLOW_MOD (OF1.5) (xid=0x7): MOD_STRICT table:30 priority=1,ip cookie:0x5 actions=group:77\nError OFPBFC_MSG_FAILED for: OFPT_BUNDLE_CONTROL (OF1.5) (xid=0xc):\n bundle_id=0 type=COMMIT_REQUEST flags=atomic ordered\n")
	if !ok || e.IsGroup || e.Reason != "OFPBAC_BAD_OUT_GROUP" || e.Flow != (FlowKey{Table: 30, Priority: 1, Match: "ip"}) {
		t.Fatalf("flow error = %+v, %v", e, ok)
	}
	e, ok = ParseBundleError("Error OFPGMFC_CHAINING_UNSUPPORTED for: OFPT_GROUP_MOD (OF1.5) (xid=0x5):\n ADD group_id=50,type=all,bucket=bucket_id:0,actions=group:99\n")
	if !ok || !e.IsGroup || e.GroupID != 50 {
		t.Fatalf("group error = %+v, %v", e, ok)
	}
	if _, ok := ParseBundleError("ovs-ofctl: unix:/x/br-int.mgmt: failed to connect to socket (No such file or directory)\n"); ok {
		t.Fatal("connection error parsed as a rejected mod")
	}
}

func TestTLVMap(t *testing.T) {
	m, err := ParseTLVMap("{class=0x102,type=0x80,len=4}->tun_metadata0")
	if err != nil || m != (TLVMap{Class: 0x102, Type: 0x80, Len: 4, Field: "tun_metadata0"}) {
		t.Fatalf("%+v, %v", m, err)
	}
	if m.String() != "{class=0x102,type=0x80,len=4}->tun_metadata0" {
		t.Fatalf("String = %s", m)
	}
	for _, bad := range []string{"{class=0x102,type=0x80,len=3}->tun_metadata0", "{class=0x10200,type=0x80,len=4}->tun_metadata0",
		"{class=0x102,type=0x80,len=4}->tun_metadata64", "class=1", "{class=0x102,type=0x800,len=4}->tun_metadata0"} {
		if _, err := ParseTLVMap(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	// Real ovs-ofctl 3.1 output.
	out := "NXT_TLV_TABLE_REPLY (OF1.5) (xid=0x2):\n max option space=256 max fields=64\n allocated option space=4\n\n mapping table:\n  class  type  length  match field\n ------  ----  ------  --------------\n  0x102  0x80       4  tun_metadata0\n"
	maps, err := ParseDumpTLVMap(out)
	if err != nil || len(maps) != 1 || maps[0] != m {
		t.Fatalf("dump: %+v, %v", maps, err)
	}
	if maps, err := ParseDumpTLVMap(strings.Replace(out, "  0x102  0x80       4  tun_metadata0\n", "", 1)); err != nil || len(maps) != 0 {
		t.Fatalf("empty dump: %+v, %v", maps, err)
	}
}
