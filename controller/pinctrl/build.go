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
	return buildICMP4(p, name, errorData, 3, 1, false)
}

func buildICMP4(p []byte, name string, errorData bool, typ, code byte, swap bool) ([]byte, error) {
	hdr, ip, payload, err := splitIPv4(p, name)
	if err != nil {
		return nil, err
	}
	orig := p[len(hdr) : len(hdr)+len(ip)+len(payload)]
	data := orig[:len(ip)+min(8, len(payload))]
	if errorData {
		data = orig[:min(len(orig), maxICMPError-20-8)]
	}
	out := appendL2(make([]byte, 0, len(hdr)+20+8+len(data)), hdr, swap)
	out = appendIPv4(out, ip, 20+8+len(data), 1, swap)
	icmpOff := len(out)
	out = append(out, typ, code, 0, 0, 0, 0, 0, 0)
	out = append(out, data...)
	binary.BigEndian.PutUint16(out[icmpOff+2:], checksum(out[icmpOff:]))
	return out, nil
}

// splitIPv4 returns the L2 header, IPv4 header and IPv4 payload of p.
func splitIPv4(p []byte, name string) (hdr, ip, payload []byte, err error) {
	hdr, typ, rest, err := l2(p)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if typ != ethTypeIPv4 {
		return nil, nil, nil, fmt.Errorf("%s: packet has EtherType %#04x, not IPv4", name, typ)
	}
	ip, payload, err = ipv4(rest)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	return hdr, ip, payload, nil
}

// appendL2 appends the L2 header hdr, with the MAC addresses swapped if swap.
func appendL2(out, hdr []byte, swap bool) []byte {
	n := len(out)
	out = append(out, hdr...)
	if swap {
		copy(out[n:n+6], hdr[6:12])
		copy(out[n+6:n+12], hdr[0:6])
	}
	return out
}

// appendIPv4 appends a 20-byte IPv4 header derived from the original header
// ip (TOS, id, addresses, swapped if swap): not a fragment, TTL 255, the
// given total length and protocol, checksum filled in.
func appendIPv4(out, ip []byte, total int, proto byte, swap bool) []byte {
	n := len(out)
	out = append(out, 0x45, ip[1], byte(total>>8), byte(total), ip[4], ip[5], 0, 0, 255, proto, 0, 0)
	if swap {
		out = append(append(out, ip[16:20]...), ip[12:16]...)
	} else {
		out = append(out, ip[12:20]...)
	}
	binary.BigEndian.PutUint16(out[n+10:], checksum(out[n:n+20]))
	return out
}

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// BuildTCPReset builds the tcp_reset{} packet (swap false) or the TCP case
// of reject{} (swap true: Ethernet and IP addresses exchanged, as reject{}
// does implicitly) from an IPv4 TCP packet: ports exchanged, no options or
// payload, TTL 255, and RFC 793's reset: if the segment had ACK, seq = its
// ack and flags RST; otherwise seq 0, ack = its seq + payload length (+1
// for SYN and for FIN) and flags RST|ACK (man ovn-sb says RST alone; a peer
// in SYN-SENT only accepts a reset that acknowledges its SYN).
func BuildTCPReset(p []byte, swap bool) ([]byte, error) {
	name := "tcp_reset"
	if swap {
		name = "reject"
	}
	hdr, ip, payload, err := splitIPv4(p, name)
	if err != nil {
		return nil, err
	}
	if ip[9] != 6 {
		return nil, fmt.Errorf("%s: IP protocol %d is not TCP", name, ip[9])
	}
	if len(payload) < 20 || int(payload[12]>>4)*4 < 20 || int(payload[12]>>4)*4 > len(payload) {
		return nil, fmt.Errorf("%s: truncated TCP header (%d bytes)", name, len(payload))
	}
	th := payload
	seq, ack, flags := binary.BigEndian.Uint32(th[4:]), binary.BigEndian.Uint32(th[8:]), th[13]
	var rseq, rack uint32
	rflags := byte(tcpRST)
	if flags&tcpACK != 0 {
		rseq = ack
	} else {
		rack = seq + uint32(len(payload)-int(th[12]>>4)*4)
		if flags&tcpSYN != 0 {
			rack++
		}
		if flags&tcpFIN != 0 {
			rack++
		}
		rflags |= tcpACK
	}
	out := appendL2(make([]byte, 0, len(hdr)+40), hdr, swap)
	ipOff := len(out)
	out = appendIPv4(out, ip, 40, 6, swap)
	tcpOff := len(out)
	out = append(out, th[2], th[3], th[0], th[1])
	out = binary.BigEndian.AppendUint32(out, rseq)
	out = binary.BigEndian.AppendUint32(out, rack)
	out = append(out, 5<<4, rflags, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint16(out[tcpOff+16:], l4Checksum(out[ipOff+12:ipOff+20], 6, out[tcpOff:]))
	return out, nil
}

// BuildReject builds the reject{} packet: a TCP reset for TCP, otherwise
// an ICMPv4 destination unreachable / port unreachable (type 3 code 3)
// carrying the original datagram; addresses exchanged either way.
func BuildReject(p []byte) ([]byte, error) {
	_, ip, _, err := splitIPv4(p, "reject")
	if err != nil {
		return nil, err
	}
	if ip[9] == 6 {
		return BuildTCPReset(p, true)
	}
	return buildICMP4(p, "reject", true, 3, 3, true)
}

// l4Checksum is the TCP/UDP checksum of seg with the IPv4 pseudo-header of
// addrs (source then destination address, 8 bytes).
func l4Checksum(addrs []byte, proto byte, seg []byte) uint16 {
	ph := make([]byte, 0, 12+len(seg))
	ph = append(ph, addrs...)
	ph = append(ph, 0, proto, byte(len(seg)>>8), byte(len(seg)))
	return checksum(append(ph, seg...))
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
