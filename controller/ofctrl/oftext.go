package ofctrl

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/of"
)

// This file parses the text that package lflow/of prints (of.Match.String,
// of.ActionsString, of.Group.String) back into typed values, so flows
// carried as text can be encoded as binary OpenFlow without ovs-ofctl. It
// accepts exactly that printer's syntax, which is a subset of ovs-ofctl's:
// anything else is an error naming the offending part. ParseMatch(m).String()
// == m and of.ActionsString(ParseActions(a)) == a for every printed text.

// ParseMatch parses a match printed by of.Match.String, e.g.
// "tcp,reg15=0x3,metadata=0x1,ip_src=10.0.0.0/8,tcp_dst=80".
func ParseMatch(s string) (of.Match, error) {
	var m of.Match
	if s == "" {
		return m, nil
	}
	for _, item := range strings.Split(s, ",") {
		name, val, hasVal := strings.Cut(item, "=")
		if !hasVal {
			et, proto, ok := shorthand(name)
			if !ok {
				return m, fmt.Errorf("match %q: unknown keyword %q", s, name)
			}
			m.Set(of.EthType, bits.From64(et), bits.Ones(16))
			if proto != 0 {
				m.Set(of.IPProto, bits.From64(proto), bits.Ones(8))
			}
			continue
		}
		f, ok := of.FieldByName(name)
		if !ok {
			return m, fmt.Errorf("match %q: unknown field %q", s, name)
		}
		v, mask, err := parseMasked(f, val)
		if err != nil {
			return m, fmt.Errorf("match %q: %s: %w", s, name, err)
		}
		if !m.Set(f, v, mask) {
			return m, fmt.Errorf("match %q: %s=%s contradicts an earlier constraint", s, name, val)
		}
	}
	return m, nil
}

func shorthand(kw string) (ethType, proto uint64, ok bool) {
	switch kw {
	case "ip":
		return 0x0800, 0, true
	case "tcp":
		return 0x0800, 6, true
	case "udp":
		return 0x0800, 17, true
	case "sctp":
		return 0x0800, 132, true
	case "icmp":
		return 0x0800, 1, true
	case "ipv6":
		return 0x86dd, 0, true
	case "tcp6":
		return 0x86dd, 6, true
	case "udp6":
		return 0x86dd, 17, true
	case "sctp6":
		return 0x86dd, 132, true
	case "icmp6":
		return 0x86dd, 58, true
	case "arp":
		return 0x0806, 0, true
	case "rarp":
		return 0x8035, 0, true
	}
	return 0, 0, false
}

// parseMasked parses "value" or "value/mask" in f's format (FormatMasked's
// output).
func parseMasked(f of.Field, s string) (v, mask bits.U128, err error) {
	full := bits.Ones(f.Width())
	switch f.Format() {
	case of.FormatCTState:
		if strings.HasPrefix(s, "0x") {
			break
		}
		return parseCTState(s)
	case of.FormatFrag:
		return parseFrag(s)
	}
	vs, ms, masked := strings.Cut(s, "/")
	if v, err = parseValue(f.Format(), vs); err != nil {
		return v, mask, err
	}
	if !masked {
		return v, full, nil
	}
	switch f.Format() {
	case of.FormatIPv4, of.FormatIPv6:
		if n, err := strconv.Atoi(ms); err == nil {
			w := f.Width()
			if n < 0 || n > w {
				return v, mask, fmt.Errorf("prefix length %d out of range 0..%d", n, w)
			}
			return v, full.AndNot(bits.Ones(w - n)), nil
		}
	}
	if mask, err = parseValue(f.Format(), ms); err != nil {
		return v, mask, fmt.Errorf("mask: %w", err)
	}
	if f.Format() == of.FormatDecimal {
		// Masked decimal fields print as hex/hex.
		if mask, err = parseHex(ms); err != nil {
			return v, mask, fmt.Errorf("mask: %w", err)
		}
	}
	return v, mask, nil
}

// parseValue parses one value in format f (FormatValue's output; hex
// values start with 0x and are accepted in every numeric format).
func parseValue(f of.Format, s string) (bits.U128, error) {
	if strings.HasPrefix(s, "0x") {
		return parseHex(s)
	}
	switch f {
	case of.FormatDecimal:
		return parseDecimal(s)
	case of.FormatMAC:
		return parseMAC(s)
	case of.FormatIPv4:
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return bits.Zero, fmt.Errorf("%q is not an IPv4 address", s)
		}
		b := a.As4()
		return bits.From64(uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])), nil
	case of.FormatIPv6:
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is6() {
			return bits.Zero, fmt.Errorf("%q is not an IPv6 address", s)
		}
		b := a.As16()
		return bits.FromBytes(b[:]), nil
	}
	return bits.Zero, fmt.Errorf("%q: want a 0x-prefixed hex value", s)
}

