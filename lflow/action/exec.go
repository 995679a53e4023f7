package action

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
)

// ExecContext is what Execute needs beyond the actions and the packet. It is
// filled by the trace simulator; every function field is optional.
type ExecContext struct {
	// Pipeline and Table locate the logical flow whose actions run.
	Pipeline Pipeline
	Table    int
	// LookupPort resolves port names in string assignments
	// (`outport = "lsp1";`) to tunnel keys. Required if such assignments run.
	LookupPort func(name string) (uint32, bool)
	// CTState returns the ct_state a packet has after its next pass through
	// conntrack (trace's --ct flags, consumed one per call). Execute adds
	// of.CSTrk (and of.CSDNAT/of.CSSNAT for NAT actions). Nil means
	// of.CSNew.
	CTState func() uint32
	// LBDst selects the ct_lb backend (trace's --lb-dst): the backend with
	// this address (and port, if the backend has one). Zero or no match:
	// the first backend.
	LBDst netip.AddrPort
	// LookupMAC answers get_arp/get_nd: the MAC bound to ip on the logical
	// port with key port (ip is right-aligned: IPv4 in the low 32 bits).
	LookupMAC func(port uint32, ip bits.U128, ipv6 bool) (mac bits.U128, ok bool)
	// LookupFDB answers get_fdb/lookup_fdb: the key of the port on which
	// MAC was learned in this datapath.
	LookupFDB func(mac bits.U128) (port uint32, ok bool)
	// PacketLen is the packet length check_pkt_larger compares against.
	PacketLen int
	// DNSLookup answers dns_lookup: whether the DNS table resolves the
	// query in the packet.
	DNSLookup func(p *of.Packet) bool
	// SelectIndex picks the select choice (0-based) among n; nil picks 0.
	SelectIndex func(n int) int
	// LBHairpin answers chk_lb_hairpin (reply false) and
	// chk_lb_hairpin_reply (reply true) for the packet.
	LBHairpin func(p *of.Packet, reply bool) bool
	// LBAffinity answers chk_lb_aff: whether an affinity flow learned
	// earlier matches the packet; when it does, it also loads the backend
	// into LBAffBackendIP4/IP6 and LBAffBackendPort as the learned flow
	// would. nil: no affinity state (every chk_lb_aff is false).
	LBAffinity func(p *of.Packet) bool
	// Router selects the conntrack zone registers as in EncodeParams;
	// Zones zero means DefaultZones().
	Router bool
	Zones  Zones
}

// StepKind says what an executed action did.
type StepKind uint8

const (
	// StepSet: an assignment, exchange or decrement changed the packet.
	StepSet StepKind = iota
	// StepNext: the packet continues at Pipeline/Table (`next`). In OVS
	// this is a resubmit: actions after it run when that table returns.
	StepNext
	// StepOutput: `output;` (ingress: on to the egress pipeline; egress:
	// out of the logical port in outport).
	StepOutput
	// StepCT: the packet went through conntrack and continues, as the
	// copy in Packet (with ct_state, and NAT applied), at Pipeline/Table
	// after the current actions finish (ct_next, ct_dnat, ct_snat, ct_lb,
	// ct_commit_nat and the *_in_czone forms).
	StepCT
	// StepCommit: ct_commit stored the connection (Packet shows ct_mark
	// and ct_label as committed).
	StepCommit
	// StepCTClear: ct_clear reset the conntrack fields.
	StepCTClear
	// StepClone: clone ran Children on a copy of the packet.
	StepClone
	// StepController: a block action (arp, icmp4, nd_na, reject, ...) built
	// the packet in Packet and ran Children on it (in the real system the
	// controller does this).
	StepController
	// StepGetMAC: get_arp/get_nd looked up a MAC binding (Found) and set
	// eth.dst.
	StepGetMAC
	// StepPutMAC: put_arp/put_nd sent a MAC binding to the controller.
	StepPutMAC
	// StepLog: log sent the packet to the controller for logging.
	StepLog
	// StepTTLExpired: ip.ttl-- found TTL 0 or 1; processing stops.
	StepTTLExpired
	// StepLookup: a function-call assignment (get_fdb, lookup_fdb,
	// lookup_arp[_ip], lookup_nd[_ip], check_pkt_larger, chk_lb_hairpin*,
	// put_dhcp_opts, dns_lookup) stored its result; Found is the Boolean
	// result (for get_fdb: a port was found).
	StepLookup
	// StepPutFDB: put_fdb sent a learned MAC to the controller.
	StepPutFDB
	// StepSvcCheck: handle_svc_check sent the packet to the controller.
	StepSvcCheck
	// StepSNATToVIP: ct_snat_to_vip committed the hairpinned connection
	// with its source translated to the load balancer's VIP.
	StepSNATToVIP
	// StepLBAffinity: commit_lb_aff would learn an affinity flow (a trace
	// keeps no learned state: chk_lb_aff consults ExecContext.LBAffinity).
	StepLBAffinity
)

