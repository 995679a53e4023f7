package action

import (
	"net/netip"
	"strings"

	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
)

// Parsed is the result of parsing an action string.
type Parsed struct {
	Actions Actions
	// Prereqs are the prerequisite expressions of the fields and actions
	// used, in first-use order without duplicates. The caller ANDs each one
	// into the flow's match (e.g. `ip.ttl--` needs "ip", `ip4.src = ...`
	// needs "ip4").
	Prereqs []string
}

// String returns the canonical form of the actions.
func (p *Parsed) String() string { return p.Actions.String() }

// fieldInfo is what the parser needs to know about a logical field.
type fieldInfo struct {
	Sub       of.Subfield
	IsString  bool
	ReadOnly  bool
	Predicate bool     // a predicate (e.g. ip4), not a field: cannot be read or assigned
	Prereqs   []string // the symbol's (and its parents') prerequisite expressions
}

// resolver looks up logical field names. It returns a reason (without
// position) when the name is not a usable field.
type resolver interface {
	field(name string) (fieldInfo, string)
	// bits returns the OpenFlow bits of a (sub)field symbol such as
	// ct_mark.natted (ok false if the symbol table has none).
	bits(name string) (of.Subfield, bool)
}

// Parse limits: nesting depth of blocks and total number of actions, so
// hostile input cannot exhaust the stack or memory.
const (
	MaxDepth   = 16
	MaxActions = 10000
)

type parser struct {
	c       *lex.Cursor
	syms    resolver
	prereqs []string
	seen    map[string]bool
	count   int
	// inCTCommit allows assignments to ct_mark/ct_label, which are
	// read-only everywhere else.
	inCTCommit bool
}

func (p *parser) addPrereq(s string) {
	if s == "" || p.seen[s] {
		return
	}
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	p.seen[s] = true
	p.prereqs = append(p.prereqs, s)
}

func parseWith(src string, syms resolver) (*Parsed, error) {
	// The parser copies the tokens it keeps out of the cursor, so the
	// token buffer is reused across parses.
	c, err := lex.AcquireCursor(src)
	if err != nil {
		return nil, err
	}
	defer c.Release()
	p := &parser{c: c, syms: syms}
	as, err := p.actions(lex.EOF, 0)
	if err != nil {
		return nil, err
	}
	return &Parsed{Actions: as, Prereqs: p.prereqs}, nil
}

// actions parses actions up to (not including) the token kind end (EOF or
// RBrace). A lone `drop;` yields an empty list.
func (p *parser) actions(end lex.Kind, depth int) (Actions, error) {
	var as Actions
	var drop *lex.Token
	for !p.c.Is(end) {
		if p.c.Is(lex.EOF) {
			return nil, p.c.Unexpected("`}`")
		}
		p.count++
		if p.count > MaxActions {
			return nil, p.c.Errorf("too many actions (more than %d)", MaxActions)
		}
		if p.c.IsIdent("drop") && p.c.PeekN(1).Kind == lex.Semicolon {
			t := p.c.Next()
			p.c.Next()
			if drop == nil {
				drop = &t
			}
			continue
		}
		a, err := p.action(depth)
		if err != nil {
			return nil, err
		}
		as = append(as, a)
	}
	if drop != nil && len(as) > 0 {
		return nil, lex.Errorf(drop.Pos, "`drop;` must be the only action")
	}
	return as, nil
}

func (p *parser) expectSemi() error {
	_, err := p.c.Expect(lex.Semicolon)
	return err
}

var nestedNames = map[string]bool{
	"clone": true, "arp": true, "icmp4": true, "icmp4_error": true, "icmp6": true,
	"icmp6_error": true, "reject": true, "nd_na": true, "nd_ns": true, "tcp_reset": true,
}

// nestedPrereq is the prerequisite of the original packet for each block
// action (the nested actions run on a packet the block builds, so their own
// prerequisites are not the original packet's, except for clone).
var nestedPrereq = map[string]string{
	"arp": "ip4", "icmp4": "ip4", "icmp4_error": "ip4", "icmp6": "ip6", "icmp6_error": "ip6",
	"nd_na": "nd_ns", "nd_ns": "ip6", "tcp_reset": "tcp",
}

