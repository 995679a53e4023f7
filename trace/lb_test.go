package trace

import (
	"net/netip"
	"testing"

	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/of"
)

// TestLBHairpin: chk_lb_hairpin / chk_lb_hairpin_reply answers from the
// SB Load_Balancer rows of the packet's datapath.
func TestLBHairpin(t *testing.T) {
	s := &Snapshot{
		Datapaths: []Datapath{{ID: "sw0", Name: "sw0", Key: 1}, {ID: "sw1", Name: "sw1", Key: 2}},
		LoadBalancers: []LoadBalancer{
			{Name: "web", Datapaths: []string{"sw0"}, Protocol: "tcp",
				VIPs: map[string]string{"10.0.0.100:80": "10.0.0.2:8080,10.0.0.3:8080", "[fd00::100]:80": "[fd00::2]:8080", "bad": "x"}},
			{Name: "any", Datapaths: []string{"sw0"}, VIPs: map[string]string{"10.0.0.200": "10.0.0.2"},
				Options: map[string]string{"hairpin_snat_ip": "169.254.0.1"}},
		},
	}
	tr, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Warnings) != 1 {
		t.Errorf("warnings %q, want one for VIP \"bad\"", tr.Warnings)
	}
	a := func(s string) bits.U128 {
		ip := netip.MustParseAddr(s)
		b := ip.AsSlice()
		var v bits.U128
		for _, x := range b {
			v.Hi = v.Hi<<8 | v.Lo>>56
			v.Lo = v.Lo<<8 | uint64(x)
		}
		return v
	}
	pkt := func(v6 bool, src, dst string, proto uint64, sport, dport uint64, dnat bool, reg1 string, reg2 uint64) *of.Packet {
		var p of.Packet
		if v6 {
			p.Set(of.EthType, bits.From64(0x86dd))
			p.Set(of.IPv6Src, a(src))
			p.Set(of.IPv6Dst, a(dst))
			if reg1 != "" {
				p.Set(of.XXReg1, a(reg1))
			}
		} else {
			p.Set(of.EthType, bits.From64(0x0800))
			p.Set(of.IPSrc, a(src))
			p.Set(of.IPDst, a(dst))
			if reg1 != "" {
				p.Set(of.Reg1, a(reg1))
			}
		}
		p.Set(of.IPProto, bits.From64(proto))
		switch proto {
		case 6:
			p.Set(of.TCPSrc, bits.From64(sport))
			p.Set(of.TCPDst, bits.From64(dport))
		case 17:
			p.Set(of.UDPSrc, bits.From64(sport))
			p.Set(of.UDPDst, bits.From64(dport))
		}
		p.Set(of.Reg2, bits.From64(reg2))
		st := uint64(of.CSNew | of.CSTrk)
		if dnat {
			st |= of.CSDNAT
		}
		p.Set(of.CTState, bits.From64(st))
		return &p
	}
	sw0, sw1 := tr.byID["sw0"], tr.byID["sw1"]
	for _, c := range []struct {
		name  string
		dp    *dpInfo
		p     *of.Packet
		reply bool
		want  bool
	}{
		{"backend to itself via VIP", sw0, pkt(false, "10.0.0.2", "10.0.0.2", 6, 1234, 8080, true, "10.0.0.100", 80), false, true},
		{"other datapath", sw1, pkt(false, "10.0.0.2", "10.0.0.2", 6, 1234, 8080, true, "10.0.0.100", 80), false, false},
		{"not NATed", sw0, pkt(false, "10.0.0.2", "10.0.0.2", 6, 1234, 8080, false, "10.0.0.100", 80), false, false},
		{"other client", sw0, pkt(false, "10.0.0.9", "10.0.0.2", 6, 1234, 8080, true, "10.0.0.100", 80), false, false},
		{"other backend port", sw0, pkt(false, "10.0.0.2", "10.0.0.2", 6, 1234, 8081, true, "10.0.0.100", 80), false, false},
		{"other VIP port", sw0, pkt(false, "10.0.0.2", "10.0.0.2", 6, 1234, 8080, true, "10.0.0.100", 81), false, false},
		{"no original VIP", sw0, pkt(false, "10.0.0.2", "10.0.0.2", 6, 1234, 8080, true, "", 0), false, false},
		{"udp to a tcp VIP", sw0, pkt(false, "10.0.0.2", "10.0.0.2", 17, 1234, 8080, true, "10.0.0.100", 80), false, false},
		{"portless VIP, any protocol", sw0, pkt(false, "10.0.0.2", "10.0.0.2", 17, 1234, 53, true, "10.0.0.200", 0), false, true},
		{"IPv6", sw0, pkt(true, "fd00::2", "fd00::2", 6, 1234, 8080, true, "fd00::100", 80), false, true},
		{"reply to the VIP", sw0, pkt(false, "10.0.0.2", "10.0.0.100", 6, 8080, 1234, false, "", 0), true, true},
		{"reply from another port", sw0, pkt(false, "10.0.0.2", "10.0.0.100", 6, 9999, 1234, false, "", 0), true, false},
		{"reply to hairpin_snat_ip", sw0, pkt(false, "10.0.0.2", "169.254.0.1", 17, 53, 1234, false, "", 0), true, true},
		{"reply to the VIP of an LB with hairpin_snat_ip", sw0, pkt(false, "10.0.0.2", "10.0.0.200", 17, 53, 1234, false, "", 0), true, false},
		{"request is no reply", sw0, pkt(false, "10.0.0.2", "10.0.0.2", 6, 1234, 8080, true, "10.0.0.100", 80), true, false},
	} {
		if got := c.dp.lbHairpin(c.p, c.reply); got != c.want {
			t.Errorf("%s: lbHairpin(reply=%v) = %v, want %v", c.name, c.reply, got, c.want)
		}
	}
}
