package pinctrl

import (
	"context"
	"encoding/hex"
	"testing"
	"time"

	"github.com/govn/govn/controller/pinctrl/ofp"
	"github.com/govn/govn/internal/ovstest"
)

// arpReply is an ARP reply from 10.0.0.2 (0a:00:00:00:00:02) to 10.0.0.1.
var arpReply = []byte{
	0x0a, 0, 0, 0, 0, 0x01, 0x0a, 0, 0, 0, 0, 0x02, 0x08, 0x06,
	0, 1, 0x08, 0, 6, 4, 0, 2,
	0x0a, 0, 0, 0, 0, 0x02, 10, 0, 0, 2,
	0x0a, 0, 0, 0, 0, 0x01, 10, 0, 0, 1,
}

func startOVS(t *testing.T) *ovstest.OVS {
	return ovstest.Start(t, ovstest.Options{Bridges: []string{"br-int"}, PrivateNetns: true})
}

func dialOVS(t *testing.T, v *ovstest.OVS) *Conn {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, v.MgmtSock("br-int"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recvPacketIn waits for the next NXT_PACKET_IN2.
func recvPacketIn(t *testing.T, c *Conn) *ofp.PacketIn {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		m, err := c.Recv()
		if err != nil {
			t.Fatalf("recv: %v", err)
		}
		if id, sub, err := ofp.Experimenter(m); m[1] == ofp.TypeExperimenter && err == nil && id == ofp.NiciraID && sub == ofp.NXTPacketIn2 {
			pin, err := ofp.DecodePacketIn2(m)
			if err != nil {
				t.Fatal(err)
			}
			return pin
		}
		t.Logf("skipping message type %d", m[1])
	}
}

func TestPacketInFromOVS(t *testing.T) {
	v := startOVS(t)
	c := dialOVS(t, v)
	flow := "table=0,priority=100,cookie=0x1234,arp,actions=set_field:5->reg14,set_field:0x0a000002->reg0," +
		"set_field:7->metadata,controller(userdata=00.00.00.02.aa.bb)\n"
	if out, err := v.OfctlStdin(flow, "add-flows", "br-int", "-"); err != nil {
		t.Fatalf("add-flows: %v %s", err, out)
	}
	if out, err := v.Ofctl("packet-out", "br-int", "in_port=controller packet="+hex.EncodeToString(arpReply)+" actions=table"); err != nil {
		t.Fatalf("packet-out: %v %s", err, out)
	}
	pin := recvPacketIn(t, c)
	if hex.EncodeToString(pin.Userdata) != "00000002aabb" {
		t.Errorf("userdata = %x", pin.Userdata)
	}
	if string(pin.Packet) != string(arpReply) || pin.FullLen != uint32(len(arpReply)) {
		t.Errorf("packet = %x (full_len %d)", pin.Packet, pin.FullLen)
	}
	if pin.Cookie != 0x1234 || pin.TableID != 0 {
		t.Errorf("cookie %#x table %d", pin.Cookie, pin.TableID)
	}
	if r, ok := pin.Reg(14); !ok || r != 5 {
		t.Errorf("reg14 = %d, %v", r, ok)
	}
	if r, ok := pin.Reg(0); !ok || r != 0x0a000002 {
		t.Errorf("reg0 = %#x, %v", r, ok)
	}
	if m, ok := pin.MetadataField(); !ok || m != 7 {
		t.Errorf("metadata = %d, %v", m, ok)
	}
	if pin.Continuation != nil {
		t.Errorf("continuation without pause")
	}
	t.Logf("metadata fields: %v", pin.Metadata)
}

// TestBinaryPacketOutAndResume checks ofp.PacketOut (pipeline fields in the
// match, set-field and resubmit actions) and ofp.Resume against OVS: a
// binary packet-out reaches a paused controller action, the test resumes
// it, and the pipeline continues after the action with its registers.
func TestBinaryPacketOutAndResume(t *testing.T) {
	v := startOVS(t)
	flows := "table=40,arp,metadata=7,reg14=5,actions=set_field:9->reg15,controller(userdata=00.00.00.0f.00,pause),resubmit(,41)\n" +
		"table=41,arp,metadata=7,reg15=9,actions=controller(userdata=ff.00.00.03)\n"
	if out, err := v.OfctlStdin(flows, "add-flows", "br-int", "-"); err != nil {
		t.Fatalf("add-flows: %v %s", err, out)
	}
	c := dialOVS(t, v)
	m, err := ofp.PacketOut(c.NextXid(), []ofp.Field{ofp.InPort(ofp.PortController), ofp.Metadata(7)},
		[]ofp.Action{ofp.SetField(ofp.Reg(14, 5)), ofp.ResubmitTable(40)}, arpReply)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(m); err != nil {
		t.Fatal(err)
	}
	pin := recvPacketIn(t, c)
	if hex.EncodeToString(pin.Userdata) != "0000000f00" || pin.Continuation == nil {
		t.Fatalf("paused packet-in: userdata %x table %d continuation %d bytes", pin.Userdata, pin.TableID, len(pin.Continuation))
	}
	if r, _ := pin.Reg(15); r != 9 {
		t.Errorf("reg15 = %d, want 9", r)
	}
	resume, err := ofp.Resume(c.NextXid(), pin, pin.Packet)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Send(resume); err != nil {
		t.Fatal(err)
	}
	pin = recvPacketIn(t, c)
	if hex.EncodeToString(pin.Userdata) != "ff000003" || string(pin.Packet) != string(arpReply) {
		t.Errorf("after resume: userdata %x table %d packet %x", pin.Userdata, pin.TableID, pin.Packet)
	}
}