func (p *parser) action(depth int) (Action, error) {
	t := p.c.Peek()
	if t.Kind != lex.Ident {
		return nil, p.c.Unexpected("an action")
	}
	next := p.c.PeekN(1).Kind
	if next == lex.Assign || next == lex.Exchange || next == lex.Decrement || next == lex.LBracket {
		return p.assignment()
	}
	at := pos{t.Pos}
	name := t.Str
	switch {
	case name == "next":
		return p.next(at)
	case name == "output":
		p.c.Next()
		return &Output{at}, p.expectSemi()
	case name == "drop":
		p.c.Next()
		return nil, lex.Errorf(t.Pos, "`drop;` must be the only action")
	case name == "ct_next":
		p.c.Next()
		p.addPrereq("ip")
		return &CTNext{at}, p.expectSemi()
	case name == "ct_clear":
		p.c.Next()
		return &CTClear{at}, p.expectSemi()
	case name == "ct_commit":
		return p.ctCommit(at)
	case name == "ct_dnat" || name == "ct_snat" || name == "ct_dnat_in_czone" || name == "ct_snat_in_czone" || name == "ct_commit_nat":
		return p.ctNat(at, name)
	case name == "ct_lb_mark" || name == "ct_lb":
		return p.ctLB(at, name)
	case nestedNames[name]:
		p.c.Next()
		if depth+1 > MaxDepth {
			return nil, lex.Errorf(t.Pos, "actions nested more than %d deep", MaxDepth)
		}
		if _, err := p.c.Expect(lex.LBrace); err != nil {
			return nil, err
		}
		outer := p.prereqs
		outerSeen := p.seen
		if name != "clone" {
			// The block's actions apply to a packet the block builds.
			p.prereqs, p.seen = nil, nil
		}
		as, err := p.actions(lex.RBrace, depth+1)
		if err != nil {
			return nil, err
		}
		if name != "clone" {
			p.prereqs, p.seen = outer, outerSeen
			p.addPrereq(nestedPrereq[name])
		}
		p.c.Next() // '}'
		return &Nested{pos: at, Name: name, Actions: as}, p.expectSemi()
	case name == "get_arp" || name == "get_nd":
		return p.getMAC(at, name == "get_nd")
	case name == "put_arp" || name == "put_nd":
		return p.putMAC(at, name == "put_nd")
	case name == "log":
		return p.log(at)
	case name == "ct_snat_to_vip":
		p.c.Next()
		return &SNATToVIP{at}, p.expectSemi()
	case name == "put_fdb":
		return p.putFDB(at)
	case name == "commit_lb_aff":
		return p.commitLBAff(at)
	case name == "handle_svc_check":
		return p.svcCheck(at)
	}
	// A field followed by something else, or an unknown action.
	if _, reason := p.syms.field(name); reason == "" {
		p.c.Next()
		return nil, p.c.Unexpected("`=`, `<->` or `--` after field " + name)
	}
	return nil, lex.Errorf(t.Pos, "unknown action `%s`", name)
}

func (p *parser) next(at pos) (Action, error) {
	p.c.Next()
	a := &Next{pos: at, SamePipeline: true, Table: -1}
	if p.c.Accept(lex.LParen) {
		if p.c.Is(lex.Integer) {
			n, err := p.smallInt(254, "table number")
			if err != nil {
				return nil, err
			}
			a.Table = n
		} else {
			gotTable := false
			for {
				key := p.c.Peek()
				switch {
				case p.c.AcceptIdent("pipeline"):
					if _, err := p.c.Expect(lex.Assign); err != nil {
						return nil, err
					}
					switch {
					case p.c.AcceptIdent("ingress"):
						a.Pipeline = Ingress
					case p.c.AcceptIdent("egress"):
						a.Pipeline = Egress
					default:
						return nil, p.c.Unexpected("`ingress` or `egress`")
					}
					a.SamePipeline = false
				case p.c.AcceptIdent("table"):
					if _, err := p.c.Expect(lex.Assign); err != nil {
						return nil, err
					}
					n, err := p.smallInt(254, "table number")
					if err != nil {
						return nil, err
					}
					a.Table, gotTable = n, true
				default:
					return nil, lex.Errorf(key.Pos, "expecting `pipeline=` or `table=`, found %s", key.Describe())
				}
				if !p.c.Accept(lex.Comma) {
					break
				}
			}
			if !a.SamePipeline && !gotTable {
				a.Table = 0
			}
		}
		if _, err := p.c.Expect(lex.RParen); err != nil {
			return nil, err
		}
	}
	return a, p.expectSemi()
}

