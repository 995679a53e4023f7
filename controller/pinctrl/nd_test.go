package pinctrl

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/controller/pinctrl/ofp"
	"github.com/govn/govn/lflow/action"
)

// ns6 is a neighbor solicitation from fd00::2 (0a:00:00:00:00:02) for
// fd00::5, to its solicited-node group.
func ns6() []byte {
	p := []byte{0x33, 0x33, 0xff, 0, 0, 5, 0x0a, 0, 0, 0, 0, 0x02, 0x86, 0xdd}
	src := netip.MustParseAddr("fd00::2").As16()
	dst := netip.MustParseAddr("ff02::1:ff00:5").As16()
	target := netip.MustParseAddr("fd00::5").As16()
	icmp := append([]byte{135, 0, 0, 0, 0, 0, 0, 0}, target[:]...)
	icmp = append(icmp, 1, 1, 0x0a, 0, 0, 0, 0, 0x02) // source link-layer address
	binary.BigEndian.PutUint16(icmp[2:], icmp6Checksum(append(src[:], dst[:]...), icmp))
	ip := []byte{0x60, 0, 0, 0, 0, byte(len(icmp)), 58, 255}
	ip = append(append(ip, src[:]...), dst[:]...)
	return append(append(p, ip...), icmp...)
}

func TestBuildNDNAGolden(t *testing.T) {
	got, err := BuildNDNA(ns6())
	if err != nil {
		t.Fatal(err)
	}
	want := unhexT(t, `0a0000000002 3333ff000005 86dd
		6000 0000 0020 3a ff fd000000000000000000000000000005 fd000000000000000000000000000002
		88 00 0000 60000000 fd000000000000000000000000000005 0201 3333ff000005`)
	binary.BigEndian.PutUint16(want[56:], icmp6Checksum(want[22:54], want[54:]))
	if !bytes.Equal(got, want) {
		t.Errorf("got  %x\nwant %x", got, want)
	}
	if icmp6Checksum(got[22:54], got[54:]) != 0 {
		t.Errorf("ICMPv6 checksum does not verify")
	}
	for _, c := range []struct {
		p    []byte
		want string
	}{
		{udp4(9, 64), "not IPv6"},
		{ns6()[:70], "IPv6 payload length 32 exceeds the 16 bytes present"},
		{append(ns6()[:54], append([]byte{136}, ns6()[55:]...)...), "not a neighbor solicitation"},
	} {
		if _, err := BuildNDNA(c.p); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
}

// TestNDNAThroughOVS: nd_na{} with the nested actions northd generates
// (eth.src, nd.tll set) comes back out of OVS as a valid NA.
func TestNDNAThroughOVS(t *testing.T) {
	v := startOVS(t)
	flows := "table=0,priority=100,icmp6,icmp_type=135,nd_target=fd00::5,actions=set_field:7->metadata,controller(userdata=" +
		userdata(action.OpNDNA, "set_field:0a:00:00:00:00:05->eth_src,set_field:0a:00:00:00:00:05->nd_tll,resubmit(,44)") + ")\n" +
		"table=44,icmp6,icmp_type=136,nd_target=fd00::5,nd_tll=0a:00:00:00:00:05,dl_dst=0a:00:00:00:00:02,metadata=7,actions=controller(userdata=ff.00.00.06)\n"
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
	deadline := time.Now().Add(15 * time.Second)
	for {
		if out, err := v.Ofctl("packet-out", "br-int", "in_port=controller packet="+hex.EncodeToString(ns6())+" actions=table"); err != nil {
			t.Fatalf("packet-out: %v %s", err, out)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			m, err := c.Recv()
			if err != nil {
				break
			}
			p, err := ofp.DecodePacketIn2(m)
			if err != nil || hex.EncodeToString(p.Userdata) != "ff000006" {
				continue
			}
			if len(p.Packet) != 86 || icmp6Checksum(p.Packet[22:54], p.Packet[54:]) != 0 || !bytes.Equal(p.Packet[80:86], []byte{0x0a, 0, 0, 0, 0, 5}) {
				t.Errorf("NA from OVS (want 86 bytes, valid checksum, tll 0a:00:00:00:00:05): %x", p.Packet)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no NA came back")
		}
	}
}