func parseHex(s string) (bits.U128, error) {
	h, ok := strings.CutPrefix(s, "0x")
	if !ok || h == "" || len(h) > 32 {
		return bits.Zero, fmt.Errorf("%q is not a hex value of at most 128 bits", s)
	}
	var v bits.U128
	for _, c := range h {
		var d uint64
		switch {
		case c >= '0' && c <= '9':
			d = uint64(c - '0')
		case c >= 'a' && c <= 'f':
			d = uint64(c-'a') + 10
		case c >= 'A' && c <= 'F':
			d = uint64(c-'A') + 10
		default:
			return bits.Zero, fmt.Errorf("%q is not a hex value", s)
		}
		v = v.Lsh(4).Or(bits.From64(d))
	}
	return v, nil
}

func parseDecimal(s string) (bits.U128, error) {
	if s == "" {
		return bits.Zero, fmt.Errorf("empty number")
	}
	var v bits.U128
	for _, c := range s {
		if c < '0' || c > '9' {
			return bits.Zero, fmt.Errorf("%q is not a decimal number", s)
		}
		// v = v*10 + d, with 128-bit arithmetic: v*10 = v<<3 + v<<1.
		if v.BitLen() > 124 {
			return bits.Zero, fmt.Errorf("%q exceeds 128 bits", s)
		}
		v = v.Lsh(3).Add(v.Lsh(1)).Add(bits.From64(uint64(c - '0')))
	}
	return v, nil
}

func parseMAC(s string) (bits.U128, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return bits.Zero, fmt.Errorf("%q is not a MAC address", s)
	}
	var x uint64
	for _, p := range parts {
		b, err := strconv.ParseUint(p, 16, 8)
		if err != nil || len(p) != 2 {
			return bits.Zero, fmt.Errorf("%q is not a MAC address", s)
		}
		x = x<<8 | b
	}
	return bits.From64(x), nil
}

var ctStateBits = map[string]uint64{"new": of.CSNew, "est": of.CSEst, "rel": of.CSRel, "rpl": of.CSRpl,
	"inv": of.CSInv, "trk": of.CSTrk, "snat": of.CSSNAT, "dnat": of.CSDNAT}

// parseCTState parses "+trk-new+est" (hex/hex is handled by the caller).
func parseCTState(s string) (v, mask bits.U128, err error) {
	if s == "" {
		return v, mask, fmt.Errorf("empty ct_state")
	}
	for s != "" {
		on := s[0] == '+'
		if s[0] != '+' && s[0] != '-' {
			return v, mask, fmt.Errorf("ct_state %q: want +flag or -flag", s)
		}
		s = s[1:]
		i := strings.IndexAny(s, "+-")
		if i < 0 {
			i = len(s)
		}
		b, ok := ctStateBits[s[:i]]
		if !ok {
			return v, mask, fmt.Errorf("unknown ct_state flag %q", s[:i])
		}
		mask = mask.Or(bits.From64(b))
		if on {
			v = v.Or(bits.From64(b))
		}
		s = s[i:]
	}
	return v, mask, nil
}

func parseFrag(s string) (v, mask bits.U128, err error) {
	switch s {
	case "no":
		return bits.From64(0), bits.From64(3), nil
	case "yes":
		return bits.From64(1), bits.From64(1), nil
	case "first":
		return bits.From64(1), bits.From64(3), nil
	case "later":
		return bits.From64(3), bits.From64(3), nil
	case "not_later":
		return bits.From64(0), bits.From64(2), nil
	}
	return v, mask, fmt.Errorf("nw_frag %q: want no, yes, first, later or not_later", s)
}