var stepNames = [...]string{"set", "next", "output", "ct", "commit", "ct_clear", "clone", "controller", "get_mac", "put_mac", "log", "ttl_expired", "lookup", "put_fdb", "svc_check", "snat_to_vip", "lb_affinity"}

func (k StepKind) String() string {
	if int(k) < len(stepNames) {
		return stepNames[k]
	}
	return fmt.Sprintf("StepKind(%d)", int(k))
}

// Step is one executed action.
type Step struct {
	Kind   StepKind
	Action Action
	// Pipeline and Table: where the packet continues (StepNext, StepCT).
	Pipeline Pipeline
	Table    int
	// Packet is a snapshot of the packet after the action (for StepCT the
	// recirculated packet; for StepController the generated packet before
	// its nested actions ran).
	Packet of.Packet
	// Children are the nested actions' results (StepClone, StepController).
	Children *Result
	// Backend is the chosen ct_lb backend (StepCT from ct_lb/ct_lb_mark).
	Backend *Backend
	// Found reports a get_arp/get_nd hit.
	Found bool
	// Note is a short human-readable detail ("ct_state=new|trk", ...).
	Note string
}

// Result is the outcome of Execute: one Step per executed action, in order.
type Result struct {
	Steps []Step
	// Stopped is true when processing halted early (TTL expired).
	Stopped bool
}

// Continues reports whether the packet went anywhere (next, output or a
// conntrack recirculation); false means the actions dropped it.
func (r *Result) Continues() bool {
	for _, s := range r.Steps {
		switch s.Kind {
		case StepNext, StepOutput, StepCT:
			return true
		}
	}
	return false
}

// Execute runs actions on packet p (which it modifies as OVS would) and
// returns what happened, for the trace simulator to follow. Errors (an
// unknown port name in an assignment, say) carry the action's position.
func Execute(as Actions, p *of.Packet, ctx *ExecContext) (*Result, error) {
	if ctx == nil {
		ctx = &ExecContext{}
	}
	x := &executor{ctx: ctx}
	return x.run(as, p, 0)
}

type executor struct {
	ctx *ExecContext
}

func (x *executor) zone(kind string) of.Subfield {
	z := x.ctx.Zones
	if z == (Zones{}) {
		z = DefaultZones()
	}
	switch {
	case kind == "snat": // on switches too (see encoder.zone)
		return z.SNAT
	case !x.ctx.Router:
		return z.CT
	}
	return z.DNAT
}

func (x *executor) run(as Actions, p *of.Packet, depth int) (*Result, error) {
	r := &Result{Steps: make([]Step, 0, len(as))}
	for _, a := range as {
		stop, err := x.action(a, p, r, depth)
		if err != nil {
			return nil, err
		}
		if stop {
			r.Stopped = true
			break
		}
	}
	return r, nil
}

func (x *executor) ctState(extra uint32) uint32 {
	st := uint32(of.CSNew)
	if x.ctx.CTState != nil {
		st = x.ctx.CTState()
	}
	return st | of.CSTrk | extra
}

func ctStateNote(st uint32) string {
	names := []string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"}
	s := ""
	for i, n := range names {
		if st&(1<<uint(i)) != 0 {
			if s != "" {
				s += "|"
			}
			s += n
		}
	}
	return "ct_state=" + s
}

