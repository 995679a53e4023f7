package of

import (
	"bytes"
	"flag"
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"github.com/govn/govn/lflow/bits"
)

// update is accepted so `go test ./lflow/... -update` works; this package has no golden files.
var update = flag.Bool("update", false, "rewrite golden files")

func u(v uint64) bits.U128 { return bits.From64(v) }

func sampleFlows() []Flow {
	var fs []Flow
	var m Match
	m.Set(EthType, u(0x800), bits.Ones(16))
	m.Set(Reg15, u(3), bits.Ones(32))
	m.Set(Metadata, u(1), bits.Ones(64))
	m.Set(IPSrc, u(10<<24), bits.Ones(32).AndNot(bits.Ones(24)))
	fs = append(fs, Flow{Table: 44, Priority: 2002, Cookie: 0x1234, Match: m, Actions: Actions{Resubmit{Table: 45}}})

	var m2 Match
	m2.Set(EthType, u(0x86dd), bits.Ones(16))
	m2.Set(IPProto, u(6), bits.Ones(8))
	m2.Set(TCPDst, u(0x50), u(0xfff0))
	m2.Set(XXReg0, u(1), u(0xff))
	m2.Set(IPv6Src, bits.U128{Hi: 0xfe80 << 48}, bits.Ones(128).AndNot(bits.Ones(64)))
	m2.Set(CTState, u(CSNew|CSTrk), u(CSNew|CSTrk|CSEst))
	m2.Set(CTLabel, u(1).Lsh(100), u(1).Lsh(100))
	m2.Set(EthDst, u(1<<40), u(1<<40))
	zone := Subfield{Field: Reg13, Ofs: 0, NBits: 16}
	fs = append(fs, Flow{Table: 1, Priority: 10, Match: m2, Actions: Actions{
		Move{Src: Subfield{Reg0, 0, 16}, Dst: Subfield{Reg1, 0, 16}},
		SetField{Dst: Subfield{Reg0, 0, 8}, Value: u(5)},
		SetField{Dst: Subfield{Reg10, 3, 1}, Value: u(1)},
		SetField{Dst: Whole(IPv6Src), Value: bits.U128{Hi: 0xfe80 << 48, Lo: 1}},
		SetField{Dst: Whole(EthSrc), Value: u(0x001122334455)},
		SetField{Dst: Subfield{IPv6Dst, 0, 64}, Value: u(1)},
		Push{Whole(Reg0)}, Pop{Whole(Reg1)},
		CT{Commit: true, Table: 5, Zone: zone, NAT: &NAT{Src: true, Addr: netip.MustParseAddr("10.0.0.1"), AddrMax: netip.MustParseAddr("10.0.0.2"), Port: 100, PortMax: 200, Random: true},
			Exec: Actions{SetField{Dst: Subfield{CTMark, 0, 1}, Value: u(1)}, SetField{Dst: Subfield{CTLabel, 96, 32}, Value: u(7)}}},
		CT{Table: 6, Zone: zone, NAT: &NAT{}},
		CT{Commit: true, Table: -1, ZoneImm: 7, NAT: &NAT{Addr: netip.MustParseAddr("fe80::1"), Port: 80}},
		CTClear{}, DecTTL{},
		Controller{UserData: []byte{0, 0, 0, 1}, Pause: true, MeterID: 2},
		CheckPktLarger{Len: 1500, Dst: Subfield{Reg0, 3, 1}},
		Clone{Actions: Actions{Resubmit{Table: 3}, Output{Port: PortInPort}}},
		GroupAction{ID: 4}, PushVLAN{EthType: 0x8100}, SetField{Dst: Whole(VLANTCI), Value: u(0x1005)}, PopVLAN{},
		OutputReg{Src: Whole(Reg15)}, Output{Port: 2, MaxLen: 100}, Output{Port: PortLocal}, Exit{},
	}})

	var m3 Match
	m3.Set(ConjID, u(5), bits.Ones(32))
	m3.Set(EthType, u(0x800), bits.Ones(16))
	m3.Set(IPFrag, u(1), u(3))
	m3.Set(IPDSCP, u(4), bits.Ones(6))
	fs = append(fs, Flow{Table: 2, Priority: 1, Match: m3})

	var m4 Match
	m4.Set(EthType, u(0x800), bits.Ones(16))
	m4.Set(IPProto, u(17), bits.Ones(8))
	fs = append(fs, Flow{Table: 3, Priority: 100, Match: m4, Actions: Actions{
		Conjunction{ID: 5, K: 1, N: 2}, Conjunction{ID: 6, K: 2, N: 3}}})

	var m5 Match
	m5.Set(EthType, u(0x86dd), bits.Ones(16))
	m5.Set(IPProto, u(58), bits.Ones(8))
	m5.Set(ICMPv6Type, u(135), bits.Ones(8))
	m5.Set(ICMPv6Code, u(0), bits.Ones(8))
	m5.Set(IPTTL, u(255), bits.Ones(8))
	m5.Set(NDTarget, u(1), bits.Ones(128))
	m5.Set(NDSLL, u(0x0a0000000001), bits.Ones(48))
	m5.Set(TunMetadata0, u(5), u(0xffff))
	m5.Set(XReg4, u(0x100000002), bits.Ones(64))
	fs = append(fs, Flow{Table: 4, Priority: 0, Match: m5, Actions: Actions{Note{Data: []byte{1, 2}}}})

	var m6 Match
	m6.Set(EthType, u(0x806), bits.Ones(16))
	m6.Set(ARPOp, u(1), bits.Ones(16))
	m6.Set(ARPTPA, u(0x0a000001), bits.Ones(32))
	m6.Set(ARPSHA, u(0x0a0000000001), bits.Ones(48).AndNot(u(0xff)))
	m6.Set(VLANTCI, u(0x1000), u(0x1000))
	m6.Set(InPort, u(3), bits.Ones(32))
	fs = append(fs, Flow{Table: 5, Priority: 65535, Match: m6, Actions: Actions{Drop{}}})

	var m7 Match
	m7.Set(EthType, u(0x800), bits.Ones(16))
	m7.Set(CTState, u(CSTrk), u(CSTrk|CSInv)) // the ct tuple needs +trk-inv (or +new/+est)
	m7.Set(CTNwProto, u(6), bits.Ones(8))
	m7.Set(CTNwDst, u(0x0a000001), bits.Ones(32))
	m7.Set(CTTpDst, u(80), bits.Ones(16))
	m7.Set(TunSrc, u(0xac100001), bits.Ones(32))
	m7.Set(TunID, u(5), bits.Ones(64))
	fs = append(fs, Flow{Table: 6, Priority: 1, Match: m7, Actions: Actions{Resubmit{Table: 7}}})
	return fs
}

