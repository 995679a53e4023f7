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
	"github.com/govn/govn/lflow/symtab"
)

const dhcpAction = "reg0[3] = put_dhcp_opts(offerip = 10.0.0.5, router = 10.0.0.1, netmask = 255.255.255.0, " +
	"server_id = 10.0.0.1, lease_time = 3600);"

// encodeDHCP returns the controller() action lflow/action encodes for dhcpAction.
func encodeDHCP(t *testing.T) string {
	t.Helper()
	parsed, err := action.Parse(dhcpAction, symtab.Default())
	if err != nil {
		t.Fatal(err)
	}
	enc, err := action.Encode(parsed.Actions, &action.EncodeParams{Pipeline: action.Ingress, Table: 3,
		TableMap: func(_ action.Pipeline, n int) (int, bool) { return 8 + n, true }, OutputTable: 37, MACBindingTable: 66})
	if err != nil {
		t.Fatal(err)
	}
	return enc.Actions.String()
}

// dhcpMsg is a DHCP message of type typ from 0a:00:00:00:00:02 (0.0.0.0:68
// → 255.255.255.255:67), asking for requested if valid.
func dhcpMsg(typ byte, requested []byte) []byte {
	b := make([]byte, bootpLen+4)
	b[0], b[1], b[2] = 1, 1, 6
	copy(b[4:8], []byte{0xde, 0xad, 0xbe, 0xef})
	copy(b[28:34], []byte{0x0a, 0, 0, 0, 0, 0x02})
	binary.BigEndian.PutUint32(b[bootpLen:], dhcpCookie)
	b = append(b, 53, 1, typ)
	if requested != nil {
		b = append(append(b, 50, 4), requested...)
	}
	b = append(b, 255)
	p := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0a, 0, 0, 0, 0, 0x02, 0x08, 0x00}
	ip := []byte{0x45, 0x10, 0, 0, 0, 1, 0, 0, 64, 17, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255}
	binary.BigEndian.PutUint16(ip[2:], uint16(28+len(b)))
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	udp := []byte{0, 68, 0, 67, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(b)))
	return append(append(append(p, ip...), udp...), b...)
}

func dhcpOptions(t *testing.T) []action.DHCPOption {
	t.Helper()
	enc := encodeDHCP(t)
	i, j := strings.Index(enc, "userdata="), strings.Index(enc, ",pause")
	ud, err := hex.DecodeString(strings.ReplaceAll(enc[i+len("userdata="):j], ".", ""))
	if err != nil {
		t.Fatal(err)
	}
	u, err := action.ParseUserData(ud)
	if err != nil {
		t.Fatal(err)
	}
	return u.DHCPOptions
}

// replyOptions returns the options of a DHCP reply, by code.
func replyOptions(t *testing.T, p []byte) (yiaddr []byte, opts map[byte][]byte) {
	t.Helper()
	b := p[14+20+8:]
	if b[0] != 2 || binary.BigEndian.Uint32(b[bootpLen:]) != dhcpCookie {
		t.Fatalf("not a BOOTP reply: %x", b)
	}
	opts = map[byte][]byte{}
	for o := b[bootpLen+4:]; len(o) > 1 && o[0] != 255; o = o[2+int(o[1]):] {
		opts[o[0]] = o[2 : 2+int(o[1])]
	}
	return b[16:20], opts
}