// recirculate returns the packet a ct action continues with.
func (x *executor) recirculate(p *of.Packet, zone of.Subfield, extra uint32) (of.Packet, uint32) {
	c := *p
	st := x.ctState(extra)
	c.Set(of.CTState, bits.From64(uint64(st)))
	c.Set(of.CTZone, p.GetSub(zone))
	return c, st
}

// l4Dst / l4Src return the transport port field for the packet's protocol.
func l4Port(p *of.Packet, src bool) (of.Field, bool) {
	switch p.Get(of.IPProto).Lo {
	case 6:
		if src {
			return of.TCPSrc, true
		}
		return of.TCPDst, true
	case 17:
		if src {
			return of.UDPSrc, true
		}
		return of.UDPDst, true
	case 132:
		if src {
			return of.SCTPSrc, true
		}
		return of.SCTPDst, true
	}
	return of.FieldNone, false
}

func isIPv6(p *of.Packet) bool { return p.Get(of.EthType).Lo == 0x86dd }

// nat rewrites the packet's source or destination address and port.
func nat(p *of.Packet, src bool, addr netip.Addr, port uint16) {
	if addr.Is4() {
		b := addr.As4()
		f := of.IPDst
		if src {
			f = of.IPSrc
		}
		p.Set(f, bits.FromBytes(b[:]))
	} else {
		b := addr.As16()
		f := of.IPv6Dst
		if src {
			f = of.IPv6Src
		}
		p.Set(f, bits.FromBytes(b[:]))
	}
	if port != 0 {
		if f, ok := l4Port(p, src); ok {
			p.Set(f, bits.From64(uint64(port)))
		}
	}
}

func (x *executor) nextTable() (Pipeline, int) { return x.ctx.Pipeline, x.ctx.Table + 1 }

