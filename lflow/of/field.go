// Package of holds typed OpenFlow values — fields, matches, actions, flows —
// and prints them in the text syntax `ovs-ofctl -O OpenFlow15 add-flows`
// accepts (OpenFlow 1.5 plus Nicira extensions). It also defines Packet, the
// packet model (the values of every OpenFlow field a logical flow can read or
// write) used by expression evaluation and by action execution in trace.
//
// The package is pure: no I/O.
package of

import (
	"github.com/govn/govn/lflow/bits"
)

// Field identifies an OpenFlow (OXM/NXM) field.
type Field uint8

// Format says how a field's values are printed.
type Format uint8

const (
	FormatDecimal Format = iota // 80
	FormatHex                   // 0x50
	FormatMAC                   // 00:11:22:33:44:55
	FormatIPv4                  // 10.0.0.1
	FormatIPv6                  // fe80::1
	FormatCTState               // +new+trk (ct_state only)
	FormatFrag                  // no|yes|first|later|not_later (nw_frag only)
)

func (f Format) String() string {
	switch f {
	case FormatDecimal:
		return "decimal"
	case FormatHex:
		return "hex"
	case FormatMAC:
		return "mac"
	case FormatIPv4:
		return "ipv4"
	case FormatIPv6:
		return "ipv6"
	case FormatCTState:
		return "ct_state"
	case FormatFrag:
		return "frag"
	}
	return "format?"
}

// The fields, in the order matches print them. Registers: reg0..reg15 are the
// storage; xregN overlays reg(2N) (most significant) and reg(2N+1); xxregN
// overlays reg(4N) (most significant) .. reg(4N+3).
const (
	FieldNone Field = iota
	ConjID
	InPort
	Reg0
	Reg1
	Reg2
	Reg3
	Reg4
	Reg5
	Reg6
	Reg7
	Reg8
	Reg9
	Reg10
	Reg11
	Reg12
	Reg13
	Reg14
	Reg15
	XReg0
	XReg1
	XReg2
	XReg3
	XReg4
	XReg5
	XReg6
	XReg7
	XXReg0
	XXReg1
	XXReg2
	XXReg3
	Metadata
	TunID
	TunMetadata0
	TunMetadata1
	TunMetadata2
	TunMetadata3
	PktMark
	CTState
	CTZone
	CTMark
	CTLabel
	EthSrc
	EthDst
	EthType
	VLANTCI
	IPSrc
	IPDst
	IPv6Src
	IPv6Dst
	IPv6Label
	IPProto
	IPDSCP
	IPECN
	IPTTL
	IPFrag
	ARPOp
	ARPSPA
	ARPTPA
	ARPSHA
	ARPTHA
	TCPSrc
	TCPDst
	TCPFlags
	UDPSrc
	UDPDst
	SCTPSrc
	SCTPDst
	ICMPv4Type
	ICMPv4Code
	ICMPv6Type
	ICMPv6Code
	NDTarget
	NDSLL
	NDTLL
	TunSrc    // tunnel outer IPv4 source (tun_src)
	TunDst    // tunnel outer IPv4 destination (tun_dst)
	CTNwProto // original-direction conntrack tuple (OpenFlow needs ct_state=+trk-inv, +new or +est)
	CTNwSrc
	CTNwDst
	CTIPv6Src
	CTIPv6Dst
	CTTpSrc
	CTTpDst
	numFields
)

// NumFields is the number of Field values (including FieldNone).
const NumFields = int(numFields)

type fieldInfo struct {
	name     string // ovs-ofctl name (match and set_field)
	width    int
	maskable bool
	format   Format
	// prereq is true for fields OpenFlow uses as prerequisites of other
	// fields (dl_type, nw_proto, icmp types): a match must give them exact
	// values, never alternatives split across conjunction dimensions.
	prereq bool
}

