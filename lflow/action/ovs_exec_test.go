package action_test

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/govn/govn/internal/ovstest"
	"github.com/govn/govn/lflow/action"
	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// traceField is a field compared between Execute and OVS, with the name
// `ovs-appctl ofproto/trace` uses for it in flows.
type traceField struct {
	name string
	f    of.Field
	out  string // name in the trace's "Final flow" line, if different
}

// Fields compared for every packet kind, then per kind.
var (
	commonFields = func() []traceField {
		fs := []traceField{{name: "dl_src", f: of.EthSrc}, {name: "dl_dst", f: of.EthDst}, {name: "metadata", f: of.Metadata}}
		for i := 0; i < 16; i++ {
			fs = append(fs, traceField{"reg" + strconv.Itoa(i), of.Reg(i), ""})
		}
		return fs
	}()
	tcp4Fields = []traceField{{name: "nw_src", f: of.IPSrc}, {name: "nw_dst", f: of.IPDst}, {name: "nw_ttl", f: of.IPTTL}, {name: "tp_src", f: of.TCPSrc}, {name: "tp_dst", f: of.TCPDst}}
	tcp6Fields = []traceField{{name: "ipv6_src", f: of.IPv6Src}, {name: "ipv6_dst", f: of.IPv6Dst}, {name: "nw_ttl", f: of.IPTTL}, {name: "tp_src", f: of.TCPSrc}, {name: "tp_dst", f: of.TCPDst}}
	arpFields  = []traceField{{name: "arp_spa", f: of.ARPSPA}, {name: "arp_tpa", f: of.ARPTPA}, {name: "arp_op", f: of.ARPOp}, {name: "arp_sha", f: of.ARPSHA}, {name: "arp_tha", f: of.ARPTHA}}
	ndFields   = []traceField{{"ipv6_src", of.IPv6Src, ""}, {"ipv6_dst", of.IPv6Dst, ""}, {"nw_ttl", of.IPTTL, ""},
		{"icmpv6_type", of.ICMPv6Type, "icmp_type"}, {"icmpv6_code", of.ICMPv6Code, "icmp_code"}, {"nd_target", of.NDTarget, ""}}
)

// parseTraceValue converts a value from ofproto/trace output.
func parseTraceValue(f of.Field, s string) (bits.U128, error) {
	switch f.Format() {
	case of.FormatMAC:
		hw, err := net.ParseMAC(s)
		if err != nil {
			return bits.Zero, err
		}
		return bits.FromBytes(hw), nil
	case of.FormatIPv4, of.FormatIPv6:
		a, err := netip.ParseAddr(s)
		if err != nil {
			return bits.Zero, err
		}
		b := a.AsSlice()
		return bits.FromBytes(b), nil
	}
	v, err := strconv.ParseUint(s, 0, 64)
	return bits.From64(v), err
}

func ip6(s string) bits.U128 {
	b := netip.MustParseAddr(s).As16()
	return bits.FromBytes(b[:])
}

// testPacket is a packet for the differential tests with its ofproto/trace
// protocol keyword and the fields to compare.
type testPacket struct {
	proto  string
	p      of.Packet
	fields []traceField
}

