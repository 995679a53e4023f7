package pinctrl

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/govn/govn/controller/pinctrl/ofp"
)

// PacketOutSpec returns the ovs-ofctl packet-out argument that sends packet
// back into the pipeline as the nested actions of a block action (arp{},
// icmp4{}, ...) would see it: from the original in_port, with the logical
// pipeline context of the packet-in (metadata = datapath key and every
// register OVS reported) restored by set_field actions, then the nested
// actions (ovs-ofctl text, as lflow/action encodes them).
//
// This is the fallback for nested actions EncodeNested cannot encode: the nested actions
// arrive as ovs-ofctl action text (set_field, move, push/pop, resubmit, and
// whatever else a logical action encodes to); encoding that text to binary
// would mean re-implementing OVS's action parser and field table. A
// generated packet is a slow-path event (ARP resolution, ICMP errors), so
// one ovs-ofctl run per packet is the simplest correct route; OVS itself
// parses and validates the actions.
// errNoActions: the block's nested actions drop the packet; nothing to send.
var errNoActions = errors.New("packet-out: the nested actions drop the packet")

func PacketOutSpec(p *ofp.PacketIn, actions string, packet []byte) (string, error) {
	if strings.ContainsAny(actions, " \t\n") {
		return "", fmt.Errorf("packet-out: nested actions %q contain white space", actions)
	}
	var b strings.Builder
	b.WriteString("in_port=")
	in, ok := p.InPort()
	switch {
	case !ok || in == ofp.PortController:
		b.WriteString("controller")
	case in == 0xfffffffe:
		b.WriteString("local")
	default:
		b.WriteString(strconv.FormatUint(uint64(in), 10))
	}
	b.WriteString(" packet=")
	b.WriteString(hex.EncodeToString(packet))
	b.WriteString(" actions=")
	if md, ok := p.MetadataField(); ok && md != 0 {
		fmt.Fprintf(&b, "set_field:%#x->metadata,", md)
	}
	for n := 0; n < 16; n++ {
		if v, ok := p.Reg(n); ok && v != 0 {
			fmt.Fprintf(&b, "set_field:%#x->reg%d,", v, n)
		}
	}
	if actions == "" || actions == "drop" {
		return "", errNoActions
	}
	b.WriteString(actions)
	return b.String(), nil
}
