package symtab

import (
	"flag"
	"testing"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/of"
)

// update is accepted so `go test ./lflow/... -update` works; no golden files here.
var update = flag.Bool("update", false, "rewrite golden files")

func TestDefault(t *testing.T) {
	st := Default()
	cases := []struct {
		name     string
		kind     Kind
		level    Level
		width    int
		of       of.Subfield
		writable bool
		str      bool
		prereqs  string
	}{
		{"inport", Field, Nominal, 32, of.Sub(of.Reg14, 0, 32), true, true, ""},
		{"outport", Field, Nominal, 32, of.Sub(of.Reg15, 0, 32), true, true, ""},
		{"reg0", Field, Ordinal, 32, of.Sub(of.Reg0, 0, 32), true, false, ""},
		{"reg9", Field, Ordinal, 32, of.Sub(of.Reg9, 0, 32), true, false, ""},
		{"xxreg1", Field, Ordinal, 128, of.Sub(of.XXReg1, 0, 128), true, false, ""},
		{"flags.loopback", Subfield, Ordinal, 1, of.Sub(of.Reg10, FlagLoopback, 1), true, false, ""},
		{"ct.new", Subfield, Ordinal, 1, of.Sub(of.CTState, 0, 1), false, false, "ct.trk"},
		{"ct.trk", Subfield, Ordinal, 1, of.Sub(of.CTState, 5, 1), false, false, ""},
		{"ct_label.ecmp_reply_port", Subfield, Ordinal, 16, of.Sub(of.CTLabel, 80, 16), false, false, ""},
		{"eth.type", Field, Nominal, 16, of.Sub(of.EthType, 0, 16), false, false, ""},
		{"ip.proto", Field, Nominal, 8, of.Sub(of.IPProto, 0, 8), false, false, "ip"},
		{"vlan.vid", Subfield, Ordinal, 12, of.Sub(of.VLANTCI, 0, 12), true, false, "vlan.present"},
		{"tcp.dst", Field, Ordinal, 16, of.Sub(of.TCPDst, 0, 16), true, false, "tcp"},
		{"ip6.src", Field, Ordinal, 128, of.Sub(of.IPv6Src, 0, 128), true, false, "ip6"},
		{"nd.sll", Field, Ordinal, 48, of.Sub(of.NDSLL, 0, 48), true, false, "nd_ns"},
	}
	for _, c := range cases {
		s, ok := st.Lookup(c.name)
		if !ok {
			t.Errorf("%s missing", c.name)
			continue
		}
		if s.Kind != c.kind || s.Level != c.level || s.Width != c.width || s.OF != c.of ||
			s.Writable != c.writable || s.String != c.str || s.Prereqs != c.prereqs {
			t.Errorf("%s = %+v", c.name, *s)
		}
	}
	for name, level := range map[string]Level{
		"tcp": Nominal, "ip": Nominal, "ip4": Nominal, "eth.bcast": Boolean, "eth.mcast": Boolean,
		"ip4.mcast": Boolean, "nd_ns": Nominal, "vlan.present": Boolean,
	} {
		s, ok := st.Lookup(name)
		if !ok || s.Kind != Predicate || s.Level != level {
			t.Errorf("predicate %s: %+v", name, s)
		}
	}
}

func TestReadWrite(t *testing.T) {
	st := Default()
	var p of.Packet
	vid, _ := st.Lookup("vlan.vid")
	vid.Write(&p, bits.From64(0xfff5))
	if got := p.Get(of.VLANTCI); got != bits.From64(0xff5) {
		t.Fatalf("vlan_tci = %v", got.Hex())
	}
	if got := vid.Read(&p); got != bits.From64(0xff5) {
		t.Fatalf("vlan.vid = %v", got)
	}
	lb, _ := st.Lookup("flags.loopback")
	lb.Write(&p, bits.From64(1))
	if p.Get(FlagsField) != bits.From64(1<<FlagLoopback) {
		t.Fatal("flags.loopback")
	}
}

func TestBuildErrors(t *testing.T) {
	st := New()
	if _, err := st.AddField("a", of.Subfield{Field: of.Reg0, Ofs: 30, NBits: 3}, FieldOpts{}); err == nil {
		t.Error("out-of-range field accepted")
	}
	if _, err := st.AddField("a", of.Subfield{Field: of.Reg0, Ofs: 0, NBits: 3}, FieldOpts{}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddField("a", of.Whole(of.Reg1), FieldOpts{}); err == nil {
		t.Error("duplicate accepted")
	}
	if _, err := st.AddSubfield("a.x", "a", 2, 3, "", false); err == nil {
		t.Error("subfield past parent width accepted")
	}
	if _, err := st.AddPredicate("p", "b == 1"); err == nil {
		t.Error("predicate with unknown symbol accepted")
	}
}
