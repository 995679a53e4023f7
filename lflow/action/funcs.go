package action

import (
	"strconv"
	"strings"

	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// Call is an assignment of a function result: `R = get_fdb(MAC);`,
// `R = lookup_fdb(P, MAC);`, `R = lookup_arp(P, IP, MAC);`,
// `R = lookup_arp_ip(P, IP);`, `R = lookup_nd(P, IP6, MAC);`,
// `R = lookup_nd_ip(P, IP6);`, `R = check_pkt_larger(LEN);`,
// `R = chk_lb_hairpin();`, `R = chk_lb_hairpin_reply();`, `R = chk_lb_aff();`.
type Call struct {
	pos
	Dst  Field
	Func string
	Args []Field
	Len  int // check_pkt_larger
}

// PutFDB is `put_fdb(P, MAC);`: learn MAC on port P (via the controller).
type PutFDB struct {
	pos
	Port, MAC Field
}

// SvcCheck is `handle_svc_check(P);`: send a service-monitor reply to the
// controller.
type SvcCheck struct {
	pos
	Port Field
}

func (a *Call) appendTo(sb *strings.Builder) {
	sb.WriteString(a.Dst.String() + " = " + a.Func + "(")
	if a.Func == "check_pkt_larger" {
		sb.WriteString(strconv.Itoa(a.Len))
	}
	for i, f := range a.Args {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(f.String())
	}
	sb.WriteString(");")
}
func (a *PutFDB) appendTo(sb *strings.Builder) {
	sb.WriteString("put_fdb(" + a.Port.String() + ", " + a.MAC.String() + ");")
}
func (a *SvcCheck) appendTo(sb *strings.Builder) {
	sb.WriteString("handle_svc_check(" + a.Port.String() + ");")
}
func (a *Call) String() string     { return str(a) }
func (a *PutFDB) String() string   { return str(a) }
func (a *SvcCheck) String() string { return str(a) }

// argument kinds of the functions: 'P' port-name field, '4' 32-bit IPv4
// field, '6' 128-bit IPv6 field, 'M' 48-bit MAC field.
var funcArgs = map[string]string{
	"get_fdb":       "M",
	"lookup_fdb":    "PM",
	"lookup_arp":    "P4M",
	"lookup_arp_ip": "P4",
	"lookup_nd":     "P6M",
	"lookup_nd_ip":  "P6",
}

// funcResultBits is the width the result field must have.
var funcResultBits = map[string]int{
	"get_fdb": 32, "lookup_fdb": 1, "lookup_arp": 1, "lookup_arp_ip": 1,
	"lookup_nd": 1, "lookup_nd_ip": 1, "check_pkt_larger": 1,
	"chk_lb_hairpin": 1, "chk_lb_hairpin_reply": 1, "chk_lb_aff": 1,
}

func isFunc(name string) bool { _, ok := funcResultBits[name]; return ok }

// call parses the right-hand side `func(args)` of `dst = func(args);`.
func (p *parser) call(at pos, dst Field) (Action, error) {
	ft := p.c.Next()
	name := ft.Str
	if w := funcResultBits[name]; dst.Width() != w || (dst.IsString && name != "get_fdb") {
		what := "a 1-bit field such as reg0[3]"
		if w == 32 {
			what = "a 32-bit field such as outport"
		}
		return nil, lex.Errorf(dst.Pos, "the result of %s must go to %s, not %d-bit %s", name, what, dst.Width(), dst)
	}
	p.c.Next() // '('
	a := &Call{pos: at, Dst: dst, Func: name}
	if name == "check_pkt_larger" {
		n, err := p.smallInt(65535, "packet length")
		if err != nil {
			return nil, err
		}
		a.Len = n
	} else {
		for i, kind := range funcArgs[name] {
			if i > 0 {
				if _, err := p.c.Expect(lex.Comma); err != nil {
					return nil, err
				}
			}
			f, err := p.argument(kind, i)
			if err != nil {
				return nil, err
			}
			a.Args = append(a.Args, f)
		}
	}
	if _, err := p.c.Expect(lex.RParen); err != nil {
		return nil, err
	}
	return a, p.expectSemi()
}

func ordinal(i int) string {
	return [...]string{"first", "second", "third", "fourth"}[i%4]
}

func (p *parser) argument(kind rune, i int) (Field, error) {
	what := "the " + ordinal(i) + " argument"
	switch kind {
	case 'P':
		return p.stringField(what)
	case '4':
		return p.widthField(what+" (an IPv4 address)", 32)
	case '6':
		return p.widthField(what+" (an IPv6 address)", 128)
	}
	return p.widthField(what+" (a MAC address)", 48)
}

func (p *parser) putFDB(at pos) (Action, error) {
	p.c.Next()
	if _, err := p.c.Expect(lex.LParen); err != nil {
		return nil, err
	}
	port, err := p.argument('P', 0)
	if err != nil {
		return nil, err
	}
	if _, err := p.c.Expect(lex.Comma); err != nil {
		return nil, err
	}
	mac, err := p.argument('M', 1)
	if err != nil {
		return nil, err
	}
	if _, err := p.c.Expect(lex.RParen); err != nil {
		return nil, err
	}
	return &PutFDB{pos: at, Port: port, MAC: mac}, p.expectSemi()
}

func (p *parser) svcCheck(at pos) (Action, error) {
	p.c.Next()
	if _, err := p.c.Expect(lex.LParen); err != nil {
		return nil, err
	}
	port, err := p.argument('P', 0)
	if err != nil {
		return nil, err
	}
	if _, err := p.c.Expect(lex.RParen); err != nil {
		return nil, err
	}
	return &SvcCheck{pos: at, Port: port}, p.expectSemi()
}

// Scratch flag bits (symtab's FlagLookup*) the lookup tables set on a hit:
// the encoded actions clear the bit, resubmit to the table and copy the bit
// to the result field.
var (
	LookupMACResult     = of.Subfield{Field: symtab.FlagsField, Ofs: symtab.FlagLookupMAC, NBits: 1}
	LookupHairpinResult = of.Subfield{Field: symtab.FlagsField, Ofs: symtab.FlagLookupLBHairpin, NBits: 1}
	LookupFDBResult     = of.Subfield{Field: symtab.FlagsField, Ofs: symtab.FlagLookupFDB, NBits: 1}
)

// staged moves arguments into the registers a lookup table matches,
// saving those registers first, and restores them afterwards.
type staged struct {
	moves []struct{ src, dst of.Subfield }
}

func (s *staged) add(src, dst of.Subfield) {
	if src != dst {
		s.moves = append(s.moves, struct{ src, dst of.Subfield }{src, dst})
	}
}

// enter pushes the destinations (to restore later), then the sources, then
// pops the sources into the destinations, so that moves never clobber each
// other's sources.
func (s *staged) enter(out of.Actions) of.Actions {
	for _, m := range s.moves {
		out = append(out, of.Push{Sub: m.dst})
	}
	for _, m := range s.moves {
		out = append(out, of.Push{Sub: m.src})
	}
	for i := len(s.moves) - 1; i >= 0; i-- {
		out = append(out, of.Pop{Sub: s.moves[i].dst})
	}
	return out
}

func (s *staged) leave(out of.Actions) of.Actions {
	for i := len(s.moves) - 1; i >= 0; i-- {
		out = append(out, of.Pop{Sub: s.moves[i].dst})
	}
	return out
}

func (e *encoder) lookupTable(at lex.Pos, name string, t int) (int, error) {
	if t <= 0 {
		return 0, lex.Errorf(at, "EncodeParams.%s is not set", name)
	}
	return t, nil
}

func (e *encoder) call(a *Call, out of.Actions) (of.Actions, error) {
	var s staged
	var table int
	var err error
	result := LookupMACResult
	switch a.Func {
	case "check_pkt_larger":
		return append(out, of.CheckPktLarger{Len: a.Len, Dst: a.Dst.Sub}), nil
	case "get_fdb":
		if table, err = e.lookupTable(a.P, "GetFDBTable", e.p.GetFDBTable); err != nil {
			return nil, err
		}
		s.add(a.Args[0].Sub, of.Whole(of.EthDst))
		port := MACBindingPort // reg15: the table stores the port key there
		out = s.enter(out)
		if a.Dst.Sub != port {
			out = append(out, of.Push{Sub: port})
		}
		out = append(out, of.SetField{Dst: port, Value: u(0)}, of.Resubmit{Table: table})
		if a.Dst.Sub != port {
			out = append(out, of.Move{Src: port, Dst: a.Dst.Sub}, of.Pop{Sub: port})
		}
		return s.leave(out), nil
	case "lookup_fdb":
		if table, err = e.lookupTable(a.P, "LookupFDBTable", e.p.LookupFDBTable); err != nil {
			return nil, err
		}
		result = LookupFDBResult
		s.add(a.Args[0].Sub, PutMACPort)
		s.add(a.Args[1].Sub, PutMACMAC)
	case "lookup_arp", "lookup_nd":
		if table, err = e.lookupTable(a.P, "LookupMACTable", e.p.LookupMACTable); err != nil {
			return nil, err
		}
		s.add(a.Args[0].Sub, PutMACPort)
		s.add(a.Args[1].Sub, ipReg(a.Func == "lookup_nd"))
		s.add(a.Args[2].Sub, PutMACMAC)
	case "chk_lb_hairpin":
		if table, err = e.lookupTable(a.P, "LBHairpinTable", e.p.LBHairpinTable); err != nil {
			return nil, err
		}
		result = LookupHairpinResult
	case "chk_lb_hairpin_reply":
		if table, err = e.lookupTable(a.P, "LBHairpinReplyTable", e.p.LBHairpinReplyTable); err != nil {
			return nil, err
		}
		result = LookupHairpinResult
	case "chk_lb_aff":
		if table, err = e.lookupTable(a.P, "LBAffinityTable", e.p.LBAffinityTable); err != nil {
			return nil, err
		}
		result = LookupLBAffResult
	case "lookup_arp_ip", "lookup_nd_ip":
		if table, err = e.lookupTable(a.P, "LookupMACIPTable", e.p.LookupMACIPTable); err != nil {
			return nil, err
		}
		s.add(a.Args[0].Sub, PutMACPort)
		s.add(a.Args[1].Sub, ipReg(a.Func == "lookup_nd_ip"))
	}
	out = s.enter(out)
	out = append(out, of.SetField{Dst: result, Value: u(0)}, of.Resubmit{Table: table})
	out = s.leave(out)
	if a.Dst.Sub != result {
		out = append(out, of.Move{Src: result, Dst: a.Dst.Sub})
	}
	return out, nil
}

func ipReg(v6 bool) of.Subfield {
	if v6 {
		return MACBindingIP6
	}
	return MACBindingIP4
}

func (e *encoder) putFDB(a *PutFDB, out of.Actions) of.Actions {
	var s staged
	s.add(a.Port.Sub, PutMACPort)
	s.add(a.MAC.Sub, PutMACMAC)
	out = s.enter(out)
	out = append(out, of.Controller{UserData: userData(OpPutFDB, nil), MeterID: e.p.ControllerMeter})
	return s.leave(out)
}

func (e *encoder) svcCheck(a *SvcCheck, out of.Actions) of.Actions {
	var s staged
	s.add(a.Port.Sub, PutMACPort)
	out = s.enter(out)
	out = append(out, of.Controller{UserData: userData(OpSvcCheck, nil), MeterID: e.p.ControllerMeter})
	return s.leave(out)
}

// SNATToVIP is `ct_snat_to_vip;`: commit a hairpinned load-balancer
// connection with its source translated to the VIP (the controller's
// CTSNATHairpinTable holds one flow per VIP doing that).
type SNATToVIP struct{ pos }

func (a *SNATToVIP) appendTo(sb *strings.Builder) { sb.WriteString("ct_snat_to_vip;") }
func (a *SNATToVIP) String() string               { return str(a) }