func TestFlowStrings(t *testing.T) {
	fs := sampleFlows()
	want := []string{
		"table=44, priority=2002, cookie=0x1234, ip,reg15=0x3,metadata=0x1,ip_src=10.0.0.0/8 actions=resubmit(,45)",
		"table=5, priority=65535, cookie=0x0, arp,in_port=3,vlan_tci=0x1000/0x1000,arp_op=1,arp_tpa=10.0.0.1,arp_sha=0a:00:00:00:00:00/ff:ff:ff:ff:ff:00 actions=drop",
	}
	if got := fs[0].String(); got != want[0] {
		t.Errorf("got  %s\nwant %s", got, want[0])
	}
	if got := fs[len(fs)-2].String(); got != want[1] {
		t.Errorf("got  %s\nwant %s", got, want[1])
	}
	if got := fs[1].Match.String(); !strings.Contains(got, "reg3=0x1/0xff") || !strings.Contains(got, "ct_state=+new-est+trk") || !strings.HasPrefix(got, "tcp6,") {
		t.Errorf("match %s", got)
	}
}

// TestParseFlows feeds every kind of match and action we print to the real
// ovs-ofctl parser.
func TestParseFlows(t *testing.T) {
	CheckWithOVSOfctl(t, FlowsString(sampleFlows()))
}

