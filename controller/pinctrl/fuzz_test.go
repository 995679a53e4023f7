package pinctrl

import (
	"testing"

	"github.com/govn/govn/controller/pinctrl/ofp"
	"github.com/govn/govn/lflow/action"
)

// FuzzBuilders: every builder and handler returns an error (never panics)
// on arbitrary frames.
func FuzzBuilders(f *testing.F) {
	f.Add(udp4(9, 1))
	f.Add(tcp4(tcpSYN, "x"))
	f.Add(arpReply)
	f.Add(dhcpMsg(dhcpDiscover, []byte{10, 0, 0, 5}))
	opts := []action.DHCPOption{{Code: 0, Value: []byte{10, 0, 0, 5}}, {Code: 3, Value: []byte{10, 0, 0, 1}}, {Code: 253, Value: []byte{1, 2, 3, 4}}}
	f.Fuzz(func(t *testing.T, p []byte) {
		BuildARP(p)
		BuildICMP4(p, false)
		BuildICMP4(p, true)
		BuildTCPReset(p, false)
		BuildReject(p)
		BuildDHCPReply(p, opts)
		Summary(p)
		pi := &ofp.PacketIn{Packet: p, Metadata: []ofp.Field{ofp.Metadata(7), ofp.Reg(14, 5)}}
		HandlePutARP(pi)
		HandlePutND(pi)
		HandlePutFDB(pi)
		PacketOutSpec(pi, "resubmit(,8)", p)
	})
}

// FuzzEncodeNested: arbitrary action text is encoded or refused, never a panic.
func FuzzEncodeNested(f *testing.F) {
	f.Add("set_field:0x1/0x1->reg10,move:reg14[]->reg15[],push:eth_dst[],pop:eth_src[0..47],resubmit(,37)")
	f.Add("set_field:fd00::5->nd_target,move:reg0[0..3]->reg1[4..7]")
	f.Fuzz(func(t *testing.T, s string) {
		acts, ok := EncodeNested(s)
		if ok && len(acts) == 0 {
			t.Fatal("ok without actions")
		}
		for _, a := range acts {
			if len(a)%8 != 0 {
				t.Fatalf("action of %d bytes", len(a))
			}
		}
	})
}
