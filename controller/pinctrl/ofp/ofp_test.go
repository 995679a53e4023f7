package ofp

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenEncodings(t *testing.T) {
	cases := []struct {
		name string
		got  []byte
		want string
	}{
		{"hello", Hello(1), "06000010 00000001 00010008 00000040"},
		{"echo reply", EchoReply(9, []byte{1, 2}), "0603000a 00000009 0102"},
		{"barrier", BarrierRequest(3), "06140008 00000003"},
		{"set packet-in format", SetPacketInFormat(2, NXPIFNXT2), "06040014 00000002 00002320 00000010 00000002"},
		{"set async", SetAsyncPacketIn(4, 0x3f), "061c0018 00000004 00000008 0000003f 00010008 0000003f"},
		{"output", Output(PortTable), "00000010 fffffff9 ffff0000 00000000"},
		{"set reg14", SetField(Reg(14, 5)), "00190010 00011c04 00000005 00000000"},
		{"set metadata", SetField(Metadata(7)), "00190010 80000408 00000000 00000007"},
		{"resubmit(,8)", ResubmitTable(8), "ffff0010 00002320 000efff8 08000000"},
	}
	for _, c := range cases {
		if want := unhex(t, c.want); !bytes.Equal(c.got, want) {
			t.Errorf("%s:\n got %x\nwant %x", c.name, c.got, want)
		}
	}
}

func TestPacketOutGolden(t *testing.T) {
	m, err := PacketOut(5, []Field{InPort(PortController), Metadata(7)}, []Action{SetField(Reg(14, 5)), ResubmitTable(8)}, []byte{0xaa, 0xbb})
	if err != nil {
		t.Fatal(err)
	}
	want := unhex(t, `060d004a 00000005 ffffffff 0020 0000
		0001 0018 80000004 fffffffd 80000408 00000000 00000007
		00190010 00011c04 00000005 00000000
		ffff0010 00002320 000efff8 08000000
		aabb`)
	if !bytes.Equal(m, want) {
		t.Errorf("packet-out:\n got %x\nwant %x", m, want)
	}
	if _, err := ParseHeader(m); err != nil {
		t.Error(err)
	}
}

// packetIn2 is an NXT_PACKET_IN2 as OVS 3.1 sends it (captured from
// TestPacketInFromOVS, packet shortened to 2 bytes, then lengths fixed).
const packetIn2 = `0604 0088 00000000 00002320 0000001e
	0000 0006 aabb 0000
	0001 0008 0000002a
	0003 0005 03 000000
	0004 0010 00000000 0000000000001234
	0005 0005 01 000000
	0006 0034 80000004 fffffffd 80010110 0a00000200000000 ffffffff00000000 80010f10 0000000500000000 ffffffff00000000 00000000
	0007 000a 00000002aabb 000000000000`

func TestDecodePacketIn2Golden(t *testing.T) {
	b := unhex(t, packetIn2)
	b[3] = byte(len(b))
	p, err := DecodePacketIn2(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p.Packet, []byte{0xaa, 0xbb}) || p.FullLen != 42 || p.TableID != 3 || p.Cookie != 0x1234 || p.Reason != 1 {
		t.Errorf("decoded %+v", p)
	}
	if r, ok := p.Reg(0); !ok || r != 0x0a000002 {
		t.Errorf("reg0 = %#x %v", r, ok)
	}
	if r, ok := p.Reg(14); !ok || r != 5 {
		t.Errorf("reg14 = %d %v", r, ok)
	}
	if _, ok := p.Reg(1); ok {
		t.Errorf("reg1 present")
	}
	if in, ok := p.InPort(); !ok || in != PortController {
		t.Errorf("in_port = %#x %v", in, ok)
	}
	if !bytes.Equal(p.Userdata, []byte{0, 0, 0, 2, 0xaa, 0xbb}) {
		t.Errorf("userdata %x", p.Userdata)
	}
	if _, err := Resume(1, p, p.Packet); err == nil {
		t.Errorf("resume without continuation accepted")
	}
}