func (x *executor) action(a Action, p *of.Packet, r *Result, depth int) (stop bool, err error) {
	step := Step{Action: a, Kind: StepSet}
	switch a := a.(type) {
	case *Next:
		step.Kind = StepNext
		step.Pipeline, step.Table = x.ctx.Pipeline, a.Table
		if !a.SamePipeline {
			step.Pipeline = a.Pipeline
		}
		if a.Table < 0 {
			step.Table = x.ctx.Table + 1
		}
	case *Output:
		step.Kind = StepOutput
	case *Drop:
		return false, nil
	case *Load:
		if !a.Value.IsString {
			for _, pc := range a.Value.targets(a.Dst.Sub) {
				p.SetSub(pc.dst, pc.v)
			}
			break
		}
		v := bits.Zero
		if a.Value.Str != "" {
			if x.ctx.LookupPort == nil {
				return false, lex.Errorf(a.Value.Pos, "cannot resolve port %s: no port lookup given", lex.Quote(a.Value.Str))
			}
			key, ok := x.ctx.LookupPort(a.Value.Str)
			if !ok {
				return false, lex.Errorf(a.Value.Pos, "unknown logical port %s", lex.Quote(a.Value.Str))
			}
			v = bits.From64(uint64(key))
		}
		p.SetSub(a.Dst.Sub, v)
	case *Move:
		p.SetSub(a.Dst.Sub, p.GetSub(a.Src.Sub))
	case *Exchange:
		va, vb := p.GetSub(a.A.Sub), p.GetSub(a.B.Sub)
		p.SetSub(a.A.Sub, vb)
		p.SetSub(a.B.Sub, va)
	case *DecTTL:
		ttl := p.GetSub(a.Field.Sub)
		if ttl.Cmp(bits.From64(1)) <= 0 {
			step.Kind = StepTTLExpired
			step.Packet = *p
			step.Note = "TTL " + ttl.String() + " expired"
			r.Steps = append(r.Steps, step)
			return true, nil
		}
		p.SetSub(a.Field.Sub, ttl.Sub(bits.From64(1)))
	case *CTNext:
		step.Kind = StepCT
		step.Pipeline, step.Table = x.nextTable()
		var st uint32
		step.Packet, st = x.recirculate(p, x.zone("dnat"), 0)
		step.Note = ctStateNote(st)
		r.Steps = append(r.Steps, step)
		return false, nil
	case *CTCommit:
		step.Kind = StepCommit
		for _, n := range a.Nested {
			if _, err := x.action(n, p, &Result{}, depth); err != nil {
				return false, err
			}
		}
	case *CTNat:
		step.Kind = StepCT
		step.Pipeline, step.Table = x.nextTable()
		// A new translation marks the state dnat/snat; the bare forms only
		// apply what the connection already has, which the trace's ct
		// state flags describe.
		kind, bit := "dnat", uint32(0)
		if a.SNAT && a.Name == "ct_snat" {
			kind = "snat"
		}
		if a.Addr.IsValid() {
			bit = of.CSDNAT
			if a.SNAT {
				bit = of.CSSNAT
			}
		}
		var st uint32
		step.Packet, st = x.recirculate(p, x.zone(kind), bit)
		step.Note = ctStateNote(st)
		if a.Addr.IsValid() {
			nat(&step.Packet, a.SNAT, a.Addr, a.Port)
			step.Note += ", " + kind + " to " + Backend{a.Addr, a.Port}.String()
		}
		r.Steps = append(r.Steps, step)
		return false, nil
	case *CTLB:
		step.Kind = StepCT
		step.Pipeline, step.Table = x.nextTable()
		var st uint32
		bit := uint32(0)
		// Without backends, ct_lb applies the connection's existing
		// translation: the trace's --lb-dst stands for it (as ovn-trace
		// does), when it is of the packet's address family.
		lbDst := len(a.Backends) == 0 && x.ctx.LBDst.IsValid() && x.ctx.LBDst.Addr().Is6() == isIPv6(p)
		if len(a.Backends) > 0 || lbDst {
			bit = of.CSDNAT
		}
		step.Packet, st = x.recirculate(p, x.zone("dnat"), bit)
		step.Note = ctStateNote(st)
		if lbDst {
			b := Backend{x.ctx.LBDst.Addr(), x.ctx.LBDst.Port()}
			step.Backend = &b
			nat(&step.Packet, false, b.Addr, b.Port)
			step.Note += ", existing translation to " + b.String()
		}
		if len(a.Backends) > 0 {
			b := a.Backends[0]
			if x.ctx.LBDst.IsValid() {
				for _, c := range a.Backends {
					if c.Addr == x.ctx.LBDst.Addr() && (c.Port == 0 || c.Port == x.ctx.LBDst.Port()) {
						b = c
						break
					}
				}
			}
			step.Backend = &b
			nat(&step.Packet, false, b.Addr, b.Port)
			for _, m := range a.Marks {
				step.Packet.SetSub(m, bits.Ones(m.Bits()))
			}
			step.Note += ", backend " + b.String()
		}
		r.Steps = append(r.Steps, step)
		return false, nil
	case *CTClear:
		step.Kind = StepCTClear
		for _, f := range []of.Field{of.CTState, of.CTZone, of.CTMark, of.CTLabel} {
			p.Set(f, bits.Zero)
		}
	case *Nested:
		child := *p
		if a.Name == "clone" {
			step.Kind = StepClone
		} else {
			step.Kind = StepController
			buildPacket(a.Name, &child)
		}
		step.Packet = child
		sub, err := x.run(a.Actions, &child, depth+1)
		if err != nil {
			return false, err
		}
		step.Children = sub
		r.Steps = append(r.Steps, step)
		return false, nil
	case *GetMAC:
		step.Kind = StepGetMAC
		port := uint32(p.GetSub(a.Port.Sub).Lo)
		ip := p.GetSub(a.IP.Sub)
		var mac bits.U128
		if x.ctx.LookupMAC != nil {
			mac, step.Found = x.ctx.LookupMAC(port, ip, a.ND)
		}
		if !step.Found {
			mac = bits.Zero
		}
		p.Set(of.EthDst, mac)
		if step.Found {
			step.Note = "found " + of.MACString(mac)
		} else {
			step.Note = "no binding: eth.dst = 00:00:00:00:00:00"
		}
	case *PutMAC:
		step.Kind = StepPutMAC
		f := lex.IPv4
		if a.ND {
			f = lex.IPv6
		}
		step.Note = fmt.Sprintf("port %d: %s is at %s", p.GetSub(a.Port.Sub).Lo,
			lex.FormatValue(p.GetSub(a.IP.Sub), f), of.MACString(p.GetSub(a.MAC.Sub)))
	case *Call:
		step.Kind = StepLookup
		x.call(a, p, &step)
	case *PutFDB:
		step.Kind = StepPutFDB
		step.Note = fmt.Sprintf("port %d: %s", p.GetSub(a.Port.Sub).Lo, of.MACString(p.GetSub(a.MAC.Sub)))
	case *Select:
		// The group's bucket stores the value and goes to the next table.
		i := 0
		if x.ctx.SelectIndex != nil {
			if i = x.ctx.SelectIndex(len(a.Choices)); i < 0 || i >= len(a.Choices) {
				i = 0
			}
		}
		p.SetSub(a.Dst.Sub, bits.From64(uint64(a.Choices[i].Value)))
		step.Kind = StepNext
		step.Pipeline, step.Table = x.nextTable()
		step.Note = fmt.Sprintf("selected %d", a.Choices[i].Value)
	case *PutNDRAOpts:
		step.Kind = StepLookup
		x.putNDRAOpts(a, p, &step)
	case *PutDHCPOpts:
		step.Kind = StepLookup
		x.putDHCPOpts(a, p, &step)
	case *DNSLookup:
		step.Kind = StepLookup
		x.dnsLookup(a, p, &step)
	case *SNATToVIP:
		step.Kind = StepSNATToVIP
	case *CommitLBAff:
		step.Kind = StepLBAffinity
		x.commitLBAff(a, p, &step)
	case *SvcCheck:
		step.Kind = StepSvcCheck
		step.Note = fmt.Sprintf("port %d", p.GetSub(a.Port.Sub).Lo)
	case *Log:
		step.Kind = StepLog
		step.Note = fmt.Sprintf("name=%q verdict=%s severity=%s", a.Name, a.Verdict, a.Severity)
	default:
		return false, fmt.Errorf("%v: cannot execute %T", a.At(), a)
	}
	step.Packet = *p
	r.Steps = append(r.Steps, step)
	return false, nil
}

