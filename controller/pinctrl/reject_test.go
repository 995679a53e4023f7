package pinctrl

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"
)

// tcp4 is a TCP segment 10.0.0.2:1000 → 10.0.0.9:80 with flags, seq 1000,
// ack 5000 and payload.
func tcp4(flags byte, payload string) []byte {
	p := []byte{0x0a, 0, 0, 0, 0, 0x01, 0x0a, 0, 0, 0, 0, 0x02, 0x08, 0x00}
	ip := []byte{0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 2, 10, 0, 0, 9}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+20+len(payload)))
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	th := []byte{0x03, 0xe8, 0, 80, 0, 0, 0x03, 0xe8, 0, 0, 0x13, 0x88, 5 << 4, flags, 0xff, 0xff, 0, 0, 0, 0}
	seg := append(th, payload...)
	binary.BigEndian.PutUint16(seg[16:], l4Checksum(ip[12:20], 6, seg))
	return append(append(p, ip...), seg...)
}

func TestBuildTCPResetGolden(t *testing.T) {
	// SYN without ACK: seq 0, ack = 1000 + 1, RST|ACK; reject swaps addresses.
	got, err := BuildReject(tcp4(tcpSYN, ""))
	if err != nil {
		t.Fatal(err)
	}
	want := unhexT(t, `0a0000000002 0a0000000001 0800
		4500 0028 1234 0000 ff06 0000 0a000009 0a000002
		0050 03e8 00000000 000003e9 50 14 0000 0000 0000`)
	binary.BigEndian.PutUint16(want[24:], checksum(want[14:34]))
	binary.BigEndian.PutUint16(want[50:], l4Checksum(want[26:34], 6, want[34:]))
	if !bytes.Equal(got, want) {
		t.Errorf("reject of SYN:\n got %x\nwant %x", got, want)
	}
	if checksum(got[14:34]) != 0 || l4Checksum(got[26:34], 6, got[34:]) != 0 {
		t.Errorf("checksums do not verify")
	}
	// ACK with 5 bytes of payload, tcp_reset (no address swap): seq = 5000, RST.
	got, err = BuildTCPReset(tcp4(tcpACK|0x08, "hello"), false)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[0:12], tcp4(0, "")[0:12]) || !bytes.Equal(got[26:34], []byte{10, 0, 0, 2, 10, 0, 0, 9}) {
		t.Errorf("tcp_reset changed addresses: %x", got)
	}
	if s, a, f := binary.BigEndian.Uint32(got[38:]), binary.BigEndian.Uint32(got[42:]), got[47]; s != 5000 || a != 0 || f != tcpRST {
		t.Errorf("tcp_reset seq %d ack %d flags %#x, want 5000 0 RST", s, a, f)
	}
	if len(got) != 54 || l4Checksum(got[26:34], 6, got[34:]) != 0 {
		t.Errorf("tcp_reset: %d bytes or bad checksum: %x", len(got), got)
	}
	if _, err := BuildTCPReset(udp4(9, 64), false); err == nil || !strings.Contains(err.Error(), "IP protocol 17 is not TCP") {
		t.Errorf("err = %v", err)
	}
	if _, err := BuildTCPReset(tcp4(tcpSYN, "")[:40], false); err == nil || !strings.Contains(err.Error(), "do not fit") {
		t.Errorf("err = %v", err)
	}
}

func TestBuildRejectICMP(t *testing.T) {
	in := udp4(9, 64)
	got, err := BuildReject(in)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[0:6], in[6:12]) || !bytes.Equal(got[6:12], in[0:6]) ||
		!bytes.Equal(got[26:30], in[30:34]) || !bytes.Equal(got[30:34], in[26:30]) {
		t.Errorf("addresses not swapped: %x", got)
	}
	if got[23] != 1 || got[34] != 3 || got[35] != 3 || !bytes.Equal(got[42:], in[14:]) {
		t.Errorf("want ICMP type 3 code 3 with the original datagram: %x", got)
	}
	if checksum(got[14:34]) != 0 || checksum(got[34:]) != 0 {
		t.Errorf("checksums do not verify")
	}
}
