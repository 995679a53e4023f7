package ofp

import (
	"encoding/hex"
	"strings"
	"testing"
)

func BenchmarkDecodePacketIn2(b *testing.B) {
	m, _ := hex.DecodeString(strings.Join(strings.Fields(packetIn2), ""))
	m[3] = byte(len(m))
	b.ReportAllocs()
	for b.Loop() {
		p, err := DecodePacketIn2(m)
		if err != nil {
			b.Fatal(err)
		}
		if r, _ := p.Reg(14); r != 5 {
			b.Fatal(r)
		}
	}
}

func BenchmarkPacketOut(b *testing.B) {
	pkt := make([]byte, 64)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := PacketOut(1, []Field{InPort(PortController), Metadata(7)}, []Action{SetField(Reg(14, 5)), ResubmitTable(8)}, pkt); err != nil {
			b.Fatal(err)
		}
	}
}