// packetFor returns a packet satisfying the prerequisites of an action:
// ARP for "arp", an ND solicitation/advertisement for nd*, else IPv4 TCP.
func packetFor(prereqs []string) testPacket {
	has := map[string]bool{}
	for _, p := range prereqs {
		has[p] = true
	}
	base := func(p *of.Packet) {
		p.Set(of.Reg14, u(1))
		p.Set(of.Reg15, u(3))
		p.Set(of.Reg13, u(7))
		p.Set(of.Reg5, ip4("10.0.0.100"))
		p.Set(of.Metadata, u(1))
		p.Set(of.EthSrc, u(0x0a0000000001))
		p.Set(of.EthDst, u(0x0a00000000fe))
	}
	switch {
	case has["arp"]:
		var p of.Packet
		base(&p)
		p.Set(of.EthType, u(0x0806))
		p.Set(of.ARPOp, u(1))
		p.Set(of.ARPSPA, ip4("10.0.0.1"))
		p.Set(of.ARPTPA, ip4("10.0.0.100"))
		p.Set(of.ARPSHA, u(0x0a0000000001))
		return testPacket{"arp", p, append(append([]traceField{}, commonFields...), arpFields...)}
	case has["nd"] || has["nd_ns"] || has["nd_na"]:
		var p of.Packet
		base(&p)
		p.Set(of.EthType, u(0x86dd))
		p.Set(of.IPProto, u(58))
		p.Set(of.IPv6Src, ip6("fe80::1"))
		p.Set(of.IPv6Dst, ip6("ff02::1:ff00:64"))
		p.Set(of.IPTTL, u(255))
		p.Set(of.NDTarget, ip6("fd00::64"))
		fields := append(append([]traceField{}, commonFields...), ndFields...)
		if has["nd_na"] {
			p.Set(of.ICMPv6Type, u(136))
			p.Set(of.NDTLL, u(0x0a0000000064))
			fields = append(fields, traceField{"nd_tll", of.NDTLL, ""})
		} else {
			p.Set(of.ICMPv6Type, u(135))
			p.Set(of.NDSLL, u(0x0a0000000001))
			fields = append(fields, traceField{"nd_sll", of.NDSLL, ""})
		}
		return testPacket{"icmp6", p, fields}
	}
	if has["ip6"] {
		var p of.Packet
		base(&p)
		p.Set(of.EthType, u(0x86dd))
		p.Set(of.IPProto, u(6))
		p.Set(of.IPv6Src, ip6("fd00::1"))
		p.Set(of.IPv6Dst, ip6("fd00::64"))
		p.Set(of.IPTTL, u(64))
		p.Set(of.TCPSrc, u(5555))
		p.Set(of.TCPDst, u(80))
		return testPacket{"tcp6", p, append(append([]traceField{}, commonFields...), tcp6Fields...)}
	}
	return testPacket{"tcp", tcpPacket2(base), append(append([]traceField{}, commonFields...), tcp4Fields...)}
}

func tcpPacket2(base func(*of.Packet)) of.Packet {
	p := tcpPacket()
	base(&p)
	return p
}

// ovsWorld is a real ovs-vswitchd with the MAC-binding, FDB and lookup
// tables the golden encode parameters name, and the matching Execute
// callbacks.
type ovsWorld struct {
	v    *ovstest.OVS
	base string
	ctx  func() *action.ExecContext
}

func newOVSWorld(t *testing.T) *ovsWorld {
	v := ovstest.Start(t, ovstest.Options{PrivateNetns: true, Bridges: []string{"br0"}})
	// MAC bindings: port 3 has 10.0.0.100 at 0a:00:00:00:00:64, port 1
	// has 10.0.0.1 at 0a:00:00:00:00:01.
	bindings := map[string]uint64{"3/10.0.0.100": 0x0a0000000064, "1/10.0.0.1": 0x0a0000000001}
	var base strings.Builder
	for k, mac := range bindings {
		port, ip, _ := strings.Cut(k, "/")
		m := of.MACString(bits.From64(mac))
		fmt.Fprintf(&base, "table=66, priority=100, reg15=%s, reg0=%#x, actions=set_field:%s->eth_dst\n", port, ip4(ip).Lo, m)
		fmt.Fprintf(&base, "table=67, priority=100, metadata=0x1, reg14=%s, reg0=%#x, dl_src=%s, actions=set_field:0x40/0x40->reg10\n", port, ip4(ip).Lo, m)
		fmt.Fprintf(&base, "table=68, priority=100, metadata=0x1, reg14=%s, reg0=%#x, actions=set_field:0x40/0x40->reg10\n", port, ip4(ip).Lo)
	}
	// FDB: 0a:00:00:00:00:fe on port 2, 0a:00:00:00:00:01 on port 1.
	fdb := map[uint64]uint32{0x0a00000000fe: 2, 0x0a0000000001: 1}
	for mac, port := range fdb {
		m := of.MACString(bits.From64(mac))
		fmt.Fprintf(&base, "table=71, priority=100, metadata=0x1, dl_dst=%s, actions=set_field:%d->reg15\n", m, port)
		fmt.Fprintf(&base, "table=72, priority=100, metadata=0x1, reg14=%d, dl_src=%s, actions=set_field:0x100/0x100->reg10\n", port, m)
	}
	ctx := func() *action.ExecContext {
		return &action.ExecContext{
			Table:      10,
			LookupPort: func(name string) (uint32, bool) { k, ok := ports[name]; return k, ok },
			LookupMAC: func(port uint32, ip bits.U128, v6 bool) (bits.U128, bool) {
				if v6 {
					return bits.Zero, false
				}
				mac, ok := bindings[fmt.Sprintf("%d/%s", port, of.IPv4String(ip))]
				return bits.From64(mac), ok
			},
			LookupFDB: func(mac bits.U128) (uint32, bool) { port, ok := fdb[mac.Lo]; return port, ok },
		}
	}
	return &ovsWorld{v: v, base: base.String(), ctx: ctx}
}

