package pinctrl

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/controller/pinctrl/ofp"
	"github.com/govn/govn/lflow/action"
)

// udp4 is a UDP packet 10.0.0.2:1000 → dst:2000 (TTL ttl) with payload
// "hello world!", from 0a:00:00:00:00:02 to 0a:00:00:00:00:01.
func udp4(dst byte, ttl byte) []byte {
	p := []byte{0x0a, 0, 0, 0, 0, 0x01, 0x0a, 0, 0, 0, 0, 0x02, 0x08, 0x00}
	payload := []byte("hello world!")
	ip := []byte{0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, ttl, 17, 0, 0, 10, 0, 0, 2, 10, 0, 0, dst}
	binary.BigEndian.PutUint16(ip[2:], uint16(20+8+len(payload)))
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	udp := []byte{0x03, 0xe8, 0x07, 0xd0, 0, byte(8 + len(payload)), 0, 0}
	return append(append(append(p, ip...), udp...), payload...)
}

func unhexT(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBuildARPGolden(t *testing.T) {
	got, err := BuildARP(udp4(9, 64))
	if err != nil {
		t.Fatal(err)
	}
	want := unhexT(t, `0a0000000001 0a0000000002 0806
		0001 0800 06 04 0001 0a0000000002 0a000002 000000000000 0a000009`)
	if !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
	// A VLAN tag is kept.
	tagged := append(append(append([]byte(nil), udp4(9, 64)[:12]...), 0x81, 0, 0, 5), udp4(9, 64)[12:]...)
	got, err = BuildARP(tagged)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got[12:18], []byte{0x81, 0, 0, 5, 0x08, 0x06}) || !bytes.Equal(got[18:], want[14:]) {
		t.Errorf("tagged: %x", got)
	}
	for _, c := range []struct {
		p    []byte
		want string
	}{
		{arpReply, "EtherType 0x0806, not IPv4"},
		{udp4(9, 64)[:20], "not an IPv4 packet (6 bytes)"},
		{udp4(9, 64)[:8], "no Ethernet header"},
	} {
		if _, err := BuildARP(c.p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
}

func TestBuildICMP4Golden(t *testing.T) {
	in := udp4(9, 1)
	got, err := BuildICMP4(in, false)
	if err != nil {
		t.Fatal(err)
	}
	// IP header + 8 bytes of the original datagram.
	data := in[14 : 14+28]
	want := append(unhexT(t, `0a0000000001 0a0000000002 0800
		4500 0038 1234 0000 ff01 0000 0a000002 0a000009
		0301 0000 00000000`), data...)
	binary.BigEndian.PutUint16(want[14+10:], checksum(want[14:34]))
	binary.BigEndian.PutUint16(want[34+2:], checksum(want[34:]))
	if !bytes.Equal(got, want) {
		t.Errorf("icmp4:\n got %x\nwant %x", got, want)
	}
	if checksum(got[14:34]) != 0 || checksum(got[34:]) != 0 {
		t.Errorf("checksums do not verify")
	}
	got, err = BuildICMP4(in, true)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got) - 14 - 28; n != len(in)-14 || !bytes.Equal(got[42:], in[14:]) {
		t.Errorf("icmp4_error data = %x, want the whole datagram", got[42:])
	}
	if checksum(got[14:34]) != 0 || checksum(got[34:]) != 0 {
		t.Errorf("icmp4_error checksums do not verify")
	}
	big := append(udp4(9, 1), make([]byte, 1000)...)
	binary.BigEndian.PutUint16(big[16:], uint16(len(big)-14))
	got, err = BuildICMP4(big, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(got)-14 != 576 {
		t.Errorf("icmp4_error of a big datagram: IP length %d, want 576", len(got)-14)
	}
}

func userdata(op action.Opcode, actions string) string {
	b := binary.BigEndian.AppendUint32(nil, uint32(op))
	b = append(b, actions...)
	parts := make([]string, len(b))
	for i, c := range b {
		parts[i] = hex.EncodeToString([]byte{c})
	}
	return strings.Join(parts, ".")
}

// TestGeneratedPacketsThroughOVS: controller(arp{...}) and
// controller(icmp4_error{...}) packet-ins make Run build the packet and send
// it through OVS with the nested actions, which resubmit to a table that
// sends it to a second controller connection (the test's).
func TestGeneratedPacketsThroughOVS(t *testing.T) {
	v := startOVS(t)
	flows := strings.Join([]string{
		"table=0,priority=100,udp,nw_dst=10.0.0.9,actions=set_field:7->metadata,set_field:5->reg14,controller(userdata=" +
			userdata(action.OpARP, "set_field:ff:ff:ff:ff:ff:ff->eth_dst,resubmit(,40)") + ")",
		"table=0,priority=100,udp,nw_dst=10.0.0.10,nw_ttl=1,actions=set_field:7->metadata,controller(userdata=" +
			userdata(action.OpICMP4Error, "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:11->icmp_type,set_field:0->icmp_code,set_field:0x1/0x1->reg10,resubmit(,41)") + ")",
		"table=0,priority=100,tcp,nw_dst=10.0.0.9,actions=set_field:7->metadata,controller(userdata=" +
			userdata(action.OpReject, "resubmit(,42)") + ")",
		"table=42,tcp,nw_src=10.0.0.9,nw_dst=10.0.0.2,tp_src=80,tcp_flags=+rst+ack,metadata=7,actions=controller(userdata=ff.00.00.04)",
		// load is not in the binary encoder's set: this one goes through ovs-ofctl.
		"table=0,priority=100,udp,nw_dst=10.0.0.11,actions=set_field:7->metadata,controller(userdata=" +
			userdata(action.OpARP, "load:0xff->NXM_NX_REG9[],resubmit(,45)") + ")",
		"table=45,arp,reg9=0xff,metadata=7,arp_tpa=10.0.0.11,actions=controller(userdata=ff.00.00.08)",
		"table=40,arp,arp_op=1,metadata=7,reg14=5,dl_dst=ff:ff:ff:ff:ff:ff,arp_tpa=10.0.0.9,actions=controller(userdata=ff.00.00.01)",
		"table=41,icmp,icmp_type=11,metadata=7,reg10=0x1/0x1,dl_dst=0a:00:00:00:00:02,actions=controller(userdata=ff.00.00.02)",
	}, "\n") + "\n"
	if out, err := v.OfctlStdin(flows, "add-flows", "br-int", "-"); err != nil {
		t.Fatalf("add-flows: %v %s", err, out)
	}
	c := dialOVS(t, v)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{MgmtSock: v.MgmtSock("br-int"), Resolver: mapResolver{}, Log: zaptest.NewLogger(t)})
	}()
	defer func() { cancel(); <-done }()

	expect := func(in []byte, marker string) *ofp.PacketIn {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			// Run may still be connecting: inject until the marker arrives.
			if out, err := v.Ofctl("packet-out", "br-int", "in_port=controller packet="+hex.EncodeToString(in)+" actions=table"); err != nil {
				t.Fatalf("packet-out: %v %s", err, out)
			}
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			for {
				m, err := c.Recv()
				if err != nil {
					break
				}
				if p, err := ofp.DecodePacketIn2(m); err == nil && hex.EncodeToString(p.Userdata) == marker {
					return p
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no packet-in with userdata %s", marker)
			}
		}
	}
	p := expect(udp4(9, 64), "ff000001")
	want, _ := BuildARP(udp4(9, 64))
	copy(want[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	if !bytes.Equal(p.Packet, want) {
		t.Errorf("arp{} packet:\n got %x\nwant %x", p.Packet, want)
	}
	p = expect(udp4(10, 1), "ff000002")
	if len(p.Packet) < 42 || p.Packet[34] != 11 || p.Packet[35] != 0 || checksum(p.Packet[34:]) != 0 || checksum(p.Packet[14:34]) != 0 {
		t.Errorf("icmp4_error{} packet (want type 11 code 0, valid checksums): %x", p.Packet)
	}
	p = expect(udp4(11, 64), "ff000008")
	if want, _ := BuildARP(udp4(11, 64)); !bytes.Equal(p.Packet, want) {
		t.Errorf("arp{} via ovs-ofctl:\n got %x\nwant %x", p.Packet, want)
	}
	p = expect(tcp4(tcpSYN, ""), "ff000004")
	if want, _ := BuildReject(tcp4(tcpSYN, "")); !bytes.Equal(p.Packet, want) {
		t.Errorf("reject{} packet:\n got %x\nwant %x", p.Packet, want)
	}
}
