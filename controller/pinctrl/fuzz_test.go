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