// compare installs the encoding of src in table 0, traces pkt through
// ovs-vswitchd and compares the final fields with Execute's. It returns
// false (after reporting) on a mismatch.
func (w *ovsWorld) compare(t *testing.T, src string, params *action.EncodeParams, pkt testPacket) bool {
	t.Helper()
	st := symtab.Default()
	parsed, err := action.Parse(src, st)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	enc, err := action.Encode(parsed.Actions, params)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	flows := w.base + fmt.Sprintf("table=0, priority=100, %s actions=%s\n", matchFor(parsed.Prereqs), enc.Actions)
	if _, err := w.v.OfctlStdin(flows, "-O", "OpenFlow15", "replace-flows", "br0", "-"); err != nil {
		t.Fatalf("%s: replace-flows: %v\n%s", src, err, flows)
	}
	p := pkt.p
	var spec strings.Builder
	spec.WriteString("in_port=LOCAL," + pkt.proto)
	for _, tf := range pkt.fields {
		fmt.Fprintf(&spec, ",%s=%s", tf.name, of.FormatValue(tf.f.Format(), p.Get(tf.f)))
	}
	out, err := w.v.Appctl("ofproto/trace", "br0", spec.String(), "-generate")
	if err != nil {
		t.Fatalf("%s: ofproto/trace: %v", src, err)
	}
	var initial, final string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Flow: ") && initial == "" {
			initial = strings.TrimPrefix(l, "Flow: ")
		}
		if strings.HasPrefix(l, "Final flow: ") {
			final = strings.TrimPrefix(l, "Final flow: ")
		}
	}
	if final == "unchanged" {
		final = initial
	}
	if final == "" || !strings.Contains(out, "0. "+strings.SplitN(matchFor(parsed.Prereqs), ",", 2)[0]) {
		t.Fatalf("%s: the flow under test did not run:\n%s", src, out)
	}
	got := map[string]string{}
	for _, kv := range strings.Split(final, ",") {
		if k, val, ok := strings.Cut(kv, "="); ok {
			got[k] = val
		}
	}
	if _, err := action.Execute(parsed.Actions, &p, w.ctx()); err != nil {
		t.Fatalf("%s: execute: %v", src, err)
	}
	ok := true
	for _, tf := range pkt.fields {
		want := p.Get(tf.f)
		ovs := bits.Zero
		name := tf.name
		if tf.out != "" {
			name = tf.out
		}
		if s, present := got[name]; present {
			if ovs, err = parseTraceValue(tf.f, s); err != nil {
				t.Fatalf("%s: %s=%q: %v", src, tf.name, s, err)
			}
		}
		if ovs != want {
			ok = false
			t.Errorf("%s:\n  %s: OVS %s, Execute %s\n  final flow: %s", src, tf.name, ovs.Hex(), want.Hex(), final)
		}
	}
	return ok
}