// smallInt parses an unmasked decimal or hex integer no larger than max.
func (p *parser) smallInt(max uint64, what string) (int, error) {
	t := p.c.Peek()
	if t.Kind != lex.Integer || (t.Format != lex.Decimal && t.Format != lex.Hex) {
		return 0, p.c.Unexpected("a " + what)
	}
	if t.Masked || t.Value.Hi != 0 || t.Value.Lo > max {
		return 0, lex.Errorf(t.Pos, "%s %s is out of range (0 to %d)", what, t.Text, max)
	}
	p.c.Next()
	return int(t.Value.Lo), nil
}

// field parses a field reference `name` or `name[i]` or `name[i..j]`.
func (p *parser) field() (Field, error) {
	t := p.c.Peek()
	if t.Kind != lex.Ident {
		return Field{}, p.c.Unexpected("a field name")
	}
	p.c.Next()
	info, reason := p.syms.field(t.Str)
	if reason != "" {
		return Field{}, lex.Errorf(t.Pos, "%s", reason)
	}
	if info.Predicate {
		return Field{}, lex.Errorf(t.Pos, "%s is a predicate, not a field: it cannot be read or assigned", t.Str)
	}
	f := Field{Pos: t.Pos, Name: t.Str, Sub: info.Sub, IsString: info.IsString, ReadOnly: info.ReadOnly}
	if p.c.Is(lex.LBracket) {
		lb := p.c.Next()
		if info.IsString {
			return Field{}, lex.Errorf(lb.Pos, "%s is a string field and cannot be subscripted", t.Str)
		}
		w := info.Sub.Bits()
		lo, err := p.bitIndex(t.Str, w)
		if err != nil {
			return Field{}, err
		}
		hi := lo
		if p.c.Accept(lex.Ellipsis) {
			hi, err = p.bitIndex(t.Str, w)
			if err != nil {
				return Field{}, err
			}
			if hi < lo {
				return Field{}, lex.Errorf(lb.Pos, "bit range %s[%d..%d] is empty (the start must not exceed the end)", t.Str, lo, hi)
			}
		}
		if _, err := p.c.Expect(lex.RBracket); err != nil {
			return Field{}, err
		}
		f.Ranged, f.Lo, f.Hi = true, lo, hi
		f.Sub = of.Subfield{Field: info.Sub.Field, Ofs: info.Sub.Ofs + lo, NBits: hi - lo + 1}
	}
	for _, pr := range info.Prereqs {
		p.addPrereq(pr)
	}
	return f, nil
}

// bitIndex parses a bit number within a w-bit field.
func (p *parser) bitIndex(name string, w int) (int, error) {
	t := p.c.Peek()
	if t.Kind != lex.Integer || (t.Format != lex.Decimal && t.Format != lex.Hex) || t.Masked {
		return 0, p.c.Unexpected("a bit number")
	}
	if t.Value.Hi != 0 || t.Value.Lo >= uint64(w) {
		return 0, lex.Errorf(t.Pos, "bit %s is outside the %d-bit field %s (bits 0 to %d)", t.Text, w, name, w-1)
	}
	p.c.Next()
	return int(t.Value.Lo), nil
}

func (p *parser) writable(f Field) error {
	if p.inCTCommit && (f.Sub.Field == of.CTMark || f.Sub.Field == of.CTLabel) {
		return nil
	}
	if f.ReadOnly {
		return lex.Errorf(f.Pos, "%s is read-only and cannot be modified", f.Name)
	}
	return nil
}