// splitTop splits s at commas outside parentheses and brackets.
func splitTop(s string) ([]string, error) {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(', '[':
			depth++
		case ')', ']':
			depth--
			if depth < 0 {
				return nil, fmt.Errorf("%q: unbalanced %q at offset %d", s, s[i], i)
			}
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("%q: unbalanced parentheses", s)
	}
	return append(out, s[start:]), nil
}

// ParseActions parses an action list printed by of.ActionsString, e.g.
// "set_field:0x1->reg13,ct(table=9,zone=reg13[0..15]),resubmit(,9)";
// "drop" or "" is the empty list.
func ParseActions(s string) (of.Actions, error) {
	if s == "" || s == "drop" {
		return nil, nil
	}
	items, err := splitTop(s)
	if err != nil {
		return nil, err
	}
	out := make(of.Actions, 0, len(items))
	for _, it := range items {
		a, err := parseAction(it)
		if err != nil {
			return nil, fmt.Errorf("action %q: %w", it, err)
		}
		if a != nil {
			out = append(out, a)
		}
	}
	return out, nil
}

// parenArg returns the text inside "name(...)" if s has that form.
func parenArg(s, name string) (string, bool) {
	if !strings.HasPrefix(s, name+"(") || !strings.HasSuffix(s, ")") {
		return "", false
	}
	return s[len(name)+1 : len(s)-1], true
}

func parseAction(s string) (of.Action, error) {
	switch s {
	case "dec_ttl":
		return of.DecTTL{}, nil
	case "ct_clear":
		return of.CTClear{}, nil
	case "exit":
		return of.Exit{}, nil
	case "drop":
		return of.Drop{}, nil
	case "pop_vlan":
		return of.PopVLAN{}, nil
	case "controller":
		return of.Controller{}, nil
	}
	if arg, ok := parenArg(s, "resubmit"); ok {
		p, t, found := strings.Cut(arg, ",")
		if !found {
			return nil, fmt.Errorf("want resubmit(PORT,TABLE)")
		}
		var a of.Resubmit
		switch p {
		case "":
		case "in_port":
			a.InPort = of.PortInPort
		default:
			n, err := strconv.ParseUint(p, 10, 32)
			if err != nil || n == 0 {
				return nil, fmt.Errorf("bad port %q", p)
			}
			a.InPort = uint32(n)
		}
		n, err := strconv.ParseUint(t, 10, 8)
		if err != nil || n == 255 {
			return nil, fmt.Errorf("bad table %q", t)
		}
		a.Table = int(n)
		return a, nil
	}
	if rest, ok := strings.CutPrefix(s, "output:"); ok {
		if strings.Contains(rest, "[") {
			sf, err := ParseSubfield(rest)
			if err != nil {
				return nil, err
			}
			return of.OutputReg{Src: sf}, nil
		}
		p, err := parsePort(rest)
		return of.Output{Port: p}, err
	}
	if arg, ok := parenArg(s, "output"); ok {
		var a of.Output
		for _, kv := range strings.Split(arg, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "port":
				p, err := parsePort(v)
				if err != nil {
					return nil, err
				}
				a.Port = p
			case "max_len":
				n, err := strconv.Atoi(v)
				if err != nil || n <= 0 {
					return nil, fmt.Errorf("bad max_len %q", v)
				}
				a.MaxLen = n
			default:
				return nil, fmt.Errorf("unknown output argument %q", kv)
			}
		}
		return a, nil
	}
	if rest, ok := strings.CutPrefix(s, "set_field:"); ok {
		val, dst, found := strings.Cut(rest, "->")
		if !found {
			return nil, fmt.Errorf("want set_field:VALUE->FIELD")
		}
		f, ok := of.FieldByName(dst)
		if !ok {
			return nil, fmt.Errorf("unknown field %q", dst)
		}
		vs, ms, masked := strings.Cut(val, "/")
		v, err := parseValue(f.Format(), vs)
		if err != nil {
			return nil, err
		}
		sf := of.Whole(f)
		if masked {
			m, err := parseValue(f.Format(), ms)
			if err != nil {
				return nil, fmt.Errorf("mask: %w", err)
			}
			// The printer only masks contiguous subfields.
			lo := m.TrailingZeros()
			n := m.BitLen() - lo
			if m.IsZero() || m != bits.Range(lo, lo+n-1) {
				return nil, fmt.Errorf("mask %s is not one contiguous run of bits", ms)
			}
			sf = of.Sub(f, lo, n)
			v = v.And(m).Rsh(uint(lo))
		}
		return of.SetField{Dst: sf, Value: v}, nil
	}
	if rest, ok := strings.CutPrefix(s, "move:"); ok {
		src, dst, found := strings.Cut(rest, "->")
		if !found {
			return nil, fmt.Errorf("want move:SRC->DST")
		}
		a, err := ParseSubfield(src)
		if err != nil {
			return nil, err
		}
		b, err := ParseSubfield(dst)
		if err != nil {
			return nil, err
		}
		if a.Bits() != b.Bits() {
			return nil, fmt.Errorf("source has %d bits, destination %d", a.Bits(), b.Bits())
		}
		return of.Move{Src: a, Dst: b}, nil
	}
	if rest, ok := strings.CutPrefix(s, "push:"); ok {
		sf, err := ParseSubfield(rest)
		return of.Push{Sub: sf}, err
	}
	if rest, ok := strings.CutPrefix(s, "pop:"); ok {
		sf, err := ParseSubfield(rest)
		return of.Pop{Sub: sf}, err
	}
	if arg, ok := parenArg(s, "conjunction"); ok {
		id, kn, found := strings.Cut(arg, ",")
		k, n, found2 := strings.Cut(kn, "/")
		if !found || !found2 {
			return nil, fmt.Errorf("want conjunction(ID,K/N)")
		}
		iv, err1 := strconv.ParseUint(id, 10, 32)
		kv, err2 := strconv.ParseUint(k, 10, 8)
		nv, err3 := strconv.ParseUint(n, 10, 8)
		if err1 != nil || err2 != nil || err3 != nil || kv < 1 || kv > nv || nv < 2 || nv > 64 {
			return nil, fmt.Errorf("bad conjunction(%s)", arg)
		}
		return of.Conjunction{ID: uint32(iv), K: uint8(kv), N: uint8(nv)}, nil
	}
	if arg, ok := parenArg(s, "ct"); ok {
		return parseCT(arg)
	}
	if arg, ok := parenArg(s, "controller"); ok {
		return parseController(arg)
	}
	if rest, ok := strings.CutPrefix(s, "check_pkt_larger("); ok {
		n, dst, found := strings.Cut(rest, ")->")
		if !found {
			return nil, fmt.Errorf("want check_pkt_larger(LEN)->DST")
		}
		l, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("bad length %q", n)
		}
		sf, err := ParseSubfield(dst)
		if err != nil {
			return nil, err
		}
		if sf.Bits() != 1 {
			return nil, fmt.Errorf("destination %s is not one bit", dst)
		}
		return of.CheckPktLarger{Len: int(l), Dst: sf}, nil
	}
	if arg, ok := parenArg(s, "learn"); ok {
		return parseLearn(arg)
	}
	if arg, ok := parenArg(s, "clone"); ok {
		inner, err := ParseActions(arg)
		if err != nil {
			return nil, err
		}
		return of.Clone{Actions: inner}, nil
	}
	if rest, ok := strings.CutPrefix(s, "group:"); ok {
		n, err := strconv.ParseUint(rest, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("bad group id %q", rest)
		}
		return of.GroupAction{ID: uint32(n)}, nil
	}
	if rest, ok := strings.CutPrefix(s, "push_vlan:"); ok {
		v, err := parseHex(rest)
		if err != nil || !v.FitsIn(16) {
			return nil, fmt.Errorf("bad ethertype %q", rest)
		}
		return of.PushVLAN{EthType: uint16(v.Lo)}, nil
	}
	if rest, ok := strings.CutPrefix(s, "note:"); ok {
		b, err := parseDotted(rest)
		return of.Note{Data: b}, err
	}
	return nil, fmt.Errorf("unknown action")
}

