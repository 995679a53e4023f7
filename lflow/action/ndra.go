package action

import (
	"strings"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
)

// NDRAOpts lists the options of put_nd_ra_opts. Codes are govn's own (the
// controller turns them into RFC 4861 Router Advertisement fields and
// options): addr_mode "slaac", "dhcpv6_stateful" or "dhcpv6_stateless";
// slla the router's MAC; mtu; prefix (may repeat); router_preference
// "HIGH", "MEDIUM" or "LOW"; rdnss DNS servers; dnssl a domain search list.
var NDRAOpts = []DHCPOpt{
	{"addr_mode", 1, OptStr}, {"slla", 2, OptMAC}, {"mtu", 3, OptUint32}, {"prefix", 4, OptIPv6Prefix},
	{"router_preference", 5, OptStr}, {"rdnss", 6, OptIPv6}, {"dnssl", 7, OptStr},
}

var ndraOptByName = func() map[string]DHCPOpt {
	m := make(map[string]DHCPOpt, len(NDRAOpts))
	for _, o := range NDRAOpts {
		m[o.Name] = o
	}
	return m
}()

var ndraEnums = map[string][]string{
	"addr_mode":         {"slaac", "dhcpv6_stateful", "dhcpv6_stateless"},
	"router_preference": {"HIGH", "MEDIUM", "LOW"},
}

// PutNDRAOpts is `R = put_nd_ra_opts(addr_mode = "slaac", slla = MAC,
// prefix = fd00::/64, mtu = 1500, ...);`: answer a router solicitation with
// a router advertisement carrying these options (via the controller).
type PutNDRAOpts struct {
	pos
	Dst  Field
	Opts []DHCPOptValue
}

func (a *PutNDRAOpts) appendTo(sb *strings.Builder) {
	sb.WriteString(a.Dst.String() + " = put_nd_ra_opts(")
	for i, o := range a.Opts {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(o.Opt.Name + " = " + o.Value.String())
	}
	sb.WriteString(");")
}
func (a *PutNDRAOpts) String() string { return str(a) }

func (p *parser) putNDRAOpts(at pos, dst Field) (Action, error) {
	ft := p.c.Next()
	if dst.Width() != 1 || dst.IsString {
		return nil, lex.Errorf(dst.Pos, "the result of put_nd_ra_opts must go to a 1-bit field such as reg0[3], not %d-bit %s", dst.Width(), dst)
	}
	p.c.Next() // '('
	a := &PutNDRAOpts{pos: at, Dst: dst}
	seen := map[string]bool{}
	for {
		nt := p.c.Peek()
		if nt.Kind != lex.Ident {
			return nil, p.c.Unexpected("a router advertisement option name")
		}
		opt, ok := ndraOptByName[nt.Str]
		if !ok {
			return nil, lex.Errorf(nt.Pos, "unknown router advertisement option `%s` (known: addr_mode, slla, mtu, prefix, router_preference, rdnss, dnssl)", nt.Str)
		}
		if seen[opt.Name] && opt.Name != "prefix" {
			return nil, lex.Errorf(nt.Pos, "RA option %s given twice", opt.Name)
		}
		seen[opt.Name] = true
		p.c.Next()
		if _, err := p.c.Expect(lex.Assign); err != nil {
			return nil, err
		}
		vt := p.c.Peek()
		v, err := p.dhcpValue(opt, "RA option")
		if err != nil {
			return nil, err
		}
		if enum, ok := ndraEnums[opt.Name]; ok && indexOf(enum, v.Str) < 0 {
			return nil, lex.Errorf(vt.Pos, "RA option %s must be one of %s", opt.Name, strings.Join(enum, ", "))
		}
		a.Opts = append(a.Opts, DHCPOptValue{opt, v})
		if !p.c.Accept(lex.Comma) {
			break
		}
	}
	if _, err := p.c.Expect(lex.RParen); err != nil {
		return nil, err
	}
	for _, must := range []string{"addr_mode", "slla"} {
		if !seen[must] {
			return nil, lex.Errorf(ft.Pos, "put_nd_ra_opts needs the %s option", must)
		}
	}
	return a, p.expectSemi()
}

func (e *encoder) putNDRAOpts(a *PutNDRAOpts, out of.Actions) of.Actions {
	b := resultPrefix(a.Dst.Sub)
	for _, o := range a.Opts {
		w := o.wire()
		b = append(b, byte(o.Opt.Code), byte(len(w)))
		b = append(b, w...)
	}
	return append(out, of.Controller{UserData: userData(OpPutNDRAOpts, b), Pause: true, MeterID: e.p.ControllerMeter})
}

// putNDRAOpts answers router solicitations (ICMPv6 type 133).
func (x *executor) putNDRAOpts(a *PutNDRAOpts, p *of.Packet, step *Step) {
	step.Found = p.Get(of.EthType).Lo == 0x86dd && p.Get(of.IPProto).Lo == 58 && p.Get(of.ICMPv6Type).Lo == 133
	v := bits.Zero
	if step.Found {
		v = bits.From64(1)
		step.Note = "router advertisement"
	} else {
		step.Note = "not a router solicitation: 0"
	}
	p.SetSub(a.Dst.Sub, v)
}