func TestDecodeErrors(t *testing.T) {
	good := unhex(t, packetIn2)
	good[3] = byte(len(good))
	for _, c := range []struct {
		name string
		mut  func([]byte) []byte
		want string
	}{
		{"short", func(b []byte) []byte { return b[:5] }, "shorter than the 8-byte header"},
		{"length", func(b []byte) []byte { return b[:len(b)-8] }, "header length"},
		{"subtype", func(b []byte) []byte { b[15] = 31; return b }, "is not NXT_PACKET_IN2"},
		{"prop length", func(b []byte) []byte { b[19] = 0xff; return b }, "property type 0 at offset 16: bad length 255"},
		{"oxm length", func(b []byte) []byte { b[71] = 0x7f; return b }, "metadata property at offset 64: oxm at offset 0: payload length 127"},
	} {
		b := c.mut(append([]byte(nil), good...))
		_, err := DecodePacketIn2(b)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	b, _ := hex.DecodeString(strings.Join(strings.Fields(packetIn2), ""))
	b[3] = byte(len(b))
	f.Add(b)
	f.Add(Hello(1))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodePacketIn2(b)
		if err != nil {
			return
		}
		for n := 0; n < 16; n++ {
			p.Reg(n)
		}
		p.MetadataField()
		p.InPort()
		if p.Continuation != nil {
			if _, err := Resume(1, p, p.Packet); err != nil {
				t.Fatal(err)
			}
		}
		DecodeFields(b)
		ReadMessage(bytes.NewReader(b))
	})
}

func TestSetRegBit(t *testing.T) {
	b := unhex(t, packetIn2)
	b[3] = byte(len(b))
	p, err := DecodePacketIn2(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		reg, bit int
		want     uint32
	}{{0, 3, 0x0a00000a}, {1, 0, 1}, {14, 31, 0x80000005}, {6, 2, 4}} {
		md, err := p.SetRegBit(c.reg, c.bit, true)
		if err != nil {
			t.Fatal(err)
		}
		q := &PacketIn{Metadata: md}
		if got, ok := q.Reg(c.reg); !ok || got != c.want {
			t.Errorf("reg%d[%d]: got %#x %v, want %#x", c.reg, c.bit, got, ok, c.want)
		}
		if got, _ := q.Reg(14); c.reg != 14 && got != 5 {
			t.Errorf("reg14 changed to %d", got)
		}
	}
	if r, _ := p.Reg(0); r != 0x0a000002 {
		t.Errorf("SetRegBit modified the packet-in: reg0 = %#x", r)
	}
	if _, err := p.SetRegBit(16, 0, true); err == nil {
		t.Error("reg16 accepted")
	}
}

// TestAppendBundleAdd: messages appended into one buffer are exactly the
// messages each appended to an empty buffer, one after the other, and a too
// long message is refused leaving the buffer as it was.
func TestAppendBundleAdd(t *testing.T) {
	m1, m2 := BarrierRequest(7), EchoRequest(8, []byte("payload"))
	var want []byte
	for _, m := range []struct {
		x   uint32
		msg []byte
	}{{7, m1}, {8, m2}} {
		b, err := AppendBundleAdd(nil, m.x, 3, BundleAtomic|BundleOrdered, m.msg)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, b...)
	}
	buf := []byte("prefix")
	buf, err := AppendBundleAdd(buf, 7, 3, BundleAtomic|BundleOrdered, m1)
	if err == nil {
		buf, err = AppendBundleAdd(buf, 8, 3, BundleAtomic|BundleOrdered, m2)
	}
	if err != nil || string(buf) != "prefix"+string(want) {
		t.Fatalf("appended %x (%v)\nwant      %x", buf, err, append([]byte("prefix"), want...))
	}
	if h, err := ParseHeader(buf[6 : 6+HeaderLen+8+len(m1)]); err != nil || h.Type != TypeBundleAdd || h.Xid != 7 || int(h.Length) != HeaderLen+8+len(m1) {
		t.Fatalf("first header %+v, %v", h, err)
	}
	long := make([]byte, MaxLen)
	if out, err := AppendBundleAdd(buf, 9, 3, 0, long); err == nil || len(out) != len(buf) {
		t.Fatalf("too long: %d bytes, %v", len(out), err)
	}
}
