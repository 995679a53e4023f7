package pinctrl

import (
	"math/big"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/govn/govn/controller/pinctrl/ofp"
)

// nestedField is a field the binary nested-action encoder knows.
type nestedField struct {
	class uint16
	field uint8
	bytes int
	kind  byte // 'm' MAC, '4' IPv4, '6' IPv6, 'i' integer
}

var nestedFields = func() map[string]nestedField {
	o := func(f uint8, n int, k byte) nestedField { return nestedField{ofp.ClassOpenFlow, f, n, k} }
	m := map[string]nestedField{
		"metadata": o(2, 8, 'i'),
		"eth_dst":  o(3, 6, 'm'), "NXM_OF_ETH_DST": o(3, 6, 'm'),
		"eth_src": o(4, 6, 'm'), "NXM_OF_ETH_SRC": o(4, 6, 'm'),
		"ip_src": o(11, 4, '4'), "nw_src": o(11, 4, '4'), "NXM_OF_IP_SRC": o(11, 4, '4'),
		"ip_dst": o(12, 4, '4'), "nw_dst": o(12, 4, '4'), "NXM_OF_IP_DST": o(12, 4, '4'),
		"tcp_src": o(13, 2, 'i'), "tcp_dst": o(14, 2, 'i'), "udp_src": o(15, 2, 'i'), "udp_dst": o(16, 2, 'i'),
		"icmp_type": o(19, 1, 'i'), "icmp_code": o(20, 1, 'i'),
		"arp_op": o(21, 2, 'i'), "NXM_OF_ARP_OP": o(21, 2, 'i'),
		"arp_spa": o(22, 4, '4'), "NXM_OF_ARP_SPA": o(22, 4, '4'),
		"arp_tpa": o(23, 4, '4'), "NXM_OF_ARP_TPA": o(23, 4, '4'),
		"arp_sha": o(24, 6, 'm'), "NXM_NX_ARP_SHA": o(24, 6, 'm'),
		"arp_tha": o(25, 6, 'm'), "NXM_NX_ARP_THA": o(25, 6, 'm'),
		"ipv6_src": o(26, 16, '6'), "ipv6_dst": o(27, 16, '6'),
		"icmpv6_type": o(29, 1, 'i'), "icmpv6_code": o(30, 1, 'i'),
		"nd_target": o(31, 16, '6'), "nd_sll": o(32, 6, 'm'), "nd_tll": o(33, 6, 'm'),
		"nw_ttl": {ofp.ClassNXM1, 29, 1, 'i'},
	}
	for i := 0; i < 16; i++ {
		f := nestedField{ofp.ClassNXM1, uint8(i), 4, 'i'}
		m["reg"+strconv.Itoa(i)] = f
		m["NXM_NX_REG"+strconv.Itoa(i)] = f
	}
	return m
}()

var (
	subfieldRE = regexp.MustCompile(`^([A-Za-z_0-9]+)\[(?:(\d+)(?:\.\.(\d+))?)?\]$`)
	resubmitRE = regexp.MustCompile(`^resubmit\(,(\d+)\)$`)
)

// EncodeNested encodes ovs-ofctl action text (the nested actions of a
// block action) to binary OpenFlow actions when every action is one the
// packet-in path needs: set_field (exact or masked), move, push, pop and
// resubmit(,T) on the fields of nestedFields. ok is false (and the caller
// falls back to ovs-ofctl) for anything else.
func EncodeNested(text string) (acts []ofp.Action, ok bool) {
	for _, a := range splitActions(text) {
		act, ok := encodeOne(a)
		if !ok {
			return nil, false
		}
		acts = append(acts, act)
	}
	return acts, len(acts) > 0
}

