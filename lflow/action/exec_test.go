package action_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/govn/govn/lflow/action"
	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

func u(v uint64) bits.U128 { return bits.From64(v) }

func ip4(s string) bits.U128 {
	b := netip.MustParseAddr(s).As4()
	return bits.FromBytes(b[:])
}

// tcpPacket is an IPv4 TCP packet 10.0.0.1:5555 -> 10.0.0.100:80 from port 1.
func tcpPacket() of.Packet {
	var p of.Packet
	p.Set(of.Reg14, u(1))
	p.Set(of.Reg13, u(7)) // conntrack zone of the input port
	p.Set(of.Metadata, u(1))
	p.Set(of.EthSrc, u(0x0a0000000001))
	p.Set(of.EthDst, u(0x0a00000000fe))
	p.Set(of.EthType, u(0x0800))
	p.Set(of.IPSrc, ip4("10.0.0.1"))
	p.Set(of.IPDst, ip4("10.0.0.100"))
	p.Set(of.IPProto, u(6))
	p.Set(of.IPTTL, u(64))
	p.Set(of.TCPSrc, u(5555))
	p.Set(of.TCPDst, u(80))
	return p
}

func execute(t *testing.T, src string, p *of.Packet, ctx *action.ExecContext) *action.Result {
	t.Helper()
	parsed, err := action.Parse(src, symtab.Default())
	if err != nil {
		t.Fatalf("parse %q: %v", src, err)
	}
	if ctx == nil {
		ctx = &action.ExecContext{}
	}
	if ctx.LookupPort == nil {
		ctx.LookupPort = func(name string) (uint32, bool) { k, ok := ports[name]; return k, ok }
	}
	if ctx.Table == 0 {
		ctx.Table = 10
	}
	r, err := action.Execute(parsed.Actions, p, ctx)
	if err != nil {
		t.Fatalf("execute %q: %v", src, err)
	}
	return r
}

func kinds(r *action.Result) string {
	var ks []string
	for _, s := range r.Steps {
		ks = append(ks, s.Kind.String())
	}
	return strings.Join(ks, " ")
}

func expectField(t *testing.T, p *of.Packet, f of.Field, want bits.U128) {
	t.Helper()
	if got := p.Get(f); got != want {
		t.Errorf("%s = %s, want %s", f, got.Hex(), want.Hex())
	}
}

func TestExecuteAssignments(t *testing.T) {
	p := tcpPacket()
	r := execute(t, `outport = "p2"; eth.src <-> eth.dst; ip.ttl--; reg0[0..15] = 0x1234; reg1 = reg0; flags.loopback = 1; next;`, &p, nil)
	if got := kinds(r); got != "set set set set set set next" {
		t.Fatalf("steps = %s", got)
	}
	expectField(t, &p, of.Reg15, u(2))
	expectField(t, &p, of.EthSrc, u(0x0a00000000fe))
	expectField(t, &p, of.EthDst, u(0x0a0000000001))
	expectField(t, &p, of.IPTTL, u(63))
	expectField(t, &p, of.Reg0, u(0x1234))
	expectField(t, &p, of.Reg1, u(0x1234))
	expectField(t, &p, of.Reg10, u(1))
	last := r.Steps[len(r.Steps)-1]
	if last.Pipeline != action.Ingress || last.Table != 11 || last.Packet.Get(of.Reg15) != u(2) {
		t.Errorf("next step = %+v", last)
	}
	// The snapshot of the first step does not see later changes.
	if r.Steps[0].Packet.Get(of.IPTTL) != u(64) {
		t.Errorf("snapshot of step 0 changed: ttl %s", r.Steps[0].Packet.Get(of.IPTTL))
	}
	if !r.Continues() || r.Stopped {
		t.Error("result should continue")
	}
}

func TestExecuteWideRegisters(t *testing.T) {
	var p of.Packet
	execute(t, `xxreg0 = 0x11111111222222223333333344444444; xreg4 = 0x5555555566666666; reg9[31] = 1;`, &p, nil)
	expectField(t, &p, of.Reg0, u(0x11111111))
	expectField(t, &p, of.Reg3, u(0x44444444))
	expectField(t, &p, of.Reg8, u(0x55555555))
	expectField(t, &p, of.Reg9, u(0xe6666666))
}