func parsePort(s string) (uint32, error) {
	switch s {
	case "in_port":
		return of.PortInPort, nil
	case "LOCAL":
		return of.PortLocal, nil
	case "CONTROLLER":
		return of.PortController, nil
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint32(n), nil
}

// ParseSubfield parses "reg0[]", "reg0[5]" or "reg0[0..15]".
func ParseSubfield(s string) (of.Subfield, error) {
	name, r, ok := strings.Cut(s, "[")
	if !ok || !strings.HasSuffix(r, "]") {
		return of.Subfield{}, fmt.Errorf("subfield %q: want FIELD[], FIELD[N] or FIELD[A..B]", s)
	}
	f, ok := of.FieldByName(name)
	if !ok {
		return of.Subfield{}, fmt.Errorf("subfield %q: unknown field %q", s, name)
	}
	r = r[:len(r)-1]
	if r == "" {
		return of.Whole(f), nil
	}
	a, b, isRange := strings.Cut(r, "..")
	lo, err := strconv.Atoi(a)
	hi := lo
	if err == nil && isRange {
		hi, err = strconv.Atoi(b)
	}
	if err != nil || lo < 0 || hi < lo || hi >= f.Width() {
		return of.Subfield{}, fmt.Errorf("subfield %q: bad bit range for a %d-bit field", s, f.Width())
	}
	return of.Sub(f, lo, hi-lo+1), nil
}

func parseDotted(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, ".", ""))
	if err != nil {
		return nil, fmt.Errorf("bad hex bytes %q", s)
	}
	return b, nil
}