// assignment parses `f = v;`, `f = g;`, `f <-> g;` and `f--;`.
func (p *parser) assignment() (Action, error) {
	start := p.c.Peek().Pos
	at := pos{start}
	dst, err := p.field()
	if err != nil {
		return nil, err
	}
	op := p.c.Next()
	switch op.Kind {
	case lex.Decrement:
		if dst.Name != "ip.ttl" || dst.Ranged {
			return nil, lex.Errorf(op.Pos, "`--` only applies to ip.ttl")
		}
		if err := p.writable(dst); err != nil {
			return nil, err
		}
		return &DecTTL{pos: at, Field: dst}, p.expectSemi()
	case lex.Exchange:
		src, err := p.field()
		if err != nil {
			return nil, err
		}
		if err := p.writable(dst); err != nil {
			return nil, err
		}
		if err := p.writable(src); err != nil {
			return nil, err
		}
		if err := sameWidth(dst, src, op.Pos, "exchange"); err != nil {
			return nil, err
		}
		return &Exchange{pos: at, A: dst, B: src}, p.expectSemi()
	case lex.Assign:
	default:
		return nil, lex.Errorf(op.Pos, "expecting `=`, `<->` or `--`, found %s", op.Describe())
	}
	if err := p.writable(dst); err != nil {
		return nil, err
	}
	v := p.c.Peek()
	switch v.Kind {
	case lex.Ident:
		if p.c.PeekN(1).Kind == lex.LParen {
			switch v.Str {
			case "put_dhcp_opts", "put_dhcpv6_opts":
				return p.putDHCPOpts(at, dst)
			case "select":
				return p.selectAction(at, dst)
			case "put_nd_ra_opts":
				return p.putNDRAOpts(at, dst)
			case "dns_lookup":
				if dst.Width() != 1 || dst.IsString {
					return nil, lex.Errorf(dst.Pos, "the result of dns_lookup must go to a 1-bit field such as reg0[3], not %d-bit %s", dst.Width(), dst)
				}
				p.c.Next()
				p.c.Next()
				if _, err := p.c.Expect(lex.RParen); err != nil {
					return nil, err
				}
				p.addPrereq("udp")
				return &DNSLookup{pos: at, Dst: dst}, p.expectSemi()
			}
			if !isFunc(v.Str) {
				return nil, lex.Errorf(v.Pos, "unknown function `%s` (known: get_fdb, lookup_fdb, lookup_arp, lookup_arp_ip, lookup_nd, lookup_nd_ip, check_pkt_larger, chk_lb_hairpin, chk_lb_hairpin_reply, chk_lb_aff, put_dhcp_opts, put_dhcpv6_opts, put_nd_ra_opts, dns_lookup, select)", v.Str)
			}
			return p.call(at, dst)
		}
		src, err := p.field()
		if err != nil {
			return nil, err
		}
		if err := sameWidth(dst, src, op.Pos, "assign"); err != nil {
			return nil, err
		}
		return &Move{pos: at, Dst: dst, Src: src}, p.expectSemi()
	case lex.String:
		p.c.Next()
		if !dst.IsString {
			return nil, lex.Errorf(v.Pos, "cannot assign string %s to %s, which is not a port-name field", lex.Quote(v.Str), dst)
		}
		return &Load{pos: at, Dst: dst, Value: Value{Pos: v.Pos, IsString: true, Str: v.Str}}, p.expectSemi()
	case lex.Integer:
		p.c.Next()
		ld, err := intLoad(at, dst, v)
		if err != nil {
			return nil, err
		}
		return ld, p.expectSemi()
	}
	return nil, p.c.Unexpected("a constant, a string or a field")
}

// intLoad checks a constant assigned to dst. A masked constant
// (`reg0 = 10.0.0.0/8`, `reg0 = 0x5/0x5`) assigns only the bits under its
// mask.
func intLoad(at pos, dst Field, v lex.Token) (*Load, error) {
	if dst.IsString {
		return nil, lex.Errorf(v.Pos, "%s is a port-name field: assign a port name in quotes (e.g. %s = \"lsp1\")", dst, dst)
	}
	w := dst.Width()
	if !v.Value.FitsIn(w) {
		return nil, lex.Errorf(v.Pos, "value %s does not fit in the %d-bit field %s", v.Text, w, dst)
	}
	val := Value{Pos: v.Pos, Int: v.Value, Format: v.Format}
	if v.Masked {
		if v.Mask.IsZero() || !v.Mask.FitsIn(w) {
			return nil, lex.Errorf(v.Pos, "mask of %s must be nonzero and fit in the %d-bit field %s", v.Text, w, dst)
		}
		val.Masked, val.Mask = true, v.Mask
	}
	return &Load{pos: at, Dst: dst, Value: val}, nil
}

func sameWidth(dst, src Field, at lex.Pos, verb string) error {
	if dst.IsString != src.IsString {
		return lex.Errorf(at, "cannot %s %s and %s: only port-name fields mix with port-name fields", verb, dst, src)
	}
	if dst.Width() != src.Width() {
		return lex.Errorf(at, "cannot %s %d-bit %s and %d-bit %s: widths differ", verb, dst.Width(), dst, src.Width(), src)
	}
	return nil
}