// CheckWithOVSOfctl runs `ovs-ofctl -O OpenFlow15 parse-flows -` on text and
// fails the test on any error, warning or decode error.
func CheckWithOVSOfctl(t *testing.T, text string) {
	t.Helper()
	path, err := exec.LookPath("ovs-ofctl")
	if err != nil {
		t.Skip("ovs-ofctl not installed")
	}
	cmd := exec.Command(path, "-O", "OpenFlow15", "parse-flows", "-")
	cmd.Stdin = strings.NewReader(text)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ovs-ofctl parse-flows: %v\n%s\ninput:\n%s", err, stderr.String(), text)
	}
	if strings.Contains(out.String(), "decode error") || strings.Contains(stderr.String(), "WARN") {
		t.Fatalf("ovs-ofctl parse-flows complained:\n%s%s\ninput:\n%s", stderr.String(), out.String(), text)
	}
	n := strings.Count(out.String(), "OFPT_FLOW_MOD")
	if want := strings.Count(strings.TrimSpace(text), "\n") + 1; n != want {
		t.Fatalf("ovs-ofctl parsed %d flows, want %d:\n%s", n, want, out.String())
	}
}

func TestMatchSet(t *testing.T) {
	var m Match
	if !m.Set(Reg0, u(0x5), u(0xf)) || !m.Set(Reg0, u(0x50), u(0xf0)) {
		t.Fatal("compatible constraints rejected")
	}
	if v, mk, _ := m.Get(Reg0); v != u(0x55) || mk != u(0xff) {
		t.Fatalf("merged %v/%v", v, mk)
	}
	if c := m.Clone(); c.Set(Reg0, u(0x6), u(0xf)) {
		t.Fatal("conflict accepted")
	}
	// xxreg0's low 32 bits are reg3.
	if !m.Set(XXReg0, u(7), bits.Ones(32)) {
		t.Fatal("xxreg0")
	}
	if v, _, ok := m.Get(Reg3); !ok || v != u(7) {
		t.Fatalf("xxreg0 not stored in reg3: %s", m.String())
	}
	if c := m.Clone(); c.Set(Reg3, u(8), bits.Ones(32)) {
		t.Fatal("xxreg0/reg3 conflict accepted")
	}
	var f Match
	if f.Set(IPFrag, u(2), u(3)) {
		t.Fatal("impossible nw_frag accepted")
	}
}

func TestPacketOverlay(t *testing.T) {
	var p Packet
	p.Set(XXReg1, bits.U128{Hi: 0x1111111122222222, Lo: 0x3333333344444444})
	for i, want := range []uint64{0x11111111, 0x22222222, 0x33333333, 0x44444444} {
		if got := p.Get(Reg(4 + i)); got != u(want) {
			t.Errorf("reg%d = %v", 4+i, got)
		}
	}
	if got := p.Get(XReg2); got != u(0x1111111122222222) {
		t.Errorf("xreg2 = %v", got.Hex())
	}
	p.SetSub(Subfield{Reg4, 0, 8}, u(0xab))
	if got := p.Get(Reg4); got != u(0x111111ab) {
		t.Errorf("reg4 = %v", got.Hex())
	}
	var m Match
	m.Set(XReg2, u(0x111111ab22222222), bits.Ones(64))
	if !m.Matches(&p) {
		t.Error("match on xreg2 view")
	}
}

func TestGroupString(t *testing.T) {
	g := Group{ID: 1, Type: "select", SelectionMethod: "hash", Fields: []string{"ip_src", "ip_dst"},
		Buckets: []Bucket{{ID: 0, Weight: 100, Actions: Actions{Resubmit{Table: 3}}}, {ID: 1, Weight: 100, Actions: Actions{SetField{Dst: Whole(Reg0), Value: u(1)}}}}}
	want := "group_id=1,type=select,selection_method=hash,fields(ip_src,ip_dst),bucket=bucket_id=0,weight:100,actions=resubmit(,3),bucket=bucket_id=1,weight:100,actions=set_field:0x1->reg0"
	if g.String() != want {
		t.Fatalf("got  %s\nwant %s", g.String(), want)
	}
}