func parseCT(arg string) (of.Action, error) {
	a := of.CT{Table: -1}
	items, err := splitTop(arg)
	if err != nil {
		return nil, err
	}
	for _, it := range items {
		k, v, hasV := strings.Cut(it, "=")
		switch {
		case it == "commit":
			a.Commit = true
		case it == "force":
			a.Force = true
		case it == "nat":
			a.NAT = &of.NAT{}
		case strings.HasPrefix(it, "nat("):
			n, err := parseNAT(it)
			if err != nil {
				return nil, err
			}
			a.NAT = n
		case strings.HasPrefix(it, "exec("):
			inner, err := ParseActions(it[len("exec(") : len(it)-1])
			if err != nil {
				return nil, fmt.Errorf("exec: %w", err)
			}
			a.Exec = inner
		case hasV && k == "table":
			n, err := strconv.ParseUint(v, 10, 8)
			if err != nil || n == 255 {
				return nil, fmt.Errorf("bad ct table %q", v)
			}
			a.Table = int(n)
		case hasV && k == "zone":
			if strings.Contains(v, "[") {
				sf, err := ParseSubfield(v)
				if err != nil {
					return nil, err
				}
				a.Zone = sf
			} else {
				n, err := strconv.ParseUint(v, 10, 16)
				if err != nil {
					return nil, fmt.Errorf("bad zone %q", v)
				}
				a.ZoneImm = uint16(n)
			}
		case hasV && k == "alg":
			if v != "ftp" && v != "tftp" {
				return nil, fmt.Errorf("unknown alg %q", v)
			}
			a.Alg = v
		default:
			return nil, fmt.Errorf("unknown ct argument %q", it)
		}
	}
	return a, nil
}

func parseNAT(s string) (*of.NAT, error) {
	arg, ok := parenArg(s, "nat")
	if !ok {
		return nil, fmt.Errorf("bad %q", s)
	}
	n := &of.NAT{}
	items := strings.Split(arg, ",")
	kind, rng, found := strings.Cut(items[0], "=")
	if !found || (kind != "src" && kind != "dst") {
		return nil, fmt.Errorf("nat %q: want src= or dst=", arg)
	}
	n.Src = kind == "src"
	// Address part: A, A-B, [A6], [A6]-[B6]; then optional :P or :P-Q.
	addrs, ports := rng, ""
	if strings.HasPrefix(rng, "[") {
		i := strings.LastIndex(rng, "]")
		if c := strings.Index(rng[i:], ":"); c >= 0 {
			addrs, ports = rng[:i+c], rng[i+c+1:]
		}
	} else if c := strings.Index(rng, ":"); c >= 0 {
		addrs, ports = rng[:c], rng[c+1:]
	}
	a, b, isRange := strings.Cut(addrs, "-")
	var err error
	if n.Addr, err = netip.ParseAddr(strings.Trim(a, "[]")); err != nil {
		return nil, fmt.Errorf("nat address %q: %v", a, err)
	}
	if isRange {
		if n.AddrMax, err = netip.ParseAddr(strings.Trim(b, "[]")); err != nil {
			return nil, fmt.Errorf("nat address %q: %v", b, err)
		}
	}
	if ports != "" {
		p, q, isRange := strings.Cut(ports, "-")
		pv, err := strconv.ParseUint(p, 10, 16)
		if err != nil || pv == 0 {
			return nil, fmt.Errorf("nat port %q", p)
		}
		n.Port = uint16(pv)
		if isRange {
			qv, err := strconv.ParseUint(q, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("nat port %q", q)
			}
			n.PortMax = uint16(qv)
		}
	}
	for _, fl := range items[1:] {
		switch fl {
		case "random":
			n.Random = true
		case "persistent":
			n.Persistent = true
		case "hash":
			n.Hash = true
		default:
			return nil, fmt.Errorf("unknown nat flag %q", fl)
		}
	}
	return n, nil
}