func TestExecuteTTLExpired(t *testing.T) {
	p := tcpPacket()
	p.Set(of.IPTTL, u(1))
	r := execute(t, `ip.ttl--; next;`, &p, nil)
	if kinds(r) != "ttl_expired" || !r.Stopped || r.Continues() {
		t.Fatalf("steps = %s stopped=%v", kinds(r), r.Stopped)
	}
	expectField(t, &p, of.IPTTL, u(1))
}

func TestExecuteNextVariants(t *testing.T) {
	p := tcpPacket()
	r := execute(t, `next(3); next(pipeline=egress, table=2); output;`, &p, &action.ExecContext{Pipeline: action.Ingress, Table: 10})
	if kinds(r) != "next next output" {
		t.Fatalf("steps = %s", kinds(r))
	}
	if s := r.Steps[0]; s.Pipeline != action.Ingress || s.Table != 3 {
		t.Errorf("next(3) -> %v %d", s.Pipeline, s.Table)
	}
	if s := r.Steps[1]; s.Pipeline != action.Egress || s.Table != 2 {
		t.Errorf("next(pipeline=egress, table=2) -> %v %d", s.Pipeline, s.Table)
	}
}

func TestExecuteCTNext(t *testing.T) {
	p := tcpPacket()
	states := []uint32{of.CSEst, of.CSNew}
	ctx := &action.ExecContext{CTState: func() uint32 { s := states[0]; states = states[1:]; return s }}
	r := execute(t, `ct_next;`, &p, ctx)
	s := r.Steps[0]
	if s.Kind != action.StepCT || s.Table != 11 {
		t.Fatalf("step = %+v", s)
	}
	expectField(t, &s.Packet, of.CTState, u(of.CSEst|of.CSTrk))
	expectField(t, &s.Packet, of.CTZone, u(7))
	if s.Note != "ct_state=est|trk" {
		t.Errorf("note = %q", s.Note)
	}
	// The live packet continuing after ct() is not the recirculated one.
	expectField(t, &p, of.CTState, u(0))
	// The second ct_next consumes the next state.
	r = execute(t, `ct_next;`, &p, ctx)
	expectField(t, &r.Steps[0].Packet, of.CTState, u(of.CSNew|of.CSTrk))
}

func TestExecuteRouterZones(t *testing.T) {
	p := tcpPacket()
	p.Set(of.Reg11, u(21))
	p.Set(of.Reg12, u(22))
	r := execute(t, `ct_snat(172.16.0.1);`, &p, &action.ExecContext{Router: true})
	s := r.Steps[0]
	expectField(t, &s.Packet, of.CTZone, u(22))
	expectField(t, &s.Packet, of.IPSrc, ip4("172.16.0.1"))
	expectField(t, &s.Packet, of.TCPSrc, u(5555))
	expectField(t, &s.Packet, of.CTState, u(of.CSNew|of.CSTrk|of.CSSNAT))
	r = execute(t, `ct_dnat;`, &p, &action.ExecContext{Router: true})
	expectField(t, &r.Steps[0].Packet, of.CTZone, u(21))
	expectField(t, &r.Steps[0].Packet, of.IPDst, ip4("10.0.0.100"))
	// The bare form applies existing NAT only: the state comes from CTState.
	expectField(t, &r.Steps[0].Packet, of.CTState, u(of.CSNew|of.CSTrk))
	r = execute(t, `ct_dnat;`, &p, &action.ExecContext{Router: true, CTState: func() uint32 { return of.CSEst | of.CSRpl | of.CSDNAT }})
	expectField(t, &r.Steps[0].Packet, of.CTState, u(of.CSEst|of.CSRpl|of.CSDNAT|of.CSTrk))
}

func TestExecuteDNATWithPort(t *testing.T) {
	p := tcpPacket()
	r := execute(t, `ct_dnat(10.0.0.9:8000);`, &p, nil)
	s := r.Steps[0]
	expectField(t, &s.Packet, of.IPDst, ip4("10.0.0.9"))
	expectField(t, &s.Packet, of.TCPDst, u(8000))
	expectField(t, &s.Packet, of.CTState, u(of.CSNew|of.CSTrk|of.CSDNAT))
	expectField(t, &p, of.IPDst, ip4("10.0.0.100"))
}