// clearL3L4 zeroes the IP and transport fields before a block builds a new
// packet of another kind.
func clearL3L4(p *of.Packet) {
	for _, f := range []of.Field{of.IPSrc, of.IPDst, of.IPv6Src, of.IPv6Dst, of.IPv6Label, of.IPProto,
		of.IPDSCP, of.IPECN, of.IPTTL, of.IPFrag, of.TCPSrc, of.TCPDst, of.TCPFlags, of.UDPSrc, of.UDPDst,
		of.SCTPSrc, of.SCTPDst, of.ICMPv4Type, of.ICMPv4Code, of.ICMPv6Type, of.ICMPv6Code,
		of.NDTarget, of.NDSLL, of.NDTLL, of.ARPOp, of.ARPSPA, of.ARPTPA, of.ARPSHA, of.ARPTHA} {
		p.Set(f, bits.Zero)
	}
}

func u(v uint64) bits.U128 { return bits.From64(v) }

// buildPacket turns a copy of the packet into the packet a block action
// generates, before the block's nested actions run:
//
//   - arp: an ARP request for ip4.dst: eth.dst broadcast, arp.op 1,
//     arp.sha = eth.src, arp.spa = ip4.src, arp.tpa = ip4.dst.
//   - nd_ns: a neighbor solicitation for ip6.dst sent to its
//     solicited-node multicast address.
//   - nd_na: a neighbor advertisement answering the solicitation:
//     eth.dst = eth.src, ip6.dst = ip6.src, ip6.src = nd.target.
//   - icmp4, icmp4_error: ICMPv4 destination unreachable (type 3, code 1),
//     TTL 255. icmp6, icmp6_error: ICMPv6 destination unreachable (type 1,
//     code 0), hop limit 255.
//   - tcp_reset: the TCP segment with flags RST|ACK.
//   - reject: tcp_reset for TCP, else ICMP port unreachable (v4 type 3
//     code 3, v6 type 1 code 4).
//
// Addresses are not swapped: the nested actions do that, as in OVN's flows.
func buildPacket(name string, p *of.Packet) {
	ethSrc := p.Get(of.EthSrc)
	ip4Src, ip4Dst := p.Get(of.IPSrc), p.Get(of.IPDst)
	ip6Src, ip6Dst := p.Get(of.IPv6Src), p.Get(of.IPv6Dst)
	target := p.Get(of.NDTarget)
	switch name {
	case "arp":
		clearL3L4(p)
		p.Set(of.EthDst, bits.Ones(48))
		p.Set(of.EthType, u(0x0806))
		p.Set(of.ARPOp, u(1))
		p.Set(of.ARPSHA, ethSrc)
		p.Set(of.ARPSPA, ip4Src)
		p.Set(of.ARPTPA, ip4Dst)
	case "nd_ns":
		clearL3L4(p)
		low24 := ip6Dst.And(bits.Ones(24))
		p.Set(of.EthDst, u(0x3333ff000000).Or(low24))
		p.Set(of.EthType, u(0x86dd))
		p.Set(of.IPv6Src, ip6Src)
		p.Set(of.IPv6Dst, bits.U128{Hi: 0xff02 << 48, Lo: 0x1ff000000}.Or(low24))
		p.Set(of.IPProto, u(58))
		p.Set(of.IPTTL, u(255))
		p.Set(of.ICMPv6Type, u(135))
		p.Set(of.NDTarget, ip6Dst)
		p.Set(of.NDSLL, ethSrc)
	case "nd_na":
		clearL3L4(p)
		p.Set(of.EthDst, ethSrc)
		p.Set(of.EthType, u(0x86dd))
		p.Set(of.IPv6Src, target)
		p.Set(of.IPv6Dst, ip6Src)
		p.Set(of.IPProto, u(58))
		p.Set(of.IPTTL, u(255))
		p.Set(of.ICMPv6Type, u(136))
		p.Set(of.NDTarget, target)
	case "icmp4", "icmp4_error":
		icmp4(p, ip4Src, ip4Dst, 3, 1)
	case "icmp6", "icmp6_error":
		icmp6(p, ip6Src, ip6Dst, 1, 0)
	case "tcp_reset":
		p.Set(of.TCPFlags, u(0x014))
	case "reject":
		switch {
		case p.Get(of.IPProto).Lo == 6:
			p.Set(of.TCPFlags, u(0x014))
		case isIPv6(p):
			icmp6(p, ip6Src, ip6Dst, 1, 4)
		default:
			icmp4(p, ip4Src, ip4Dst, 3, 3)
		}
	}
}