func parseController(arg string) (of.Action, error) {
	var a of.Controller
	for _, kv := range strings.Split(arg, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "max_len":
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return nil, fmt.Errorf("bad max_len %q", v)
			}
			a.MaxLen = int(n)
		case "reason":
			if _, ok := ControllerReasons[v]; !ok {
				return nil, fmt.Errorf("unknown controller reason %q", v)
			}
			a.Reason = v
		case "userdata":
			b, err := parseDotted(v)
			if err != nil {
				return nil, err
			}
			a.UserData = b
		case "pause":
			a.Pause = true
		case "meter_id":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("bad meter_id %q", v)
			}
			a.MeterID = uint32(n)
		default:
			return nil, fmt.Errorf("unknown controller argument %q", kv)
		}
	}
	return a, nil
}

// ControllerReasons maps controller(reason=...) names to OpenFlow packet-in
// reason codes.
var ControllerReasons = map[string]uint8{"no_match": 0, "action": 1, "invalid_ttl": 2,
	"action_set": 3, "group": 4, "packet_out": 5}

// ParseGroup parses a group printed by of.Group.String without its
// "group_id=N," prefix (Group.Spec), e.g.
// "type=select,selection_method=dp_hash,bucket=bucket_id=0,weight:100,actions=ct(...)".
func ParseGroup(id uint32, spec string) (of.Group, error) {
	g := of.Group{ID: id}
	rest := spec
	bucketAt := strings.Index(rest, ",bucket=")
	head := rest
	if bucketAt >= 0 {
		head, rest = rest[:bucketAt], rest[bucketAt+1:]
	} else {
		rest = ""
	}
	items, err := splitTop(head)
	if err != nil {
		return g, err
	}
	for _, it := range items {
		k, v, _ := strings.Cut(it, "=")
		switch {
		case k == "type":
			g.Type = v
		case k == "selection_method":
			g.SelectionMethod = v
		case strings.HasPrefix(it, "fields(") && strings.HasSuffix(it, ")"):
			g.Fields = strings.Split(it[len("fields("):len(it)-1], ",")
		default:
			return g, fmt.Errorf("group %d %q: unknown item %q", id, spec, it)
		}
	}
	switch g.Type {
	case "all", "select", "indirect", "ff", "fast_failover":
	default:
		return g, fmt.Errorf("group %d %q: unknown type %q", id, spec, g.Type)
	}
	// Buckets: "bucket=bucket_id=N[,weight:W],actions=A" each; actions run
	// to the next ",bucket=" (actions never contain that text).
	for rest != "" {
		b, ok := strings.CutPrefix(rest, "bucket=")
		if !ok {
			return g, fmt.Errorf("group %d %q: want bucket= at %q", id, spec, rest)
		}
		next := strings.Index(b, ",bucket=")
		if next >= 0 {
			b, rest = b[:next], b[next+1:]
		} else {
			rest = ""
		}
		var bk of.Bucket
		head, acts, found := strings.Cut(b, "actions=")
		if !found {
			return g, fmt.Errorf("group %d: bucket %q has no actions", id, b)
		}
		for _, it := range strings.Split(strings.TrimSuffix(head, ","), ",") {
			switch {
			case strings.HasPrefix(it, "bucket_id="):
				n, err := strconv.ParseUint(it[len("bucket_id="):], 10, 32)
				if err != nil {
					return g, fmt.Errorf("group %d: bad %q", id, it)
				}
				bk.ID = uint32(n)
			case strings.HasPrefix(it, "weight:"):
				n, err := strconv.ParseUint(it[len("weight:"):], 10, 16)
				if err != nil {
					return g, fmt.Errorf("group %d: bad %q", id, it)
				}
				bk.Weight = int(n)
			default:
				return g, fmt.Errorf("group %d: unknown bucket item %q", id, it)
			}
		}
		if bk.Actions, err = ParseActions(acts); err != nil {
			return g, fmt.Errorf("group %d bucket %d: %w", id, bk.ID, err)
		}
		g.Buckets = append(g.Buckets, bk)
	}
	return g, nil
}