func (p *parser) ctCommit(at pos) (Action, error) {
	p.c.Next()
	p.addPrereq("ip")
	a := &CTCommit{pos: at}
	if p.c.Accept(lex.LParen) {
		// Older syntax: ct_commit(ct_mark=V[/M], ct_label=V[/M]).
		a.Braces = true
		for !p.c.Accept(lex.RParen) {
			if len(a.Nested) > 0 {
				p.c.Accept(lex.Comma) // OVN accepts the settings with or without commas
			}
			t := p.c.Peek()
			if !p.c.IsIdent("ct_mark") && !p.c.IsIdent("ct_label") {
				return nil, p.c.Unexpected("`ct_mark=` or `ct_label=`")
			}
			p.inCTCommit = true
			dst, err := p.field()
			p.inCTCommit = false
			if err != nil {
				return nil, err
			}
			if _, err := p.c.Expect(lex.Assign); err != nil {
				return nil, err
			}
			v := p.c.Peek()
			if v.Kind != lex.Integer {
				return nil, p.c.Unexpected("a constant")
			}
			p.c.Next()
			ld, err := intLoad(pos{t.Pos}, dst, v)
			if err != nil {
				return nil, err
			}
			a.Nested = append(a.Nested, ld)
		}
		return a, p.expectSemi()
	}
	if p.c.Accept(lex.LBrace) {
		a.Braces = true
		for !p.c.Accept(lex.RBrace) {
			t := p.c.Peek()
			if t.Kind == lex.EOF {
				return nil, p.c.Unexpected("`}`")
			}
			if t.Kind != lex.Ident || (p.c.PeekN(1).Kind != lex.Assign && p.c.PeekN(1).Kind != lex.LBracket) {
				return nil, lex.Errorf(t.Pos, "ct_commit { } only accepts assignments to ct_mark and ct_label, found %s", t.Describe())
			}
			p.inCTCommit = true
			act, err := p.assignment()
			p.inCTCommit = false
			if err != nil {
				return nil, err
			}
			var dst Field
			switch x := act.(type) {
			case *Load:
				dst = x.Dst
			case *Move:
				dst = x.Dst
			default:
				return nil, lex.Errorf(t.Pos, "ct_commit { } only accepts assignments to ct_mark and ct_label")
			}
			if dst.Sub.Field != of.CTMark && dst.Sub.Field != of.CTLabel {
				return nil, lex.Errorf(dst.Pos, "ct_commit { } can only set ct_mark and ct_label, not %s", dst)
			}
			a.Nested = append(a.Nested, act)
		}
	}
	return a, p.expectSemi()
}

// address parses an IP address constant, optionally ":port" (IPv6 with a port
// is written [addr]:port).
func (p *parser) address(portOK bool) (netip.Addr, uint16, error) {
	bracket := p.c.Accept(lex.LBracket)
	t := p.c.Peek()
	if t.Kind != lex.Integer || (t.Format != lex.IPv4 && t.Format != lex.IPv6) {
		return netip.Addr{}, 0, p.c.Unexpected("an IPv4 or IPv6 address")
	}
	if t.Masked {
		return netip.Addr{}, 0, lex.Errorf(t.Pos, "expecting a single address, not the network %s", t.Text)
	}
	p.c.Next()
	var addr netip.Addr
	b := t.Value.Bytes()
	if t.Format == lex.IPv4 {
		addr = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	} else {
		addr = netip.AddrFrom16(b)
	}
	if bracket {
		if t.Format != lex.IPv6 {
			return addr, 0, lex.Errorf(t.Pos, "only IPv6 addresses are written in brackets")
		}
		if _, err := p.c.Expect(lex.RBracket); err != nil {
			return addr, 0, err
		}
	}
	var port uint16
	if p.c.Is(lex.Colon) {
		if !portOK {
			return addr, 0, p.c.Errorf("a port is not allowed here")
		}
		if t.Format == lex.IPv6 && !bracket {
			return addr, 0, p.c.Errorf("write an IPv6 address with a port as [%s]:port", lex.FormatValue(t.Value, lex.IPv6))
		}
		p.c.Next()
		pt := p.c.Peek()
		n, err := p.smallInt(65535, "port")
		if err != nil {
			return addr, 0, err
		}
		if n == 0 {
			return addr, 0, lex.Errorf(pt.Pos, "port 0 is not a valid port")
		}
		port = uint16(n)
	}
	return addr, port, nil
}