func TestExecuteLB(t *testing.T) {
	const lb = `ct_lb_mark(backends=10.0.0.2:80,10.0.0.3:8080);`
	p := tcpPacket()
	r := execute(t, lb, &p, nil)
	s := r.Steps[0]
	if s.Backend == nil || s.Backend.String() != "10.0.0.2:80" {
		t.Fatalf("default backend = %v", s.Backend)
	}
	p = tcpPacket()
	r = execute(t, lb, &p, &action.ExecContext{LBDst: netip.MustParseAddrPort("10.0.0.3:8080")})
	s = r.Steps[0]
	if s.Kind != action.StepCT || s.Table != 11 || s.Backend == nil || s.Backend.String() != "10.0.0.3:8080" {
		t.Fatalf("step = %+v", s)
	}
	expectField(t, &s.Packet, of.IPDst, ip4("10.0.0.3"))
	expectField(t, &s.Packet, of.TCPDst, u(8080))
	expectField(t, &s.Packet, of.CTMark, u(1<<symtab.CTMarkNatted))
	expectField(t, &p, of.TCPDst, u(80))

	// Without backends ct_lb_mark keeps the connection's translation,
	// which --lb-dst stands for (ovn-trace does the same); without
	// --lb-dst, or of the other address family, nothing is translated.
	p = tcpPacket()
	r = execute(t, `ct_lb_mark;`, &p, &action.ExecContext{LBDst: netip.MustParseAddrPort("10.0.0.3:8080")})
	s = r.Steps[0]
	if s.Backend == nil || s.Backend.String() != "10.0.0.3:8080" {
		t.Fatalf("argless ct_lb_mark with LBDst: step = %+v", s)
	}
	expectField(t, &s.Packet, of.IPDst, ip4("10.0.0.3"))
	expectField(t, &s.Packet, of.TCPDst, u(8080))
	expectField(t, &s.Packet, of.CTState, u(of.CSNew|of.CSTrk|of.CSDNAT))
	for _, ctx := range []*action.ExecContext{nil, {LBDst: netip.MustParseAddrPort("[fd00::3]:8080")}} {
		p = tcpPacket()
		r = execute(t, `ct_lb_mark;`, &p, ctx)
		if s = r.Steps[0]; s.Backend != nil {
			t.Errorf("argless ct_lb_mark with %+v translated to %v", ctx, s.Backend)
		}
		expectField(t, &s.Packet, of.IPDst, ip4("10.0.0.100"))
	}
}

func TestExecuteCTCommitAndClear(t *testing.T) {
	p := tcpPacket()
	p.Set(of.Reg0, u(0xabcd))
	r := execute(t, `ct_commit { ct_mark.blocked = 1; ct_label.label = reg0; }; ct_clear;`, &p, nil)
	if kinds(r) != "commit ct_clear" {
		t.Fatalf("steps = %s", kinds(r))
	}
	c := r.Steps[0].Packet
	expectField(t, &c, of.CTMark, u(1))
	expectField(t, &c, of.CTLabel, bits.U128{Hi: 0xabcd << 32})
	expectField(t, &p, of.CTMark, u(0))
	expectField(t, &p, of.CTLabel, u(0))
}

func TestExecuteClone(t *testing.T) {
	p := tcpPacket()
	r := execute(t, `clone { outport = "p2"; output; }; outport = "p1"; next;`, &p, nil)
	if kinds(r) != "clone set next" {
		t.Fatalf("steps = %s", kinds(r))
	}
	child := r.Steps[0].Children
	if kinds(child) != "set output" {
		t.Fatalf("clone steps = %s", kinds(child))
	}
	expectField(t, &child.Steps[1].Packet, of.Reg15, u(2))
	expectField(t, &p, of.Reg15, u(1))
}

