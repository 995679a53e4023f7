package action

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// Load-balancer session affinity (OVN's commit_lb_aff / chk_lb_aff).
//
// `commit_lb_aff(vip = "VIP[:PORT]", backend = "B[:BPORT]", proto = P,
// timeout = T);` learns a flow in EncodeParams.LBAffinityTable that, for T
// seconds without traffic, matches the client (ip.src of this packet), the
// datapath, the VIP and, when the VIP has a port, the protocol and port;
// the learned flow loads the backend into LBAffBackendIP4 (IPv6:
// LBAffBackendIP6) and LBAffBackendPort and sets LookupLBAffResult.
// `R = chk_lb_aff();` clears LookupLBAffResult, searches that table and
// copies the bit to R — so a hit leaves the chosen backend in the
// registers above for the logical flows to match.

// Registers a learned affinity flow loads (OVN's REG_LB_AFF_BACKEND_IP4,
// REG_LB_AFF_MATCH_PORT; IPv6 backends go to xxreg1) and its result bit.
var (
	LBAffBackendIP4   = of.Whole(of.Reg4)
	LBAffBackendIP6   = of.Whole(of.XXReg1)
	LBAffBackendPort  = of.Sub(of.Reg8, 0, 16)
	LookupLBAffResult = of.Subfield{Field: symtab.FlagsField, Ofs: symtab.FlagLookupLBAff, NBits: 1}
)

// CommitLBAff is `commit_lb_aff(vip = "...", backend = "...", proto = P,
// timeout = T);`. A port of 0 means the VIP (or backend) has none; Proto
// is "" exactly when the VIP has no port. Timeout 0: the learned flow
// never idles out (OVN accepts it too).
type CommitLBAff struct {
	pos
	VIP, Backend netip.AddrPort
	Proto        string
	Timeout      int
}

func lbAddrString(a netip.AddrPort) string {
	if a.Port() == 0 {
		return a.Addr().String()
	}
	return a.String()
}

func (a *CommitLBAff) appendTo(sb *strings.Builder) {
	sb.WriteString(`commit_lb_aff(vip = "` + lbAddrString(a.VIP) + `", backend = "` + lbAddrString(a.Backend) + `"`)
	if a.Proto != "" {
		sb.WriteString(", proto = " + a.Proto)
	}
	sb.WriteString(", timeout = " + strconv.Itoa(a.Timeout) + ");")
}
func (a *CommitLBAff) String() string { return str(a) }

// parseLBAddr parses "IP", "IP:PORT" or "[IP6]:PORT" (port 0 = none).
func parseLBAddr(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return netip.AddrPortFrom(a.Unmap(), 0), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil || ap.Addr().Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("%q is not an IP address, IP:PORT or [IPv6]:PORT", s)
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
}

func (p *parser) commitLBAff(at pos) (Action, error) {
	p.c.Next()
	if _, err := p.c.Expect(lex.LParen); err != nil {
		return nil, err
	}
	a := &CommitLBAff{pos: at}
	seen := map[string]bool{}
	for {
		key, err := p.c.Expect(lex.Ident)
		if err != nil {
			return nil, err
		}
		if seen[key.Str] {
			return nil, lex.Errorf(key.Pos, "commit_lb_aff: `%s` given twice", key.Str)
		}
		seen[key.Str] = true
		if _, err := p.c.Expect(lex.Assign); err != nil {
			return nil, err
		}
		switch key.Str {
		case "vip", "backend":
			t, err := p.c.Expect(lex.String)
			if err != nil {
				return nil, err
			}
			ap, perr := parseLBAddr(t.Str)
			if perr != nil {
				return nil, lex.Errorf(t.Pos, "commit_lb_aff %s: %v", key.Str, perr)
			}
			if key.Str == "vip" {
				a.VIP = ap
			} else {
				a.Backend = ap
			}
		case "proto":
			t := p.c.Peek()
			if t.Kind != lex.Ident || (t.Str != "tcp" && t.Str != "udp" && t.Str != "sctp") {
				return nil, p.c.Unexpected("tcp, udp or sctp")
			}
			p.c.Next()
			a.Proto = t.Str
		case "timeout":
			n, err := p.smallInt(65535, "timeout in seconds")
			if err != nil {
				return nil, err
			}
			a.Timeout = n
		default:
			return nil, lex.Errorf(key.Pos, "unknown commit_lb_aff option `%s` (known: vip, backend, proto, timeout)", key.Str)
		}
		if !p.c.Accept(lex.Comma) {
			break
		}
	}
	if _, err := p.c.Expect(lex.RParen); err != nil {
		return nil, err
	}
	for _, k := range []string{"vip", "backend", "timeout"} {
		if !seen[k] {
			return nil, lex.Errorf(at.P, "commit_lb_aff needs `%s`", k)
		}
	}
	switch {
	case a.VIP.Addr().Is4() != a.Backend.Addr().Is4():
		return nil, lex.Errorf(at.P, "commit_lb_aff: vip %s and backend %s are of different address families", a.VIP.Addr(), a.Backend.Addr())
	case a.VIP.Port() != 0 && a.Proto == "":
		return nil, lex.Errorf(at.P, "commit_lb_aff: vip %s has a port, so `proto` (tcp, udp or sctp) is needed", lbAddrString(a.VIP))
	case a.VIP.Port() == 0 && a.Proto != "":
		return nil, lex.Errorf(at.P, "commit_lb_aff: `proto` needs a vip with a port")
	}
	// The learned flow matches the client address read from the packet.
	if a.VIP.Addr().Is4() {
		p.addPrereq("ip4")
	} else {
		p.addPrereq("ip6")
	}
	return a, p.expectSemi()
}

