package pinctrl

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/govn/govn/controller/pinctrl/ofp"

	"github.com/govn/govn/internal/ovstest"
)

func BenchmarkBuildICMP4Error(b *testing.B) {
	in := udp4(9, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildICMP4(in, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandlePutARPAndPlan(b *testing.B) {
	r := mapResolver{dps: map[uint32]string{7: "dp7"}, ports: map[[2]uint32]string{{7, 5}: "lp1"}}
	p := pin(arpReply, 7, map[int]uint32{14: 5, 0: 0x0a000002})
	none := func(BindingKey) (Existing, bool) { return Existing{}, false }
	b.ReportAllocs()
	for b.Loop() {
		l, err := HandlePutARP(p)
		if err != nil {
			b.Fatal(err)
		}
		if ins, _, _ := Plan([]Learned{l}, r, none); len(ins) != 1 {
			b.Fatal(ins)
		}
	}
}

// BenchmarkGeneratedPacketOut measures sending a generated packet into a
// real ovs-vswitchd until the packet-in it causes arrives: the binary
// packet-out Run uses when it can encode the nested actions, and the
// ovs-ofctl fallback.
func BenchmarkGeneratedPacketOut(b *testing.B) {
	v := ovstest.Start(b, ovstest.Options{Bridges: []string{"br-int"}, PrivateNetns: true})
	if out, err := v.OfctlStdin("table=44,actions=controller(userdata=ff.00.00.07)\n", "add-flows", "br-int", "-"); err != nil {
		b.Fatalf("%v %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := Dial(ctx, v.MgmtSock("br-int"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	h := &handler{cfg: Config{MgmtSock: v.MgmtSock("br-int"), Ofctl: "ovs-ofctl", Log: zap.NewNop()}, m: newMetrics(nil)}
	pin := pin(arpReply, 7, map[int]uint32{14: 5})
	spec, err := PacketOutSpec(pin, "resubmit(,44)", arpReply)
	if err != nil {
		b.Fatal(err)
	}
	h.conn = c
	b.Run("binary", func(b *testing.B) {
		acts, ok := PacketOutActions(pin, "resubmit(,44)")
		if !ok {
			b.Fatal("not encoded")
		}
		for b.Loop() {
			m, err := ofp.PacketOut(c.NextXid(), []ofp.Field{ofp.InPort(ofp.PortController)}, acts, arpReply)
			if err != nil {
				b.Fatal(err)
			}
			if err := c.Send(m); err != nil {
				b.Fatal(err)
			}
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Recv(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ovs-ofctl", func(b *testing.B) {
		for b.Loop() {
			h.packetOut(ctx, "arp", spec)
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Recv(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