func TestExecuteARP(t *testing.T) {
	p := tcpPacket()
	r := execute(t, `arp { eth.dst = ff:ff:ff:ff:ff:ff; arp.op = 1; output; };`, &p, nil)
	s := r.Steps[0]
	if s.Kind != action.StepController || kinds(s.Children) != "set set output" {
		t.Fatalf("step %s children %s", s.Kind, kinds(s.Children))
	}
	out := s.Children.Steps[2].Packet
	expectField(t, &out, of.EthType, u(0x0806))
	expectField(t, &out, of.ARPOp, u(1))
	expectField(t, &out, of.ARPSPA, ip4("10.0.0.1"))
	expectField(t, &out, of.ARPTPA, ip4("10.0.0.100"))
	expectField(t, &out, of.ARPSHA, u(0x0a0000000001))
	expectField(t, &out, of.EthDst, bits.Ones(48))
	expectField(t, &out, of.IPProto, u(0))
	// The original packet is untouched.
	expectField(t, &p, of.EthType, u(0x0800))
}

func TestExecuteICMPAndReject(t *testing.T) {
	p := tcpPacket()
	r := execute(t, `icmp4 { eth.dst <-> eth.src; ip4.dst <-> ip4.src; output; };`, &p, nil)
	out := r.Steps[0].Children.Steps[2].Packet
	expectField(t, &out, of.IPProto, u(1))
	expectField(t, &out, of.ICMPv4Type, u(3))
	expectField(t, &out, of.ICMPv4Code, u(1))
	expectField(t, &out, of.IPDst, ip4("10.0.0.1"))
	expectField(t, &out, of.IPTTL, u(255))

	p = tcpPacket()
	r = execute(t, `reject { output; };`, &p, nil)
	expectField(t, &r.Steps[0].Packet, of.TCPFlags, u(0x014))
	p = tcpPacket()
	p.Set(of.IPProto, u(17))
	r = execute(t, `reject { output; };`, &p, nil)
	expectField(t, &r.Steps[0].Packet, of.ICMPv4Type, u(3))
	expectField(t, &r.Steps[0].Packet, of.ICMPv4Code, u(3))
}

func TestExecuteGetPutARP(t *testing.T) {
	p := tcpPacket()
	p.Set(of.Reg15, u(3))
	lookups := 0
	ctx := &action.ExecContext{LookupMAC: func(port uint32, ip bits.U128, v6 bool) (bits.U128, bool) {
		lookups++
		if port == 3 && ip == ip4("10.0.0.100") && !v6 {
			return u(0x0a0000000064), true
		}
		return bits.Zero, false
	}}
	r := execute(t, `get_arp(outport, ip4.dst); next;`, &p, ctx)
	if kinds(r) != "get_mac next" || !r.Steps[0].Found || lookups != 1 {
		t.Fatalf("steps = %s found=%v lookups=%d", kinds(r), r.Steps[0].Found, lookups)
	}
	expectField(t, &p, of.EthDst, u(0x0a0000000064))
	p.Set(of.IPDst, ip4("10.0.0.200"))
	r = execute(t, `get_arp(outport, ip4.dst);`, &p, ctx)
	if r.Steps[0].Found {
		t.Error("found a binding that does not exist")
	}
	expectField(t, &p, of.EthDst, u(0))

	var a of.Packet
	a.Set(of.Reg14, u(1))
	a.Set(of.EthType, u(0x0806))
	a.Set(of.ARPSPA, ip4("10.0.0.7"))
	a.Set(of.ARPSHA, u(0x0a0000000007))
	r = execute(t, `put_arp(inport, arp.spa, arp.sha);`, &a, nil)
	if r.Steps[0].Kind != action.StepPutMAC || r.Steps[0].Note != "port 1: 10.0.0.7 is at 0a:00:00:00:00:07" {
		t.Errorf("put_arp step = %+v", r.Steps[0])
	}
}

func TestExecuteUnknownPort(t *testing.T) {
	parsed, err := action.Parse(`outport = "nope";`, symtab.Default())
	if err != nil {
		t.Fatal(err)
	}
	p := tcpPacket()
	_, err = action.Execute(parsed.Actions, &p, &action.ExecContext{LookupPort: func(string) (uint32, bool) { return 0, false }})
	if err == nil || err.Error() != `1:11: unknown logical port "nope"` {
		t.Errorf("err = %v", err)
	}
}

