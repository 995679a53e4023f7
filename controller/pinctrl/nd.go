package pinctrl

import (
	"encoding/binary"
	"fmt"
)

const ethTypeIPv6 = 0x86dd

// NA flags (RFC 4861 4.4): Router, Solicited, Override.
const (
	naRouter    = 0x80
	naSolicited = 0x40
	naOverride  = 0x20
)

// BuildNDNA builds the nd_na{} packet from an IPv6 neighbor solicitation
// (man ovn-sb): Ethernet addresses exchanged (VLAN tag kept), ip6.src =
// nd.target, ip6.dst = the NS's ip6.src, hop limit 255, ICMPv6 type 136 with
// the Solicited and Override flags, nd.target unchanged, and a target
// link-layer address option holding the NS's eth.dst (the nested actions
// normally set nd.tll and eth.src to the answering MAC). The ICMPv6
// checksum is filled in.
func BuildNDNA(p []byte) ([]byte, error) {
	hdr, typ, rest, err := l2(p)
	if err != nil {
		return nil, fmt.Errorf("nd_na: %w", err)
	}
	if typ != ethTypeIPv6 {
		return nil, fmt.Errorf("nd_na: packet has EtherType %#04x, not IPv6", typ)
	}
	if len(rest) < 40 || rest[0]>>4 != 6 {
		return nil, fmt.Errorf("nd_na: not an IPv6 packet (%d bytes)", len(rest))
	}
	plen := int(binary.BigEndian.Uint16(rest[4:]))
	if plen > len(rest)-40 {
		return nil, fmt.Errorf("nd_na: IPv6 payload length %d exceeds the %d bytes present", plen, len(rest)-40)
	}
	icmp := rest[40 : 40+plen]
	if rest[6] != 58 || len(icmp) < 24 || icmp[0] != 135 {
		return nil, fmt.Errorf("nd_na: not a neighbor solicitation")
	}
	target := icmp[8:24]
	out := appendL2(make([]byte, 0, len(hdr)+40+32), hdr, true)
	ipOff := len(out)
	out = append(out, 0x60, 0, 0, 0, 0, 32, 58, 255)
	out = append(out, target...)     // src = nd.target
	out = append(out, rest[8:24]...) // dst = NS's ip6.src
	icmpOff := len(out)
	out = append(out, 136, 0, 0, 0, naSolicited|naOverride, 0, 0, 0)
	out = append(out, target...)
	out = append(out, 2, 1)        // target link-layer address option
	out = append(out, hdr[0:6]...) // the NS's eth.dst
	binary.BigEndian.PutUint16(out[icmpOff+2:], icmp6Checksum(out[ipOff+8:ipOff+40], out[icmpOff:]))
	return out, nil
}

// icmp6Checksum is the ICMPv6 checksum of msg with the IPv6 pseudo-header
// of addrs (source then destination address, 32 bytes).
func icmp6Checksum(addrs, msg []byte) uint16 {
	ph := make([]byte, 0, 40+len(msg))
	ph = append(ph, addrs...)
	ph = binary.BigEndian.AppendUint32(ph, uint32(len(msg)))
	ph = append(ph, 0, 0, 0, 58)
	return checksum(append(ph, msg...))
}