// parseLearn parses the inside of "learn(...)" as of.Learn prints it.
func parseLearn(arg string) (of.Action, error) {
	items, err := splitTop(arg)
	if err != nil {
		return nil, err
	}
	a := of.Learn{Priority: of.DefaultPriority}
	table := false
	for _, it := range items {
		k, v, hasEq := strings.Cut(it, "=")
		num := func(max uint64) (int, error) {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n > max {
				return 0, fmt.Errorf("learn: bad %s %q (0..%d)", k, v, max)
			}
			return int(n), nil
		}
		switch {
		case it == "send_flow_rem":
			a.SendFlowRem = true
		case it == "delete_learned":
			a.DeleteLearned = true
		case hasEq && k == "table":
			if a.Table, err = num(254); err != nil {
				return nil, err
			}
			table = true
		case hasEq && k == "idle_timeout":
			a.IdleTimeout, err = num(0xffff)
		case hasEq && k == "hard_timeout":
			a.HardTimeout, err = num(0xffff)
		case hasEq && k == "fin_idle_timeout":
			a.FinIdleTimeout, err = num(0xffff)
		case hasEq && k == "fin_hard_timeout":
			a.FinHardTimeout, err = num(0xffff)
		case hasEq && k == "priority":
			a.Priority, err = num(0xffff)
		case hasEq && k == "cookie":
			var c bits.U128
			if c, err = parseHex(v); err == nil && !c.FitsIn(64) {
				err = fmt.Errorf("learn: cookie %s exceeds 64 bits", v)
			}
			a.Cookie = c.Lo
		default:
			var sp of.LearnSpec
			if sp, err = parseLearnSpec(it); err != nil {
				return nil, fmt.Errorf("learn spec %q: %w", it, err)
			}
			a.Specs = append(a.Specs, sp)
		}
		if err != nil {
			return nil, err
		}
	}
	if !table {
		return nil, fmt.Errorf("learn: no table=")
	}
	return a, nil
}

// learnDst parses a learn destination: FIELD[...] or a bare field name
// (the whole field).
func learnDst(s string) (of.Subfield, error) {
	if !strings.Contains(s, "[") {
		f, ok := of.FieldByName(s)
		if !ok {
			return of.Subfield{}, fmt.Errorf("unknown field %q", s)
		}
		return of.Whole(f), nil
	}
	return ParseSubfield(s)
}

func parseLearnSpec(s string) (of.LearnSpec, error) {
	if rest, ok := strings.CutPrefix(s, "load:"); ok {
		src, dst, found := strings.Cut(rest, "->")
		if !found {
			return of.LearnSpec{}, fmt.Errorf("want load:SRC->DST")
		}
		d, err := ParseSubfield(dst)
		if err != nil {
			return of.LearnSpec{}, err
		}
		sp := of.LearnSpec{Kind: of.LearnLoad, Dst: d}
		if strings.HasPrefix(src, "0x") {
			if sp.Value, err = parseHex(src); err == nil && !sp.Value.FitsIn(d.Bits()) {
				err = fmt.Errorf("value %s does not fit in %d bits", src, d.Bits())
			}
			return sp, err
		}
		if sp.Src, err = ParseSubfield(src); err == nil && sp.Src.Bits() != d.Bits() {
			err = fmt.Errorf("source has %d bits, destination %d", sp.Src.Bits(), d.Bits())
		}
		return sp, err
	}
	if rest, ok := strings.CutPrefix(s, "output:"); ok {
		src, err := ParseSubfield(rest)
		return of.LearnSpec{Kind: of.LearnOutput, Src: src}, err
	}
	name, val, hasVal := strings.Cut(s, "=")
	d, err := learnDst(name)
	if err != nil {
		return of.LearnSpec{}, err
	}
	sp := of.LearnSpec{Kind: of.LearnMatch, Dst: d}
	switch {
	case !hasVal:
		sp.Src = d
	case strings.Contains(val, "["):
		if sp.Src, err = ParseSubfield(val); err == nil && sp.Src.Bits() != d.Bits() {
			err = fmt.Errorf("source has %d bits, destination %d", sp.Src.Bits(), d.Bits())
		}
	case d.Ofs == 0 && d.Bits() == d.Field.Width():
		sp.Value, err = parseValue(d.Field.Format(), val)
	default:
		if sp.Value, err = parseHex(val); err == nil && !sp.Value.FitsIn(d.Bits()) {
			err = fmt.Errorf("value %s does not fit in %d bits", val, d.Bits())
		}
	}
	if err == nil && sp.Src.Field == of.FieldNone && !sp.Value.FitsIn(d.Bits()) {
		err = fmt.Errorf("value %s does not fit in %d bits", val, d.Bits())
	}
	return sp, err
}