// TestExecuteMatchesOVS installs the encoding of each action string in a
// real ovs-vswitchd and compares the packet fields `ofproto/trace` reports
// after the actions with the fields Execute computes for the same packet.
func TestExecuteMatchesOVS(t *testing.T) {
	cases := []string{
		`outport = "p2"; eth.src <-> eth.dst; ip.ttl--; reg0[0..15] = 0x1234; reg1 = reg0; flags.loopback = 1; next;`,
		`ip4.src <-> ip4.dst; tcp.dst = 8080; reg2 = ip4.dst; reg3[8..15] = ip.ttl; next;`,
		`xxreg1 = 0x11111111222222223333333344444444; reg0 <-> reg1; reg4 <-> reg7; next;`,
		`get_arp(outport, ip4.dst); next;`,
		`reg2 = 10.0.0.100; get_arp(outport, reg2); next;`,
		`reg2 = 10.0.0.99; get_arp(outport, reg2); next;`,
		`get_arp(inport, ip4.src); next;`,
		`put_arp(inport, ip4.src, eth.src); next;`,
		`put_arp(outport, reg5, eth.dst); next;`,
		`clone { outport = "p1"; ip4.dst = 1.2.3.4; }; eth.dst = 00:00:00:00:00:42; next;`,
		`inport <-> outport; reg0[31] = 1; reg0[0] = 1; reg6 = 0xffffffff; reg6[4..7] = 0; next;`,
		`reg0 = 0xffffffff; reg0 = 0x5/0xf5; eth.dst = 00:00:00:00:00:01/ff:00:00:00:00:ff; reg6 = 10.0.0.1/8; next;`,
		`ct_commit(ct_mark=1 ct_label=2); ct_commit { ct_mark = 0x2/0x2; }; reg1[16..31] = 0xbeef; next;`,
		`outport = get_fdb(eth.dst); next;`,
		`reg1 = get_fdb(eth.src); xreg3[0..47] = 0a:00:00:00:00:fe; reg2 = get_fdb(xreg3[0..47]); next;`,
		`reg0[11] = lookup_fdb(inport, eth.src); reg0[12] = lookup_fdb(outport, eth.src); next;`,
		`reg9[2] = lookup_arp(inport, ip4.src, eth.src); reg9[3] = lookup_arp_ip(inport, ip4.src); reg9[4] = lookup_arp_ip(outport, ip4.dst); reg9[5] = lookup_arp(inport, ip4.src, eth.dst); next;`,
		`flags.loopback = lookup_arp(outport, reg5, eth.src); reg6[0] = lookup_arp_ip(outport, reg5); next;`,
		`put_fdb(inport, eth.src); handle_svc_check(inport); put_fdb(outport, eth.dst); next;`,
		// Not check_pkt_larger: ofproto/trace translates both outcomes
		// symbolically (datapath check_pkt_len), so it reports no result.
	}
	w := newOVSWorld(t)
	for _, src := range cases {
		_, params := testParams("")
		w.compare(t, src, params, packetFor(nil))
	}
}

// TestGoldenExecuteMatchesOVS runs every valid golden input whose effect
// ofproto/trace can show (no conntrack recirculation, no paused controller
// actions, no check_pkt_larger) through the same comparison, on a packet
// that satisfies the input's prerequisites.
func TestGoldenExecuteMatchesOVS(t *testing.T) {
	w := newOVSWorld(t)
	st := symtab.Default()
	n := 0
	for _, in := range goldenInputs(t) {
		src, params := testParams(in)
		parsed, err := action.Parse(src, st)
		if err != nil {
			continue
		}
		if _, err := action.Encode(parsed.Actions, params); err != nil {
			continue
		}
		if skip := untraceable(parsed.Actions); skip != "" {
			continue
		}
		if params.Pipeline != action.Ingress || params.Router || params.ControllerMeter != 0 {
			continue // tags only change table numbers and zones
		}
		pkt := packetFor(parsed.Prereqs)
		w.compare(t, src, params, pkt)
		n++
	}
	if n < 50 {
		t.Errorf("only %d golden inputs compared", n)
	}
	t.Logf("%d golden inputs compared with ofproto/trace", n)
}

// untraceable says why ofproto/trace cannot show an action list's effect
// on the packet ("" if it can).
func untraceable(as action.Actions) string {
	for _, a := range as {
		switch a := a.(type) {
		case *action.CTNext, *action.CTNat, *action.CTLB, *action.CTClear, *action.SNATToVIP:
			return "conntrack"
		case *action.Select:
			return "group"
		case *action.PutDHCPOpts, *action.DNSLookup, *action.PutNDRAOpts:
			return "paused controller action"
		case *action.Call:
			if a.Func == "check_pkt_larger" {
				return "check_pkt_larger"
			}
		case *action.Nested:
			if r := untraceable(a.Actions); r != "" && a.Name == "clone" {
				return r
			}
		}
	}
	return ""
}