func TestBuildDHCPReply(t *testing.T) {
	opts := dhcpOptions(t)
	got, ok, err := BuildDHCPReply(dhcpMsg(dhcpDiscover, nil), opts)
	if err != nil || !ok {
		t.Fatalf("discover: ok %v err %v", ok, err)
	}
	yi, o := replyOptions(t, got)
	if !bytes.Equal(yi, []byte{10, 0, 0, 5}) || !bytes.Equal(o[53], []byte{dhcpOffer}) ||
		!bytes.Equal(o[3], []byte{10, 0, 0, 1}) || !bytes.Equal(o[1], []byte{255, 255, 255, 0}) ||
		!bytes.Equal(o[54], []byte{10, 0, 0, 1}) || !bytes.Equal(o[51], []byte{0, 0, 0x0e, 0x10}) {
		t.Errorf("offer: yiaddr %v options %v", yi, o)
	}
	if !bytes.Equal(got[14+20+8+4:14+20+8+8], []byte{0xde, 0xad, 0xbe, 0xef}) || checksum(got[14:34]) != 0 ||
		len(got) != 14+20+8+minBOOTPLen || int(binary.BigEndian.Uint16(got[16:])) != len(got)-14 {
		t.Errorf("offer header: %x", got[:60])
	}
	got, ok, _ = BuildDHCPReply(dhcpMsg(dhcpRequest, []byte{10, 0, 0, 5}), opts)
	if _, o := replyOptions(t, got); !ok || !bytes.Equal(o[53], []byte{dhcpAck}) {
		t.Errorf("request for the offered address: %v", o)
	}
	got, ok, _ = BuildDHCPReply(dhcpMsg(dhcpRequest, []byte{10, 0, 0, 9}), opts)
	if yi, o := replyOptions(t, got); !ok || !bytes.Equal(o[53], []byte{dhcpNak}) || len(o) != 2 || !bytes.Equal(yi, []byte{0, 0, 0, 0}) {
		t.Errorf("request for another address: yiaddr %v options %v", yi, o)
	}
	if _, ok, err := BuildDHCPReply(udp4(9, 64), opts); ok || err != nil {
		t.Errorf("non-DHCP packet: ok %v err %v", ok, err)
	}
	if _, _, err := BuildDHCPReply(dhcpMsg(dhcpDiscover, nil), nil); err == nil || !strings.Contains(err.Error(), "no offerip") {
		t.Errorf("err = %v", err)
	}
	if r, b, err := ParseResultBit("reg10[31]"); err != nil || r != 10 || b != 31 {
		t.Errorf("ParseResultBit = %d %d %v", r, b, err)
	}
	if _, _, err := ParseResultBit("xxreg0[3]"); err == nil {
		t.Errorf("xxreg0[3] accepted")
	}
}

// TestPutDHCPOptsThroughOVS: a paused put_dhcp_opts packet-in is answered
// by Run (NXT_RESUME with the OFFER and reg0[3] = 1); the pipeline continues
// after the controller action with both.
func TestPutDHCPOptsThroughOVS(t *testing.T) {
	v := startOVS(t)
	flows := "table=0,priority=100,udp,tp_dst=67,actions=set_field:7->metadata,set_field:0x10->reg0," + encodeDHCP(t) + ",resubmit(,43)\n" +
		"table=43,udp,tp_dst=67,reg0=0x18,metadata=7,actions=controller(userdata=ff.00.00.05)\n"
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
		// Each injection pauses; Run resumes it; our connection sees the
		// paused packet-in too (and ignores it) and then the marker.
		if out, err := v.Ofctl("packet-out", "br-int", "in_port=controller packet="+hex.EncodeToString(dhcpMsg(dhcpDiscover, nil))+" actions=table"); err != nil {
			t.Fatalf("packet-out: %v %s", err, out)
		}
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		for {
			m, err := c.Recv()
			if err != nil {
				break
			}
			p, err := ofp.DecodePacketIn2(m)
			if err != nil || hex.EncodeToString(p.Userdata) != "ff000005" {
				continue
			}
			yi, o := replyOptions(t, p.Packet)
			if !bytes.Equal(yi, []byte{10, 0, 0, 5}) || !bytes.Equal(o[53], []byte{dhcpOffer}) {
				t.Errorf("resumed packet is not the offer: %x", p.Packet)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("pipeline did not continue with the DHCP offer and reg0[3] set")
		}
	}
}