func (p *parser) ctNat(at pos, name string) (Action, error) {
	p.c.Next()
	p.addPrereq("ip")
	a := &CTNat{pos: at, Name: name, SNAT: strings.HasPrefix(name, "ct_snat")}
	if name != "ct_commit_nat" && p.c.Accept(lex.LParen) {
		addr, port, err := p.address(true)
		if err != nil {
			return nil, err
		}
		a.Addr, a.Port = addr, port
		if _, err := p.c.Expect(lex.RParen); err != nil {
			return nil, err
		}
		if addr.Is4() {
			p.addPrereq("ip4")
		} else {
			p.addPrereq("ip6")
		}
	}
	return a, p.expectSemi()
}

// hashFieldOK lists the OpenFlow fields a select group may hash on.
var hashFieldOK = map[string]bool{
	"eth_src": true, "eth_dst": true, "ip_src": true, "ip_dst": true, "ipv6_src": true, "ipv6_dst": true,
	"ip_proto": true, "tcp_src": true, "tcp_dst": true, "udp_src": true, "udp_dst": true,
	"sctp_src": true, "sctp_dst": true, "tp_src": true, "tp_dst": true,
}

func (p *parser) ctLB(at pos, name string) (Action, error) {
	p.c.Next()
	p.addPrereq("ip")
	a := &CTLB{pos: at, Name: name}
	// ct_lb_mark keeps its flags in ct_mark, ct_lb in ct_label.
	flagField := "ct_mark"
	if name == "ct_lb" {
		flagField = "ct_label"
	}
	if p.c.Accept(lex.LParen) {
		if p.c.AcceptIdent("backends") {
			if _, err := p.c.Expect(lex.Assign); err != nil {
				return nil, err
			}
		}
		var v4, v6 bool
		for {
			bt := p.c.Peek()
			addr, port, err := p.address(true)
			if err != nil {
				return nil, err
			}
			if addr.Is4() {
				v4 = true
			} else {
				v6 = true
			}
			if v4 && v6 {
				return nil, lex.Errorf(bt.Pos, "backends mix IPv4 and IPv6 addresses")
			}
			a.Backends = append(a.Backends, Backend{addr, port})
			if len(a.Backends) > 1000 {
				return nil, lex.Errorf(bt.Pos, "too many backends (more than 1000)")
			}
			if !p.c.Accept(lex.Comma) {
				break
			}
		}
		for p.c.Accept(lex.Semicolon) {
			if ft := p.c.Peek(); (p.c.IsIdent("skip_snat") || p.c.IsIdent("force_snat")) && a.Flag == "" {
				p.c.Next()
				a.Flag = ft.Str
				if _, ok := p.syms.bits(flagField + "." + ft.Str); !ok {
					return nil, lex.Errorf(ft.Pos, "%s: %s is not supported (the symbol table has no %s.%s)", name, ft.Str, flagField, ft.Str)
				}
				continue
			}
			if a.HashFields != nil || a.Flag != "" || !p.c.AcceptIdent("hash_fields") {
				return nil, p.c.Unexpected("`hash_fields=`, `skip_snat` or `force_snat`")
			}
			if _, err := p.c.Expect(lex.Assign); err != nil {
				return nil, err
			}
			t := p.c.Next()
			if t.Kind != lex.String {
				return nil, lex.Errorf(t.Pos, "hash_fields takes a quoted list of fields, e.g. hash_fields=\"ip_src,ip_dst\"")
			}
			for _, f := range strings.Split(t.Str, ",") {
				f = strings.TrimSpace(f)
				if !hashFieldOK[f] {
					return nil, lex.Errorf(t.Pos, "hash_fields: unknown field %q (known: eth_src eth_dst ip_src ip_dst ipv6_src ipv6_dst ip_proto tcp_src tcp_dst udp_src udp_dst sctp_src sctp_dst tp_src tp_dst)", f)
				}
				a.HashFields = append(a.HashFields, f)
			}
		}
		if _, err := p.c.Expect(lex.RParen); err != nil {
			return nil, err
		}
		if v4 {
			p.addPrereq("ip4")
		} else {
			p.addPrereq("ip6")
		}
		for _, sym := range []string{flagField + ".natted", flagField + "." + a.Flag} {
			if sub, ok := p.syms.bits(sym); ok && !strings.HasSuffix(sym, ".") {
				a.Marks = append(a.Marks, sub)
			}
		}
	}
	return a, p.expectSemi()
}