var fieldInfos = [numFields]fieldInfo{
	FieldNone:    {"none", 0, false, FormatHex, false},
	ConjID:       {"conj_id", 32, false, FormatDecimal, false},
	InPort:       {"in_port", 32, false, FormatDecimal, false},
	Reg0:         {"reg0", 32, true, FormatHex, false},
	Reg1:         {"reg1", 32, true, FormatHex, false},
	Reg2:         {"reg2", 32, true, FormatHex, false},
	Reg3:         {"reg3", 32, true, FormatHex, false},
	Reg4:         {"reg4", 32, true, FormatHex, false},
	Reg5:         {"reg5", 32, true, FormatHex, false},
	Reg6:         {"reg6", 32, true, FormatHex, false},
	Reg7:         {"reg7", 32, true, FormatHex, false},
	Reg8:         {"reg8", 32, true, FormatHex, false},
	Reg9:         {"reg9", 32, true, FormatHex, false},
	Reg10:        {"reg10", 32, true, FormatHex, false},
	Reg11:        {"reg11", 32, true, FormatHex, false},
	Reg12:        {"reg12", 32, true, FormatHex, false},
	Reg13:        {"reg13", 32, true, FormatHex, false},
	Reg14:        {"reg14", 32, true, FormatHex, false},
	Reg15:        {"reg15", 32, true, FormatHex, false},
	XReg0:        {"xreg0", 64, true, FormatHex, false},
	XReg1:        {"xreg1", 64, true, FormatHex, false},
	XReg2:        {"xreg2", 64, true, FormatHex, false},
	XReg3:        {"xreg3", 64, true, FormatHex, false},
	XReg4:        {"xreg4", 64, true, FormatHex, false},
	XReg5:        {"xreg5", 64, true, FormatHex, false},
	XReg6:        {"xreg6", 64, true, FormatHex, false},
	XReg7:        {"xreg7", 64, true, FormatHex, false},
	XXReg0:       {"xxreg0", 128, true, FormatHex, false},
	XXReg1:       {"xxreg1", 128, true, FormatHex, false},
	XXReg2:       {"xxreg2", 128, true, FormatHex, false},
	XXReg3:       {"xxreg3", 128, true, FormatHex, false},
	Metadata:     {"metadata", 64, true, FormatHex, false},
	TunID:        {"tun_id", 64, true, FormatHex, false},
	TunMetadata0: {"tun_metadata0", 32, true, FormatHex, false},
	TunMetadata1: {"tun_metadata1", 32, true, FormatHex, false},
	TunMetadata2: {"tun_metadata2", 32, true, FormatHex, false},
	TunMetadata3: {"tun_metadata3", 32, true, FormatHex, false},
	PktMark:      {"pkt_mark", 32, true, FormatHex, false},
	CTState:      {"ct_state", 32, true, FormatCTState, false},
	CTZone:       {"ct_zone", 16, false, FormatDecimal, false},
	CTMark:       {"ct_mark", 32, true, FormatHex, false},
	CTLabel:      {"ct_label", 128, true, FormatHex, false},
	EthSrc:       {"eth_src", 48, true, FormatMAC, false},
	EthDst:       {"eth_dst", 48, true, FormatMAC, false},
	EthType:      {"eth_type", 16, false, FormatHex, true},
	VLANTCI:      {"vlan_tci", 16, true, FormatHex, false},
	IPSrc:        {"ip_src", 32, true, FormatIPv4, false},
	IPDst:        {"ip_dst", 32, true, FormatIPv4, false},
	IPv6Src:      {"ipv6_src", 128, true, FormatIPv6, false},
	IPv6Dst:      {"ipv6_dst", 128, true, FormatIPv6, false},
	IPv6Label:    {"ipv6_label", 20, true, FormatHex, false},
	IPProto:      {"ip_proto", 8, false, FormatDecimal, true},
	IPDSCP:       {"ip_dscp", 6, false, FormatDecimal, false},
	IPECN:        {"nw_ecn", 2, false, FormatDecimal, false},
	IPTTL:        {"nw_ttl", 8, false, FormatDecimal, false},
	IPFrag:       {"nw_frag", 2, true, FormatFrag, false},
	ARPOp:        {"arp_op", 16, false, FormatDecimal, false},
	ARPSPA:       {"arp_spa", 32, true, FormatIPv4, false},
	ARPTPA:       {"arp_tpa", 32, true, FormatIPv4, false},
	ARPSHA:       {"arp_sha", 48, true, FormatMAC, false},
	ARPTHA:       {"arp_tha", 48, true, FormatMAC, false},
	TCPSrc:       {"tcp_src", 16, true, FormatDecimal, false},
	TCPDst:       {"tcp_dst", 16, true, FormatDecimal, false},
	TCPFlags:     {"tcp_flags", 12, true, FormatHex, false},
	UDPSrc:       {"udp_src", 16, true, FormatDecimal, false},
	UDPDst:       {"udp_dst", 16, true, FormatDecimal, false},
	SCTPSrc:      {"sctp_src", 16, true, FormatDecimal, false},
	SCTPDst:      {"sctp_dst", 16, true, FormatDecimal, false},
	ICMPv4Type:   {"icmp_type", 8, false, FormatDecimal, true},
	ICMPv4Code:   {"icmp_code", 8, false, FormatDecimal, false},
	ICMPv6Type:   {"icmpv6_type", 8, false, FormatDecimal, true},
	ICMPv6Code:   {"icmpv6_code", 8, false, FormatDecimal, false},
	NDTarget:     {"nd_target", 128, true, FormatIPv6, false},
	NDSLL:        {"nd_sll", 48, true, FormatMAC, false},
	NDTLL:        {"nd_tll", 48, true, FormatMAC, false},
	TunSrc:       {"tun_src", 32, true, FormatIPv4, false},
	TunDst:       {"tun_dst", 32, true, FormatIPv4, false},
	CTNwProto:    {"ct_nw_proto", 8, false, FormatDecimal, false},
	CTNwSrc:      {"ct_nw_src", 32, true, FormatIPv4, false},
	CTNwDst:      {"ct_nw_dst", 32, true, FormatIPv4, false},
	CTIPv6Src:    {"ct_ipv6_src", 128, true, FormatIPv6, false},
	CTIPv6Dst:    {"ct_ipv6_dst", 128, true, FormatIPv6, false},
	CTTpSrc:      {"ct_tp_src", 16, true, FormatDecimal, false},
	CTTpDst:      {"ct_tp_dst", 16, true, FormatDecimal, false},
}