func splitActions(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func encodeOne(a string) (ofp.Action, bool) {
	switch {
	case strings.HasPrefix(a, "set_field:"):
		v, f, found := strings.Cut(a[len("set_field:"):], "->")
		nf, ok := nestedFields[f]
		if !found || !ok {
			return nil, false
		}
		val, mask, _ := strings.Cut(v, "/")
		fv, ok := parseValue(nf, val)
		if !ok {
			return nil, false
		}
		fld := ofp.Field{Class: nf.class, Field: nf.field, Value: fv}
		if mask != "" {
			if fld.Mask, ok = parseValue(nf, mask); !ok {
				return nil, false
			}
		}
		return ofp.SetField(fld), true
	case strings.HasPrefix(a, "move:"):
		s, d, found := strings.Cut(a[len("move:"):], "->")
		if !found {
			return nil, false
		}
		sf, sofs, sn, ok1 := parseSubfield(s)
		df, dofs, dn, ok2 := parseSubfield(d)
		if !ok1 || !ok2 || sn != dn {
			return nil, false
		}
		return ofp.CopyField(sf, df, sn, sofs, dofs), true
	case strings.HasPrefix(a, "push:"), strings.HasPrefix(a, "pop:"):
		pop := strings.HasPrefix(a, "pop:")
		f, ofs, n, ok := parseSubfield(a[strings.IndexByte(a, ':')+1:])
		if !ok {
			return nil, false
		}
		return ofp.StackPush(f, n, ofs, pop), true
	}
	if m := resubmitRE.FindStringSubmatch(a); m != nil {
		t, err := strconv.Atoi(m[1])
		if err != nil || t > 254 {
			return nil, false
		}
		return ofp.ResubmitTable(uint8(t)), true
	}
	return nil, false
}

func parseSubfield(s string) (f ofp.Field, ofs, n int, ok bool) {
	m := subfieldRE.FindStringSubmatch(s)
	if m == nil {
		return f, 0, 0, false
	}
	nf, ok := nestedFields[m[1]]
	if !ok {
		return f, 0, 0, false
	}
	f = ofp.Field{Class: nf.class, Field: nf.field, Value: make([]byte, nf.bytes)}
	width := nf.bytes * 8
	ofs, end := 0, width-1
	if m[2] != "" {
		ofs, _ = strconv.Atoi(m[2])
		end = ofs
		if m[3] != "" {
			end, _ = strconv.Atoi(m[3])
		}
	}
	if ofs > end || end >= width {
		return f, 0, 0, false
	}
	return f, ofs, end - ofs + 1, true
}

func parseValue(nf nestedField, s string) ([]byte, bool) {
	switch nf.kind {
	case 'm':
		if mac, err := net.ParseMAC(s); err == nil && len(mac) == 6 {
			return mac, true
		}
	case '4', '6':
		if a, err := netip.ParseAddr(s); err == nil && (a.Is4() == (nf.kind == '4')) && !a.Is4In6() {
			return a.AsSlice(), true
		}
	}
	// Integers (decimal or 0x hex) for any field.
	n, ok := new(big.Int).SetString(s, 0)
	if !ok || n.Sign() < 0 || n.BitLen() > nf.bytes*8 {
		return nil, false
	}
	return n.FillBytes(make([]byte, nf.bytes)), true
}

// PacketOutActions returns the binary actions of a generated packet's
// packet-out: metadata and the registers of the packet-in restored, then
// the nested actions; ok is false when the nested actions need ovs-ofctl.
func PacketOutActions(p *ofp.PacketIn, nested string) ([]ofp.Action, bool) {
	acts, ok := EncodeNested(nested)
	if !ok {
		return nil, false
	}
	var pre []ofp.Action
	if md, ok := p.MetadataField(); ok && md != 0 {
		pre = append(pre, ofp.SetField(ofp.Metadata(md)))
	}
	for n := 0; n < 16; n++ {
		if v, ok := p.Reg(n); ok && v != 0 {
			pre = append(pre, ofp.SetField(ofp.Reg(n, v)))
		}
	}
	return append(pre, acts...), true
}

// inPortOf returns the packet-in's in_port (OFPP_CONTROLLER if absent).
func inPortOf(p *ofp.PacketIn) uint32 {
	if in, ok := p.InPort(); ok {
		return in
	}
	return ofp.PortController
}