func (p *parser) stringField(what string) (Field, error) {
	f, err := p.field()
	if err != nil {
		return f, err
	}
	if !f.IsString {
		return f, lex.Errorf(f.Pos, "%s must be a port-name field such as inport or outport, not %s", what, f)
	}
	return f, nil
}

func (p *parser) widthField(what string, w int) (Field, error) {
	f, err := p.field()
	if err != nil {
		return f, err
	}
	if f.IsString || f.Width() != w {
		return f, lex.Errorf(f.Pos, "%s must be a %d-bit field, but %s has %d bits", what, w, f, f.Width())
	}
	return f, nil
}

func (p *parser) getMAC(at pos, nd bool) (Action, error) {
	p.c.Next()
	if _, err := p.c.Expect(lex.LParen); err != nil {
		return nil, err
	}
	a := &GetMAC{pos: at, ND: nd}
	var err error
	if a.Port, err = p.stringField("the first argument"); err != nil {
		return nil, err
	}
	if _, err := p.c.Expect(lex.Comma); err != nil {
		return nil, err
	}
	w := 32
	if nd {
		w = 128
	}
	if a.IP, err = p.widthField("the IP address argument", w); err != nil {
		return nil, err
	}
	if _, err := p.c.Expect(lex.RParen); err != nil {
		return nil, err
	}
	return a, p.expectSemi()
}

func (p *parser) putMAC(at pos, nd bool) (Action, error) {
	p.c.Next()
	if _, err := p.c.Expect(lex.LParen); err != nil {
		return nil, err
	}
	a := &PutMAC{pos: at, ND: nd}
	var err error
	if a.Port, err = p.stringField("the first argument"); err != nil {
		return nil, err
	}
	if _, err := p.c.Expect(lex.Comma); err != nil {
		return nil, err
	}
	w := 32
	if nd {
		w = 128
	}
	if a.IP, err = p.widthField("the IP address argument", w); err != nil {
		return nil, err
	}
	if _, err := p.c.Expect(lex.Comma); err != nil {
		return nil, err
	}
	if a.MAC, err = p.widthField("the MAC address argument", 48); err != nil {
		return nil, err
	}
	if _, err := p.c.Expect(lex.RParen); err != nil {
		return nil, err
	}
	return a, p.expectSemi()
}

var (
	severities = []string{"alert", "warning", "notice", "info", "debug"}
	verdicts   = []string{"allow", "drop", "reject", "pass"} // pass: an ACL tier's "pass" (OVN 23.06)
)

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func (p *parser) log(at pos) (Action, error) {
	p.c.Next()
	a := &Log{pos: at, Severity: "info", Verdict: "allow"}
	if p.c.Accept(lex.LParen) && !p.c.Accept(lex.RParen) {
		for {
			key, err := p.c.Expect(lex.Ident)
			if err != nil {
				return nil, err
			}
			if _, err := p.c.Expect(lex.Assign); err != nil {
				return nil, err
			}
			switch key.Str {
			case "name", "meter":
				t, err := p.c.Expect(lex.String)
				if err != nil {
					return nil, err
				}
				if key.Str == "name" {
					a.Name = t.Str
				} else {
					a.Meter = t.Str
				}
			case "severity", "verdict":
				list := severities
				if key.Str == "verdict" {
					list = verdicts
				}
				t := p.c.Peek()
				if t.Kind != lex.Ident || indexOf(list, t.Str) < 0 {
					return nil, p.c.Unexpected("one of " + strings.Join(list, ", "))
				}
				p.c.Next()
				if key.Str == "severity" {
					a.Severity = t.Str
				} else {
					a.Verdict = t.Str
				}
			default:
				return nil, lex.Errorf(key.Pos, "unknown log option `%s` (known: name, severity, verdict, meter)", key.Str)
			}
			if !p.c.Accept(lex.Comma) {
				break
			}
		}
		if _, err := p.c.Expect(lex.RParen); err != nil {
			return nil, err
		}
	}
	return a, p.expectSemi()
}