func TestExecuteDrop(t *testing.T) {
	p := tcpPacket()
	r := execute(t, `drop;`, &p, nil)
	if len(r.Steps) != 0 || r.Continues() {
		t.Errorf("drop: %s", kinds(r))
	}
	r = execute(t, `log(name="a", verdict=drop);`, &p, nil)
	if kinds(r) != "log" || r.Continues() {
		t.Errorf("log: %s", kinds(r))
	}
}

func TestExecuteFunctions(t *testing.T) {
	p := tcpPacket()
	ctx := &action.ExecContext{
		PacketLen: 1600,
		LookupFDB: func(mac bits.U128) (uint32, bool) { return 2, mac == u(0x0a00000000fe) },
		LookupMAC: func(port uint32, ip bits.U128, v6 bool) (bits.U128, bool) {
			return u(0x0a0000000001), port == 1 && ip == ip4("10.0.0.1") && !v6
		},
	}
	r := execute(t, `reg9[1] = check_pkt_larger(1514); reg9[2] = check_pkt_larger(1600); outport = get_fdb(eth.dst); reg1 = get_fdb(eth.src);
		reg0[11] = lookup_fdb(outport, eth.dst); reg0[12] = lookup_fdb(inport, eth.dst);
		reg0[13] = lookup_arp(inport, ip4.src, eth.src); reg0[14] = lookup_arp(inport, ip4.src, eth.dst); reg0[15] = lookup_arp_ip(inport, ip4.src);
		put_fdb(inport, eth.src); handle_svc_check(inport);`, &p, ctx)
	if got := kinds(r); got != "lookup lookup lookup lookup lookup lookup lookup lookup lookup put_fdb svc_check" {
		t.Fatalf("steps = %s", got)
	}
	expectField(t, &p, of.Reg9, u(1<<1))
	expectField(t, &p, of.Reg15, u(2))
	expectField(t, &p, of.Reg1, u(0))
	expectField(t, &p, of.Reg0, u(1<<11|1<<13|1<<15))
	if r.Steps[9].Note != "port 1: 0a:00:00:00:00:01" || r.Steps[10].Note != "port 1" {
		t.Errorf("notes %q %q", r.Steps[9].Note, r.Steps[10].Note)
	}
}

func TestParseLimits(t *testing.T) {
	st := symtab.Default()
	deep := strings.Repeat("clone { ", action.MaxDepth+1) + "next;" + strings.Repeat(" };", action.MaxDepth+1)
	if _, err := action.Parse(deep, st); err == nil || !strings.Contains(err.Error(), "nested more than 16 deep") {
		t.Errorf("deep nesting: %v", err)
	}
	ok := strings.Repeat("clone { ", action.MaxDepth) + "next;" + strings.Repeat(" };", action.MaxDepth)
	if _, err := action.Parse(ok, st); err != nil {
		t.Errorf("nesting %d deep: %v", action.MaxDepth, err)
	}
	many := strings.Repeat("next; ", action.MaxActions+1)
	if _, err := action.Parse(many, st); err == nil || !strings.Contains(err.Error(), "too many actions") {
		t.Errorf("many actions: %v", err)
	}
}

func TestExecuteHairpin(t *testing.T) {
	p := tcpPacket()
	ctx := &action.ExecContext{LBHairpin: func(p *of.Packet, reply bool) bool {
		return !reply && p.Get(of.IPSrc) == ip4("10.0.0.1")
	}}
	r := execute(t, `reg0[6] = chk_lb_hairpin(); reg0[12] = chk_lb_hairpin_reply(); ct_snat_to_vip; next;`, &p, ctx)
	if kinds(r) != "lookup lookup snat_to_vip next" || !r.Steps[0].Found || r.Steps[1].Found {
		t.Fatalf("steps = %s", kinds(r))
	}
	expectField(t, &p, of.Reg0, u(1<<6))
}

