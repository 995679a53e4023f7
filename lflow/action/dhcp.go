package action

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
)

// DHCPOptType is the value type of a DHCPv4 option.
type DHCPOptType uint8

const (
	OptIPv4         DHCPOptType = iota // one address or {a, b, ...}
	OptBool                            // 0 or 1
	OptUint8                           // integer
	OptUint16                          // integer
	OptUint32                          // integer
	OptStr                             // "string"
	OptHostID                          // "name" or an IPv4 address
	OptDomains                         // "a.example.com,b.example.com" (RFC 1035 encoded)
	OptStaticRoutes                    // {net/len, gateway, ...} (RFC 3442 encoded)
	OptIPv6                            // one IPv6 address or {a, b, ...} (DHCPv6)
	OptMAC                             // one MAC address (DHCPv6 server_id)
	OptIPv6Prefix                      // one IPv6 prefix such as fd00::/64 (RA prefix)
)

var optTypeNames = [...]string{"ipv4", "bool", "uint8", "uint16", "uint32", "str", "host_id", "domains", "static_routes", "ipv6", "mac", "ipv6_prefix"}

func (t DHCPOptType) String() string { return optTypeNames[t] }

// DHCPOpt describes one DHCP option put_dhcp_opts or put_dhcpv6_opts
// accepts.
type DHCPOpt struct {
	Name string
	Code uint16 // DHCPv4: 0 is offerip, the address offered (not an option on the wire)
	Type DHCPOptType
}

// DHCPv6Opts lists the DHCPv6 options (names and codes as in OVN's
// Southbound DHCPv6_Options table, RFC 8415/3646/4704).
var DHCPv6Opts = []DHCPOpt{
	{"server_id", 2, OptMAC}, {"ia_addr", 5, OptIPv6}, {"dns_server", 23, OptIPv6},
	{"domain_search", 24, OptStr}, {"fqdn", 39, OptStr}, {"bootfile_name", 59, OptStr},
}

var dhcpv6OptByName = func() map[string]DHCPOpt {
	m := make(map[string]DHCPOpt, len(DHCPv6Opts))
	for _, o := range DHCPv6Opts {
		m[o.Name] = o
	}
	return m
}()

// DHCPOpts lists the DHCPv4 options (the names and codes OVN's northd puts
// in the Southbound DHCP_Options table, RFC 2132 and friends).
var DHCPOpts = []DHCPOpt{
	{"offerip", 0, OptIPv4}, {"netmask", 1, OptIPv4}, {"router", 3, OptIPv4}, {"dns_server", 6, OptIPv4},
	{"log_server", 7, OptIPv4}, {"lpr_server", 9, OptIPv4}, {"hostname", 12, OptStr}, {"domain_name", 15, OptStr},
	{"swap_server", 16, OptIPv4}, {"ip_forward_enable", 19, OptBool}, {"policy_filter", 21, OptIPv4},
	{"default_ttl", 23, OptUint8}, {"mtu", 26, OptUint16}, {"broadcast_address", 28, OptIPv4},
	{"router_discovery", 31, OptBool}, {"router_solicitation", 32, OptIPv4}, {"arp_cache_timeout", 35, OptUint32},
	{"ethernet_encap", 36, OptBool}, {"tcp_ttl", 37, OptUint8}, {"tcp_keepalive_interval", 38, OptUint32},
	{"nis_server", 41, OptIPv4}, {"ntp_server", 42, OptIPv4}, {"netbios_name_server", 44, OptIPv4},
	{"netbios_node_type", 46, OptUint8}, {"lease_time", 51, OptUint32}, {"server_id", 54, OptIPv4},
	{"T1", 58, OptUint32}, {"T2", 59, OptUint32}, {"tftp_server", 66, OptHostID}, {"bootfile_name", 67, OptStr},
	{"domain_search_list", 119, OptDomains}, {"classless_static_route", 121, OptStaticRoutes},
	{"tftp_server_address", 150, OptIPv4}, {"path_prefix", 210, OptStr},
	{"ms_classless_static_route", 249, OptStaticRoutes}, {"wpad", 252, OptStr}, {"next_server", 253, OptIPv4},
	{"bootfile_name_alt", 254, OptStr},
}