var fieldByName map[string]Field

func init() {
	fieldByName = make(map[string]Field, numFields)
	for f := Field(1); f < numFields; f++ {
		fieldByName[fieldInfos[f].name] = f
	}
}

// FieldByName returns the field with ovs-ofctl name s (e.g. "reg0", "ip_src").
func FieldByName(s string) (Field, bool) {
	f, ok := fieldByName[s]
	return f, ok
}

// Valid reports whether f is a known field.
func (f Field) Valid() bool { return f > FieldNone && f < numFields }

func (f Field) info() *fieldInfo {
	if f >= numFields {
		return &fieldInfos[FieldNone]
	}
	return &fieldInfos[f]
}

// String returns the ovs-ofctl name of f.
func (f Field) String() string { return f.info().name }

// Width returns the width of f in bits.
func (f Field) Width() int { return f.info().width }

// Maskable reports whether OpenFlow can match f with an arbitrary bitmask.
func (f Field) Maskable() bool { return f.info().maskable }

// Format returns how f's values are printed.
func (f Field) Format() Format { return f.info().format }

// IsPrereq reports whether OpenFlow uses f as a prerequisite of other fields
// (eth_type, ip_proto, icmp types). Expressions give such fields exact values
// in each flow rather than spreading them over conjunction dimensions.
func (f Field) IsPrereq() bool { return f.info().prereq }

// RegIndex returns n for regN, or -1.
func (f Field) RegIndex() int {
	if f >= Reg0 && f <= Reg15 {
		return int(f - Reg0)
	}
	return -1
}

// Reg returns the 32-bit register field regN (0 <= n <= 15).
func Reg(n int) Field { return Reg0 + Field(n) }

// XReg returns xregN (0 <= n <= 7).
func XReg(n int) Field { return XReg0 + Field(n) }

// XXReg returns xxregN (0 <= n <= 3).
func XXReg(n int) Field { return XXReg0 + Field(n) }

// regPart describes a piece of a wide register in terms of a 32-bit register:
// bits [shift, shift+32) of the wide value live in register reg.
type regPart struct {
	reg   Field
	shift uint
}

// regParts returns the 32-bit registers that store f, or nil if f is not an
// overlay register (xreg/xxreg).
func regParts(f Field, buf *[4]regPart) []regPart {
	switch {
	case f >= XReg0 && f <= XReg7:
		n := int(f - XReg0)
		buf[0] = regPart{Reg(2 * n), 32}
		buf[1] = regPart{Reg(2*n + 1), 0}
		return buf[:2]
	case f >= XXReg0 && f <= XXReg3:
		n := int(f - XXReg0)
		for i := 0; i < 4; i++ {
			buf[i] = regPart{Reg(4*n + i), uint(32 * (3 - i))}
		}
		return buf[:4]
	}
	return nil
}

// Subfield names bits [Ofs, Ofs+NBits) of Field. NBits == 0 means the whole
// field. It prints as ovs-ofctl's "reg0[0..15]" / "reg15[]" syntax.
type Subfield struct {
	Field Field
	Ofs   int
	NBits int
}

// Whole returns the subfield covering all of f.
func Whole(f Field) Subfield { return Subfield{Field: f, Ofs: 0, NBits: f.Width()} }

// Bits returns the number of bits (resolving NBits == 0 to the field width).
func (s Subfield) Bits() int {
	if s.NBits == 0 {
		return s.Field.Width() - s.Ofs
	}
	return s.NBits
}

func (s Subfield) String() string {
	n := s.Bits()
	if s.Ofs == 0 && n == s.Field.Width() {
		return s.Field.String() + "[]"
	}
	if n == 1 {
		return s.Field.String() + "[" + itoa(s.Ofs) + "]"
	}
	return s.Field.String() + "[" + itoa(s.Ofs) + ".." + itoa(s.Ofs+n-1) + "]"
}

// Mask returns the bits of the field the subfield covers.
func (s Subfield) Mask() bits.U128 { return bits.Range(s.Ofs, s.Ofs+s.Bits()-1) }

// Sub returns the subfield of f of nbits bits starting at bit ofs.
func Sub(f Field, ofs, nbits int) Subfield { return Subfield{Field: f, Ofs: ofs, NBits: nbits} }
