package pinctrl

import (
	"encoding/binary"
	"fmt"
)

// Packet builders for the block actions arp{}, icmp4{} and icmp4_error{}:
// each turns the packet that reached the controller() action into the
// initial packet the block describes (man ovn-sb); the block's nested
// actions then run on it in OVS (see Config and README.md).

const (
	ethTypeIPv4 = 0x0800
	ethTypeARP  = 0x0806
	ethTypeVLAN = 0x8100
)

// l2 splits an Ethernet frame into its L2 header (with at most one VLAN tag)
// and the rest, and returns the inner EtherType.
func l2(p []byte) (hdr []byte, typ uint16, rest []byte, err error) {
	if len(p) < 14 {
		return nil, 0, nil, fmt.Errorf("frame of %d bytes has no Ethernet header", len(p))
	}
	n := 14
	typ = binary.BigEndian.Uint16(p[12:])
	if typ == ethTypeVLAN {
		if len(p) < 18 {
			return nil, 0, nil, fmt.Errorf("frame of %d bytes has a truncated VLAN header", len(p))
		}
		n, typ = 18, binary.BigEndian.Uint16(p[16:])
	}
	return p[:n], typ, p[n:], nil
}

// ipv4 returns the IPv4 header (with options) and payload of an IPv4
// packet, checking its lengths.
func ipv4(b []byte) (hdr, payload []byte, err error) {
	if len(b) < 20 || b[0]>>4 != 4 {
		return nil, nil, fmt.Errorf("not an IPv4 packet (%d bytes)", len(b))
	}
	ihl := int(b[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(b[2:]))
	if ihl < 20 || total < ihl || total > len(b) {
		return nil, nil, fmt.Errorf("IPv4 header length %d / total length %d do not fit %d bytes", ihl, total, len(b))
	}
	return b[:ihl], b[ihl:total], nil
}

// BuildARP builds the arp{} packet from an IPv4 packet: same Ethernet
// addresses and VLAN tag, an ARP request from eth.src / ip4.src for ip4.dst.
func BuildARP(p []byte) ([]byte, error) {
	hdr, typ, rest, err := l2(p)
	if err != nil {
		return nil, fmt.Errorf("arp: %w", err)
	}
	if typ != ethTypeIPv4 {
		return nil, fmt.Errorf("arp: packet has EtherType %#04x, not IPv4", typ)
	}
	ip, _, err := ipv4(rest)
	if err != nil {
		return nil, fmt.Errorf("arp: %w", err)
	}
	out := make([]byte, 0, len(hdr)+28)
	out = append(out, hdr...)
	binary.BigEndian.PutUint16(out[len(hdr)-2:], ethTypeARP)
	out = append(out, 0, 1, 0x08, 0, 6, 4, 0, 1) // Ethernet/IPv4, request
	out = append(out, p[6:12]...)                // sha = eth.src
	out = append(out, ip[12:16]...)              // spa = ip4.src
	out = append(out, 0, 0, 0, 0, 0, 0)          // tha
	out = append(out, ip[16:20]...)              // tpa = ip4.dst
	return out, nil
}

// maxICMPError caps an icmp4_error packet's IP length (RFC 1812 4.3.2.3:
// as much of the original datagram as fits in 576 bytes).
const maxICMPError = 576

// BuildICMP4 builds the icmp4{} (errorData false) or icmp4_error{}
// (errorData true) packet from an IPv4 packet: Ethernet header and IPv4
// addresses unchanged, protocol 1, not a fragment, TTL 255, ICMP
// destination unreachable / host unreachable. The ICMP data is the
// original IP header plus its first 8 payload bytes (RFC 792) for icmp4{},
// and as much of the original datagram as fits in 576 bytes for
// icmp4_error{} (RFC 1122 3.2.2). Checksums are filled in; OVS updates them
// as the nested actions rewrite fields.
func BuildICMP4(p []byte, errorData bool) ([]byte, error) {
	name := "icmp4"
	if errorData {
		name = "icmp4_error"
	}
	hdr, typ, rest, err := l2(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if typ != ethTypeIPv4 {
		return nil, fmt.Errorf("%s: packet has EtherType %#04x, not IPv4", name, typ)
	}
	ip, payload, err := ipv4(rest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	orig := rest[:len(ip)+len(payload)]
	data := orig[:len(ip)+min(8, len(payload))]
	if errorData {
		data = orig[:min(len(orig), maxICMPError-20-8)]
	}
	out := make([]byte, 0, len(hdr)+20+8+len(data))
	out = append(out, hdr...)
	ipOff := len(out)
	total := 20 + 8 + len(data)
	out = append(out, 0x45, ip[1], byte(total>>8), byte(total), ip[4], ip[5], 0, 0, 255, 1, 0, 0)
	out = append(out, ip[12:20]...)
	binary.BigEndian.PutUint16(out[ipOff+10:], checksum(out[ipOff:ipOff+20]))
	icmpOff := len(out)
	out = append(out, 3, 1, 0, 0, 0, 0, 0, 0)
	out = append(out, data...)
	binary.BigEndian.PutUint16(out[icmpOff+2:], checksum(out[icmpOff:]))
	return out, nil
}

// checksum is the Internet checksum (RFC 1071) of b.
func checksum(b []byte) uint16 {
	var s uint32
	for ; len(b) >= 2; b = b[2:] {
		s += uint32(binary.BigEndian.Uint16(b))
	}
	if len(b) == 1 {
		s += uint32(b[0]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