var dhcpOptByName = func() map[string]DHCPOpt {
	m := make(map[string]DHCPOpt, len(DHCPOpts))
	for _, o := range DHCPOpts {
		m[o.Name] = o
	}
	return m
}()

// DHCPValue is one option value: constants (addresses, prefixes, integers)
// or a string.
type DHCPValue struct {
	Consts []lex.Token // Integer tokens, in order
	Braces bool        // written as a {...} list
	Str    string
	IsStr  bool
}

func (v DHCPValue) String() string {
	if v.IsStr {
		return lex.Quote(v.Str)
	}
	parts := make([]string, len(v.Consts))
	for i, t := range v.Consts {
		parts[i] = t.String()
	}
	if v.Braces {
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return parts[0]
}

// DHCPOptValue is `name = value` inside put_dhcp_opts.
type DHCPOptValue struct {
	Opt   DHCPOpt
	Value DHCPValue
}

// PutDHCPOpts is `R = put_dhcp_opts(offerip = IP, name = value, ...);` or
// (V6) `R = put_dhcpv6_opts(ia_addr = IP6, server_id = MAC, ...);`.
type PutDHCPOpts struct {
	pos
	V6   bool
	Dst  Field
	Opts []DHCPOptValue
}

func (a *PutDHCPOpts) name() string {
	if a.V6 {
		return "put_dhcpv6_opts"
	}
	return "put_dhcp_opts"
}

func (a *PutDHCPOpts) appendTo(sb *strings.Builder) {
	sb.WriteString(a.Dst.String() + " = " + a.name() + "(")
	for i, o := range a.Opts {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(o.Opt.Name + " = " + o.Value.String())
	}
	sb.WriteString(");")
}
func (a *PutDHCPOpts) String() string { return str(a) }

// DNSLookup is `R = dns_lookup();`.
type DNSLookup struct {
	pos
	Dst Field
}

func (a *DNSLookup) appendTo(sb *strings.Builder) {
	sb.WriteString(a.Dst.String() + " = dns_lookup();")
}
func (a *DNSLookup) String() string { return str(a) }

func (p *parser) putDHCPOpts(at pos, dst Field) (Action, error) {
	ft := p.c.Next()
	a := &PutDHCPOpts{pos: at, Dst: dst, V6: ft.Str == "put_dhcpv6_opts"}
	table := dhcpOptByName
	if a.V6 {
		table = dhcpv6OptByName
	}
	if dst.Width() != 1 || dst.IsString {
		return nil, lex.Errorf(dst.Pos, "the result of %s must go to a 1-bit field such as reg0[3], not %d-bit %s", ft.Str, dst.Width(), dst)
	}
	p.c.Next() // '('
	if a.V6 && p.c.Accept(lex.RParen) {
		return a, p.expectSemi() // a stateless reply with no options
	}
	seen := map[string]bool{}
	for {
		nt := p.c.Peek()
		if nt.Kind != lex.Ident {
			return nil, p.c.Unexpected("a DHCP option name")
		}
		opt, ok := table[nt.Str]
		if !ok {
			kind := "DHCP"
			if a.V6 {
				kind = "DHCPv6"
			}
			return nil, lex.Errorf(nt.Pos, "unknown %s option `%s`", kind, nt.Str)
		}
		if seen[opt.Name] {
			return nil, lex.Errorf(nt.Pos, "DHCP option %s given twice", opt.Name)
		}
		seen[opt.Name] = true
		p.c.Next()
		if _, err := p.c.Expect(lex.Assign); err != nil {
			return nil, err
		}
		label := "DHCP option"
		if a.V6 {
			label = "DHCPv6 option"
		}
		v, err := p.dhcpValue(opt, label)
		if err != nil {
			return nil, err
		}
		a.Opts = append(a.Opts, DHCPOptValue{opt, v})
		if !p.c.Accept(lex.Comma) {
			break
		}
	}
	if _, err := p.c.Expect(lex.RParen); err != nil {
		return nil, err
	}
	if !a.V6 && !seen["offerip"] {
		return nil, lex.Errorf(ft.Pos, "put_dhcp_opts needs an offerip option")
	}
	return a, p.expectSemi()
}

// dhcpValue parses and type-checks the value of option opt.
func (p *parser) dhcpValue(opt DHCPOpt, label string) (DHCPValue, error) {
	var v DHCPValue
	start := p.c.Peek()
	if start.Kind == lex.String {
		p.c.Next()
		switch opt.Type {
		case OptStr, OptHostID, OptDomains:
		default:
			return v, lex.Errorf(start.Pos, "%s %s takes %s values, not a string", label, opt.Name, opt.Type)
		}
		if len(start.Str) == 0 || len(start.Str) > 255 {
			return v, lex.Errorf(start.Pos, "%s %s: the string must have 1 to 255 bytes", label, opt.Name)
		}
		if opt.Type == OptDomains || opt.Name == "domain_search" {
			if _, err := encodeDomains(start.Str); err != "" {
				return v, lex.Errorf(start.Pos, "%s %s: %s", label, opt.Name, err)
			}
		}
		return DHCPValue{IsStr: true, Str: start.Str}, nil
	}
	v.Braces = p.c.Accept(lex.LBrace)
	for {
		t := p.c.Peek()
		if t.Kind != lex.Integer {
			return v, p.c.Unexpected("a value for " + label + " " + opt.Name)
		}
		p.c.Next()
		v.Consts = append(v.Consts, t)
		if !v.Braces || !p.c.Accept(lex.Comma) {
			break
		}
	}
	if v.Braces {
		if _, err := p.c.Expect(lex.RBrace); err != nil {
			return v, err
		}
	}
	return v, checkDHCPConsts(opt, label, v.Consts, start.Pos)
}

func checkDHCPConsts(opt DHCPOpt, label string, cs []lex.Token, at lex.Pos) error {
	switch opt.Type {
	case OptIPv6Prefix:
		if len(cs) != 1 || cs[0].Format != lex.IPv6 || !cs[0].Masked {
			return lex.Errorf(at, "%s %s takes one IPv6 prefix such as fd00::/64", label, opt.Name)
		}
		if _, ok := lex.PrefixLen(cs[0].Mask, 128); !ok {
			return lex.Errorf(cs[0].Pos, "%s %s: %s is not a CIDR prefix", label, opt.Name, cs[0].Text)
		}
	case OptIPv6, OptMAC:
		want := lex.IPv6
		if opt.Type == OptMAC {
			want = lex.MAC
		}
		for _, t := range cs {
			if t.Format != want || t.Masked {
				return lex.Errorf(t.Pos, "%s %s takes %s values, not %s", label, opt.Name, want, t.Text)
			}
		}
		if (opt.Type == OptMAC || opt.Name == "ia_addr") && len(cs) != 1 {
			return lex.Errorf(at, "%s %s takes exactly one value", label, opt.Name)
		}
		if len(cs)*16 > 255 {
			return lex.Errorf(at, "%s %s: too many addresses", label, opt.Name)
		}
	case OptIPv4, OptHostID:
		for _, t := range cs {
			if t.Format != lex.IPv4 || t.Masked {
				return lex.Errorf(t.Pos, "%s %s takes IPv4 addresses, not %s", label, opt.Name, t.Text)
			}
		}
		if (opt.Type == OptHostID || opt.Name == "offerip" || opt.Name == "netmask" || opt.Name == "server_id") && len(cs) != 1 {
			return lex.Errorf(at, "%s %s takes exactly one address", label, opt.Name)
		}
		if len(cs)*4 > 255 {
			return lex.Errorf(at, "%s %s: too many addresses", label, opt.Name)
		}
	case OptBool, OptUint8, OptUint16, OptUint32:
		if len(cs) != 1 {
			return lex.Errorf(at, "%s %s takes one integer", label, opt.Name)
		}
		t := cs[0]
		max := map[DHCPOptType]int{OptBool: 1, OptUint8: 8, OptUint16: 16, OptUint32: 32}[opt.Type]
		if (t.Format != lex.Decimal && t.Format != lex.Hex) || t.Masked || !t.Value.FitsIn(max) {
			return lex.Errorf(t.Pos, "%s %s takes a %s, not %s", label, opt.Name, opt.Type, t.Text)
		}
	case OptStaticRoutes:
		if len(cs) == 0 || len(cs)%2 != 0 {
			return lex.Errorf(at, "%s %s takes pairs of network and gateway: {10.1.0.0/16, 10.0.0.1, ...}", label, opt.Name)
		}
		for i, t := range cs {
			if t.Format != lex.IPv4 || (i%2 == 1 && t.Masked) {
				return lex.Errorf(t.Pos, "%s %s: %s is not an IPv4 %s", label, opt.Name, t.Text, map[bool]string{true: "network", false: "gateway"}[i%2 == 0])
			}
			if i%2 == 0 && t.Masked {
				if _, ok := lex.PrefixLen(t.Mask, 32); !ok {
					return lex.Errorf(t.Pos, "%s %s: %s is not a CIDR network", label, opt.Name, t.Text)
				}
			}
		}
	default:
		return lex.Errorf(at, "%s %s takes a quoted string", label, opt.Name)
	}
	return nil
}

// encodeDomains encodes a comma-separated domain list in DNS wire format
// (RFC 3397, without compression).
func encodeDomains(s string) ([]byte, string) {
	var out []byte
	for _, d := range strings.Split(s, ",") {
		d = strings.TrimSuffix(strings.TrimSpace(d), ".")
		if d == "" {
			return nil, "empty domain name"
		}
		for _, label := range strings.Split(d, ".") {
			if len(label) == 0 || len(label) > 63 {
				return nil, "domain " + strconv.Quote(d) + " has an empty or too long label"
			}
			out = append(out, byte(len(label)))
			out = append(out, label...)
		}
		out = append(out, 0)
	}
	return out, ""
}

// wire returns the option's value bytes as they appear in a DHCP packet.
func (o DHCPOptValue) wire() []byte {
	v := o.Value
	switch o.Opt.Type {
	case OptStr:
		if o.Opt.Name == "domain_search" {
			b, _ := encodeDomains(v.Str)
			return b
		}
		return []byte(v.Str)
	case OptIPv6:
		var b []byte
		for _, t := range v.Consts {
			a := t.Value.Bytes()
			b = append(b, a[:]...)
		}
		return b
	case OptMAC:
		a := v.Consts[0].Value.Bytes()
		return append([]byte(nil), a[10:]...)
	case OptIPv6Prefix:
		n, _ := lex.PrefixLen(v.Consts[0].Mask, 128)
		a := v.Consts[0].Value.Bytes()
		return append([]byte{byte(n)}, a[:]...)
	case OptHostID:
		if v.IsStr {
			return []byte(v.Str)
		}
	case OptDomains:
		b, _ := encodeDomains(v.Str)
		return b
	case OptBool, OptUint8:
		return []byte{byte(v.Consts[0].Value.Lo)}
	case OptUint16:
		return binary.BigEndian.AppendUint16(nil, uint16(v.Consts[0].Value.Lo))
	case OptUint32:
		return binary.BigEndian.AppendUint32(nil, uint32(v.Consts[0].Value.Lo))
	case OptStaticRoutes:
		var b []byte
		for i := 0; i < len(v.Consts); i += 2 {
			netTok, gw := v.Consts[i], v.Consts[i+1]
			n := 32
			if netTok.Masked {
				n, _ = lex.PrefixLen(netTok.Mask, 32)
			}
			b = append(b, byte(n))
			addr := binary.BigEndian.AppendUint32(nil, uint32(netTok.Value.Lo))
			b = append(b, addr[:(n+7)/8]...)
			b = binary.BigEndian.AppendUint32(b, uint32(gw.Value.Lo))
		}
		return b
	}
	var b []byte
	for _, t := range v.Consts {
		b = binary.BigEndian.AppendUint32(b, uint32(t.Value.Lo))
	}
	return b
}

// payload is the userdata after the opcode: the result subfield, then the
// options as code/length/value (DHCPv4: 1-byte code and length, code 0 =
// offerip; DHCPv6: 2-byte code and length, as on the wire).
func (a *PutDHCPOpts) payload() []byte {
	b := resultPrefix(a.Dst.Sub)
	for _, o := range a.Opts {
		w := o.wire()
		if a.V6 {
			b = binary.BigEndian.AppendUint16(b, o.Opt.Code)
			b = binary.BigEndian.AppendUint16(b, uint16(len(w)))
		} else {
			b = append(b, byte(o.Opt.Code), byte(len(w)))
		}
		b = append(b, w...)
	}
	return b
}

// resultPrefix encodes the result subfield of a paused controller action:
// one length byte, then its ovs-ofctl text (e.g. "reg0[3]").
func resultPrefix(s of.Subfield) []byte {
	t := s.String()
	return append([]byte{byte(len(t))}, t...)
}

func (e *encoder) putDHCPOpts(a *PutDHCPOpts, out of.Actions) of.Actions {
	op := OpPutDHCPOpts
	if a.V6 {
		op = OpPutDHCPv6Opts
	}
	return append(out, of.Controller{UserData: userData(op, a.payload()), Pause: true, MeterID: e.p.ControllerMeter})
}

func (e *encoder) dnsLookup(a *DNSLookup, out of.Actions) of.Actions {
	return append(out, of.Controller{UserData: userData(OpDNSLookup, resultPrefix(a.Dst.Sub)), Pause: true, MeterID: e.p.ControllerMeter})
}

// execDHCP: the trace cannot build the reply, but it can tell whether the
// action would answer: a UDP packet to port 67 gets an offer.
func (x *executor) putDHCPOpts(a *PutDHCPOpts, p *of.Packet, step *Step) {
	if a.V6 {
		step.Found = p.Get(of.EthType).Lo == 0x86dd && p.Get(of.IPProto).Lo == 17 && p.Get(of.UDPDst).Lo == 547
	} else {
		step.Found = p.Get(of.EthType).Lo == 0x0800 && p.Get(of.IPProto).Lo == 17 && p.Get(of.UDPDst).Lo == 67
	}
	offer := ""
	for _, o := range a.Opts {
		if o.Opt.Name == "offerip" || o.Opt.Name == "ia_addr" {
			b := o.Value.Consts[0].Value.Bytes()
			if a.V6 {
				offer = " offering " + netip.AddrFrom16(b).String()
			} else {
				offer = " offering " + netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}).String()
			}
		}
	}
	kind := "DHCP"
	if a.V6 {
		kind = "DHCPv6"
	}
	if step.Found {
		step.Note = kind + " reply" + offer
	} else {
		step.Note = "not a " + kind + " request: 0"
	}
	v := bits.Zero
	if step.Found {
		v = bits.From64(1)
	}
	p.SetSub(a.Dst.Sub, v)
}

func (x *executor) dnsLookup(a *DNSLookup, p *of.Packet, step *Step) {
	if x.ctx.DNSLookup != nil {
		step.Found = x.ctx.DNSLookup(p)
	}
	step.Note = "DNS answer: " + strconv.FormatBool(step.Found)
	v := bits.Zero
	if step.Found {
		v = bits.From64(1)
	}
	p.SetSub(a.Dst.Sub, v)
}
