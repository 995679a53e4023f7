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

// traceFields are the fields compared between Execute and OVS, with the
// names `ovs-appctl ofproto/trace` uses in its "Final flow" line.
var traceFields = []struct {
	name string
	f    of.Field
}{
	{"dl_src", of.EthSrc}, {"dl_dst", of.EthDst}, {"nw_src", of.IPSrc}, {"nw_dst", of.IPDst},
	{"nw_ttl", of.IPTTL}, {"tp_src", of.TCPSrc}, {"tp_dst", of.TCPDst}, {"metadata", of.Metadata},
}

func init() {
	for i := 0; i < 16; i++ {
		traceFields = append(traceFields, struct {
			name string
			f    of.Field
		}{"reg" + strconv.Itoa(i), of.Reg(i)})
	}
}

// parseTraceValue converts a value from ofproto/trace output.
func parseTraceValue(f of.Field, s string) (bits.U128, error) {
	switch f.Format() {
	case of.FormatMAC:
		hw, err := net.ParseMAC(s)
		if err != nil {
			return bits.Zero, err
		}
		return bits.FromBytes(hw), nil
	case of.FormatIPv4:
		a, err := netip.ParseAddr(s)
		if err != nil {
			return bits.Zero, err
		}
		b := a.As4()
		return bits.FromBytes(b[:]), nil
	}
	v, err := strconv.ParseUint(s, 0, 64)
	return bits.From64(v), err
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
	v := ovstest.Start(t, ovstest.Options{PrivateNetns: true, Bridges: []string{"br0"}})
	st := symtab.Default()
	// MAC binding: port 3, 10.0.0.100 is at 0a:00:00:00:00:64 (and port 1,
	// 10.0.0.1 at 0a:00:00:00:00:01).
	bindings := map[string]uint64{"3/10.0.0.100": 0x0a0000000064, "1/10.0.0.1": 0x0a0000000001}
	var base strings.Builder
	for k, mac := range bindings {
		port, ip, _ := strings.Cut(k, "/")
		fmt.Fprintf(&base, "table=66, priority=100, reg15=%s, reg0=%s, actions=set_field:%s->eth_dst\n", port, fmt.Sprintf("%#x", ip4(ip).Lo), of.MACString(bits.From64(mac)))
	}
	// FDB: 0a:00:00:00:00:fe on port 2, 0a:00:00:00:00:01 on port 1.
	fdb := map[uint64]uint32{0x0a00000000fe: 2, 0x0a0000000001: 1}
	for mac, port := range fdb {
		m := of.MACString(bits.From64(mac))
		fmt.Fprintf(&base, "table=71, priority=100, metadata=0x1, dl_dst=%s, actions=set_field:%d->reg15\n", m, port)
		fmt.Fprintf(&base, "table=72, priority=100, metadata=0x1, reg14=%d, dl_src=%s, actions=set_field:0x100/0x100->reg10\n", port, m)
	}
	for k, mac := range bindings {
		port, ip, _ := strings.Cut(k, "/")
		fmt.Fprintf(&base, "table=67, priority=100, metadata=0x1, reg14=%s, reg0=%#x, dl_src=%s, actions=set_field:0x40/0x40->reg10\n", port, ip4(ip).Lo, of.MACString(bits.From64(mac)))
		fmt.Fprintf(&base, "table=68, priority=100, metadata=0x1, reg14=%s, reg0=%#x, actions=set_field:0x40/0x40->reg10\n", port, ip4(ip).Lo)
	}
	lookupFDB := func(mac bits.U128) (uint32, bool) {
		port, ok := fdb[mac.Lo]
		return port, ok
	}
	lookupMAC := func(port uint32, ip bits.U128, v6 bool) (bits.U128, bool) {
		mac, ok := bindings[fmt.Sprintf("%d/%s", port, of.IPv4String(ip))]
		return bits.From64(mac), ok
	}
	for _, src := range cases {
		parsed, err := action.Parse(src, st)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		_, params := testParams("")
		enc, err := action.Encode(parsed.Actions, params)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		flows := base.String() + fmt.Sprintf("table=0, priority=100, %s actions=%s\n", matchFor(parsed.Prereqs), enc.Actions)
		if _, err := v.OfctlStdin(flows, "-O", "OpenFlow15", "replace-flows", "br0", "-"); err != nil {
			t.Fatalf("%s: replace-flows: %v\n%s", src, err, flows)
		}

		p := tcpPacket()
		p.Set(of.Reg15, u(3))
		p.Set(of.Reg5, ip4("10.0.0.100"))
		var spec strings.Builder
		spec.WriteString("in_port=LOCAL,tcp")
		for _, tf := range traceFields {
			fmt.Fprintf(&spec, ",%s=%s", tf.name, of.FormatValue(tf.f.Format(), p.Get(tf.f)))
		}
		out, err := v.Appctl("ofproto/trace", "br0", spec.String(), "-generate")
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
		if final == "" {
			t.Fatalf("%s: no Final flow in trace:\n%s", src, out)
		}
		got := map[string]string{}
		for _, kv := range strings.Split(final, ",") {
			if k, val, ok := strings.Cut(kv, "="); ok {
				got[k] = val
			}
		}

		r, err := action.Execute(parsed.Actions, &p, &action.ExecContext{Table: 10, LookupMAC: lookupMAC, LookupFDB: lookupFDB,
			LookupPort: func(name string) (uint32, bool) { k, ok := ports[name]; return k, ok }})
		if err != nil {
			t.Fatalf("%s: execute: %v", src, err)
		}
		if !r.Continues() {
			t.Errorf("%s: Execute says the packet stops", src)
		}
		for _, tf := range traceFields {
			want := p.Get(tf.f)
			ovs := bits.Zero
			if s, ok := got[tf.name]; ok {
				if ovs, err = parseTraceValue(tf.f, s); err != nil {
					t.Fatalf("%s: %s=%q: %v", src, tf.name, s, err)
				}
			}
			if ovs != want {
				t.Errorf("%s:\n  %s: OVS %s, Execute %s\n  final flow: %s", src, tf.name, ovs.Hex(), want.Hex(), final)
			}
		}
	}
}