func TestExecuteLBAffinity(t *testing.T) {
	// No affinity state: chk_lb_aff is false and leaves the flag clear.
	p := tcpPacket()
	p.Set(of.Reg10, u(1<<14))
	r := execute(t, `reg9[6] = chk_lb_aff(); next;`, &p, nil)
	if kinds(r) != "lookup next" || r.Steps[0].Found {
		t.Fatalf("steps = %s, found %v", kinds(r), r.Steps[0].Found)
	}
	expectField(t, &p, of.Reg10, u(0))
	// A context that knows a session: the hit loads the backend as the
	// learned flow would, and the result bit.
	p = tcpPacket()
	ctx := &action.ExecContext{LBAffinity: func(p *of.Packet) bool {
		p.SetSub(action.LBAffBackendIP4, ip4("10.0.0.11"))
		p.SetSub(action.LBAffBackendPort, u(8080))
		return true
	}}
	execute(t, `reg9[6] = chk_lb_aff(); next;`, &p, ctx)
	expectField(t, &p, of.Reg9, u(1<<6))
	expectField(t, &p, of.Reg4, ip4("10.0.0.11"))
	expectField(t, &p, of.Reg8, u(8080))
	// commit_lb_aff reports the session it would learn and ends the
	// actions (as OVN 23.03's flows use it).
	p = tcpPacket()
	r = execute(t, `commit_lb_aff(vip = "10.0.0.105:80", backend = "10.0.0.11:8080", proto = tcp, timeout = 60);`, &p, nil)
	if kinds(r) != "lb_affinity" || !strings.Contains(r.Steps[0].Note, "vip 10.0.0.105:80 sticks to backend 10.0.0.11:8080 for 60 s") {
		t.Fatalf("steps = %s: %q", kinds(r), r.Steps[0].Note)
	}
}

func TestExecuteDHCPAndDNS(t *testing.T) {
	const dhcp = `reg0[3] = put_dhcp_opts(offerip = 10.0.0.2, router = 10.0.0.1); next;`
	p := tcpPacket()
	p.Set(of.IPProto, u(17))
	p.Set(of.UDPDst, u(67))
	r := execute(t, dhcp, &p, nil)
	if !r.Steps[0].Found || r.Steps[0].Note != "DHCP reply offering 10.0.0.2" {
		t.Errorf("step = %+v", r.Steps[0])
	}
	expectField(t, &p, of.Reg0, u(1<<3))
	p = tcpPacket()
	r = execute(t, dhcp, &p, nil)
	if r.Steps[0].Found {
		t.Error("TCP packet got a DHCP reply")
	}
	expectField(t, &p, of.Reg0, u(0))
	var v6 of.Packet
	v6.Set(of.EthType, u(0x86dd))
	v6.Set(of.IPProto, u(17))
	v6.Set(of.UDPDst, u(547))
	r = execute(t, `reg0[3] = put_dhcpv6_opts(ia_addr = fd00::4, server_id = 00:00:00:00:10:02);`, &v6, nil)
	if !r.Steps[0].Found || r.Steps[0].Note != "DHCPv6 reply offering fd00::4" {
		t.Errorf("step = %+v", r.Steps[0])
	}
	p = tcpPacket()
	r = execute(t, `reg0[4] = dns_lookup();`, &p, &action.ExecContext{DNSLookup: func(*of.Packet) bool { return true }})
	expectField(t, &p, of.Reg0, u(1<<4))
}

func TestResultString(t *testing.T) {
	p := tcpPacket()
	r := execute(t, `clone { outport = "p2"; output; }; ct_next; ip.ttl--;`, &p, nil)
	want := `clone { outport = "p2"; output; };  => clone
    outport = "p2";  => set
    output;  => output
ct_next;  => ct ingress table 11 (ct_state=new|trk)
ip.ttl--;  => set
`
	if got := r.String(); got != want {
		t.Errorf("got:\n%swant:\n%s", got, want)
	}
}

func TestExecuteSelect(t *testing.T) {
	p := tcpPacket()
	r := execute(t, `reg8[16..31] = select(1=20, 2=30, 3=50);`, &p, &action.ExecContext{SelectIndex: func(n int) int { return n - 1 }})
	if s := r.Steps[0]; s.Kind != action.StepNext || s.Table != 11 || s.Note != "selected 3" {
		t.Fatalf("step = %+v", s)
	}
	expectField(t, &p, of.Reg8, u(3<<16))
}