func addrBits(a netip.Addr) bits.U128 {
	if a.Is4() {
		b := a.As4()
		return bits.FromBytes(b[:])
	}
	b := a.As16()
	return bits.FromBytes(b[:])
}

var lbAffProtos = map[string]struct {
	num uint64
	dst of.Field
}{"tcp": {6, of.TCPDst}, "udp": {17, of.UDPDst}, "sctp": {132, of.SCTPDst}}

func (e *encoder) commitLBAff(a *CommitLBAff, out of.Actions) (of.Actions, error) {
	table, err := e.lookupTable(a.P, "LBAffinityTable", e.p.LBAffinityTable)
	if err != nil {
		return nil, err
	}
	l := of.Learn{Table: table, IdleTimeout: a.Timeout, Priority: of.DefaultPriority, DeleteLearned: true}
	match := func(f of.Field, v bits.U128) {
		l.Specs = append(l.Specs, of.LearnSpec{Kind: of.LearnMatch, Dst: of.Whole(f), Value: v})
	}
	load := func(dst of.Subfield, v bits.U128) {
		l.Specs = append(l.Specs, of.LearnSpec{Kind: of.LearnLoad, Dst: dst, Value: v})
	}
	md := of.Whole(of.Metadata)
	l.Specs = append(l.Specs, of.LearnSpec{Kind: of.LearnMatch, Dst: md, Src: md})
	src, dst, backend, ethType := of.IPSrc, of.IPDst, LBAffBackendIP4, uint64(0x0800)
	if a.VIP.Addr().Is6() {
		src, dst, backend, ethType = of.IPv6Src, of.IPv6Dst, LBAffBackendIP6, 0x86dd
	}
	match(of.EthType, u(ethType))
	l.Specs = append(l.Specs, of.LearnSpec{Kind: of.LearnMatch, Dst: of.Whole(src), Src: of.Whole(src)})
	match(dst, addrBits(a.VIP.Addr()))
	if a.VIP.Port() != 0 {
		pr := lbAffProtos[a.Proto]
		match(of.IPProto, u(pr.num))
		match(pr.dst, u(uint64(a.VIP.Port())))
	}
	load(backend, addrBits(a.Backend.Addr()))
	if a.Backend.Port() != 0 {
		load(LBAffBackendPort, u(uint64(a.Backend.Port())))
	}
	load(LookupLBAffResult, u(1))
	return append(out, l), nil
}

// commitLBAff in a trace: the learned flow is not kept (a trace has no
// state), the step only reports what would be learned.
func (x *executor) commitLBAff(a *CommitLBAff, p *of.Packet, step *Step) {
	client := p.Get(of.IPSrc)
	f := lex.IPv4
	if a.VIP.Addr().Is6() {
		client, f = p.Get(of.IPv6Src), lex.IPv6
	}
	step.Note = fmt.Sprintf("client %s → vip %s sticks to backend %s for %d s", lex.FormatValue(client, f),
		lbAddrString(a.VIP), lbAddrString(a.Backend), a.Timeout)
}