func icmp4(p *of.Packet, src, dst bits.U128, typ, code uint64) {
	clearL3L4(p)
	p.Set(of.EthType, u(0x0800))
	p.Set(of.IPSrc, src)
	p.Set(of.IPDst, dst)
	p.Set(of.IPProto, u(1))
	p.Set(of.IPTTL, u(255))
	p.Set(of.ICMPv4Type, u(typ))
	p.Set(of.ICMPv4Code, u(code))
}

func icmp6(p *of.Packet, src, dst bits.U128, typ, code uint64) {
	clearL3L4(p)
	p.Set(of.EthType, u(0x86dd))
	p.Set(of.IPv6Src, src)
	p.Set(of.IPv6Dst, dst)
	p.Set(of.IPProto, u(58))
	p.Set(of.IPTTL, u(255))
	p.Set(of.ICMPv6Type, u(typ))
	p.Set(of.ICMPv6Code, u(code))
}

// call evaluates a function-call assignment and stores its result.
func (x *executor) call(a *Call, p *of.Packet, step *Step) {
	var result bits.U128
	switch a.Func {
	case "check_pkt_larger":
		step.Found = x.ctx.PacketLen > a.Len
		step.Note = fmt.Sprintf("packet length %d > %d: %v", x.ctx.PacketLen, a.Len, step.Found)
	case "get_fdb":
		mac := p.GetSub(a.Args[0].Sub)
		if x.ctx.LookupFDB != nil {
			var port uint32
			if port, step.Found = x.ctx.LookupFDB(mac); step.Found {
				result = bits.From64(uint64(port))
			}
		}
		step.Note = fmt.Sprintf("%s is on port %d", of.MACString(mac), result.Lo)
		if !step.Found {
			step.Note = of.MACString(mac) + " not learned: 0"
		}
		p.SetSub(a.Dst.Sub, result)
		return
	case "chk_lb_hairpin", "chk_lb_hairpin_reply":
		if x.ctx.LBHairpin != nil {
			step.Found = x.ctx.LBHairpin(p, a.Func == "chk_lb_hairpin_reply")
		}
		step.Note = fmt.Sprintf("hairpin: %v", step.Found)
	case "chk_lb_aff":
		if x.ctx.LBAffinity != nil {
			step.Found = x.ctx.LBAffinity(p)
		}
		step.Note = fmt.Sprintf("affinity session: %v", step.Found)
	case "lookup_fdb":
		port, mac := uint32(p.GetSub(a.Args[0].Sub).Lo), p.GetSub(a.Args[1].Sub)
		if x.ctx.LookupFDB != nil {
			got, ok := x.ctx.LookupFDB(mac)
			step.Found = ok && got == port
		}
		step.Note = fmt.Sprintf("%s learned on port %d: %v", of.MACString(mac), port, step.Found)
	default: // lookup_arp, lookup_arp_ip, lookup_nd, lookup_nd_ip
		v6 := strings.HasPrefix(a.Func, "lookup_nd")
		port, ip := uint32(p.GetSub(a.Args[0].Sub).Lo), p.GetSub(a.Args[1].Sub)
		f := lex.IPv4
		if v6 {
			f = lex.IPv6
		}
		if x.ctx.LookupMAC != nil {
			mac, ok := x.ctx.LookupMAC(port, ip, v6)
			step.Found = ok
			if len(a.Args) == 3 {
				step.Found = ok && mac == p.GetSub(a.Args[2].Sub)
			}
		}
		step.Note = fmt.Sprintf("binding for %s on port %d: %v", lex.FormatValue(ip, f), port, step.Found)
	}
	if step.Found {
		result = bits.From64(1)
	}
	// Like the encoded lookup, leave the result in the scratch flag bit too.
	switch a.Func {
	case "lookup_fdb":
		p.SetSub(LookupFDBResult, result)
	case "chk_lb_hairpin", "chk_lb_hairpin_reply":
		p.SetSub(LookupHairpinResult, result)
	case "chk_lb_aff":
		p.SetSub(LookupLBAffResult, result)
	case "check_pkt_larger":
	default:
		p.SetSub(LookupMACResult, result)
	}
	p.SetSub(a.Dst.Sub, result)
}

// String summarizes the result, one executed action per line, nested
// results indented (for logs and test failures):
//
//	next;  => next ingress table 11
//	ct_next;  => ct ingress table 11 (ct_state=new|trk)
func (r *Result) String() string {
	var sb strings.Builder
	r.appendTo(&sb, "")
	return sb.String()
}

func (r *Result) appendTo(sb *strings.Builder, indent string) {
	for _, s := range r.Steps {
		sb.WriteString(indent)
		sb.WriteString(s.Action.String())
		sb.WriteString("  => ")
		sb.WriteString(s.Kind.String())
		switch s.Kind {
		case StepNext, StepCT:
			fmt.Fprintf(sb, " %s table %d", s.Pipeline, s.Table)
		}
		if s.Note != "" {
			sb.WriteString(" (" + s.Note + ")")
		}
		sb.WriteByte('\n')
		if s.Children != nil {
			s.Children.appendTo(sb, indent+"    ")
		}
	}
	if r.Stopped {
		sb.WriteString(indent + "(stopped)\n")
	}
}
