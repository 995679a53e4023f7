package of

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/govn/govn/lflow/bits"
)

func itoa(i int) string { return strconv.Itoa(i) }

// CT state bits (ct_state), as OVS defines them.
const (
	CSNew  = 0x01
	CSEst  = 0x02
	CSRel  = 0x04
	CSRpl  = 0x08
	CSInv  = 0x10
	CSTrk  = 0x20
	CSSNAT = 0x40
	CSDNAT = 0x80
)

var ctStateNames = [8]string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"}

// FormatValue prints v in format f (without a mask).
func FormatValue(f Format, v bits.U128) string {
	switch f {
	case FormatDecimal:
		return v.String()
	case FormatMAC:
		return MACString(v)
	case FormatIPv4:
		return IPv4String(v)
	case FormatIPv6:
		return IPv6String(v)
	}
	return v.Hex()
}

// MACString prints the low 48 bits of v as xx:xx:xx:xx:xx:xx.
func MACString(v bits.U128) string {
	var b [17]byte
	const hex = "0123456789abcdef"
	for i := 0; i < 6; i++ {
		c := byte(v.Lo >> (40 - 8*uint(i)))
		b[i*3] = hex[c>>4]
		b[i*3+1] = hex[c&15]
		if i < 5 {
			b[i*3+2] = ':'
		}
	}
	return string(b[:])
}

// IPv4String prints the low 32 bits of v as a dotted quad.
func IPv4String(v bits.U128) string {
	x := uint32(v.Lo)
	return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)}).String()
}

// IPv6String prints v as an IPv6 address.
func IPv6String(v bits.U128) string { return netip.AddrFrom16(v.Bytes()).String() }

// PrefixLen returns n if mask (of a width-bit field) is n leading ones, else -1.
func PrefixLen(mask bits.U128, width int) int {
	n := mask.OnesCount()
	if mask == bits.Ones(width).AndNot(bits.Ones(width-n)) {
		return n
	}
	return -1
}

// FormatMasked prints value/mask for field f the way ovs-ofctl accepts it:
// exact values without a mask, CIDR prefixes for IP addresses when possible.
func FormatMasked(f Field, v, mask bits.U128) string {
	w := f.Width()
	full := bits.Ones(w)
	format := f.Format()
	switch format {
	case FormatCTState:
		return ctStateString(v, mask)
	case FormatFrag:
		s, _ := fragString(v, mask)
		return s
	}
	if mask.And(full) == full {
		return FormatValue(format, v)
	}
	switch format {
	case FormatIPv4, FormatIPv6:
		if n := PrefixLen(mask, w); n >= 0 {
			return FormatValue(format, v) + "/" + itoa(n)
		}
		return FormatValue(format, v) + "/" + FormatValue(format, mask)
	case FormatMAC:
		return FormatValue(format, v) + "/" + FormatValue(format, mask)
	}
	return v.Hex() + "/" + mask.Hex()
}

func ctStateString(v, mask bits.U128) string {
	if mask.Hi != 0 || mask.Lo>>8 != 0 {
		return v.Hex() + "/" + mask.Hex()
	}
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if mask.Lo>>uint(i)&1 == 0 {
			continue
		}
		if v.Lo>>uint(i)&1 == 1 {
			sb.WriteByte('+')
		} else {
			sb.WriteByte('-')
		}
		sb.WriteString(ctStateNames[i])
	}
	return sb.String()
}

// nw_frag bits: bit 0 = the packet is a fragment, bit 1 = a later fragment.
const (
	FragAny   = 1
	FragLater = 2
)

// fragString returns the ovs-ofctl keyword for a nw_frag value/mask, and false
// if the combination cannot match any packet (a later fragment that is not a
// fragment).
func fragString(v, mask bits.U128) (string, bool) {
	m := mask.Lo & 3
	x := v.Lo & m
	switch m {
	case 1:
		if x == 1 {
			return "yes", true
		}
		return "no", true
	case 2:
		if x == 2 {
			return "later", true
		}
		return "not_later", true
	case 3:
		switch x {
		case 0:
			return "no", true
		case 1:
			return "first", true
		case 3:
			return "later", true
		}
		return "no", false
	}
	return "no", false
}
