package trace

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/govn/govn/lflow/of"
)

// LoadBalancer is an SB Load_Balancer: the trace answers chk_lb_hairpin and
// chk_lb_hairpin_reply from it.
type LoadBalancer struct {
	Name      string            `json:"name"`
	Datapaths []string          `json:"datapaths"`          // Datapath.IDs (datapaths and datapath_group members)
	Protocol  string            `json:"protocol,omitempty"` // tcp (default), udp, sctp
	VIPs      map[string]string `json:"vips"`               // "VIP[:port]" → "backend[:port],..."
	Options   map[string]string `json:"options,omitempty"`  // hairpin_snat_ip
}

// hairpin is one (VIP, backend) pair of a load balancer on a datapath.
type hairpin struct {
	proto          uint64 // IP protocol; 0 for a portless VIP (any)
	vip, backend   netip.Addr
	vipPort, bPort uint16
	snat           netip.Addr // source of hairpinned traffic: hairpin_snat_ip or the VIP
}

// lbHairpins parses a load balancer's VIPs (entries that do not parse are
// skipped with a warning, as the controller does).
func lbHairpins(lb *LoadBalancer) ([]hairpin, []string) {
	var out []hairpin
	var warns []string
	proto := uint64(6)
	switch lb.Protocol {
	case "udp":
		proto = 17
	case "sctp":
		proto = 132
	}
	var snat4, snat6 netip.Addr
	for _, f := range strings.Fields(lb.Options["hairpin_snat_ip"]) {
		if a, err := netip.ParseAddr(f); err == nil && a.Is4() {
			snat4 = a
		} else if err == nil {
			snat6 = a
		}
	}
	for key, val := range lb.VIPs {
		vip, vport, err := hostPort(key)
		if err != nil {
			warns = append(warns, fmt.Sprintf("load balancer %s: VIP %q: %v: ignored", lb.Name, key, err))
			continue
		}
		snat := vip
		if vip.Is4() && snat4.IsValid() {
			snat = snat4
		} else if vip.Is6() && snat6.IsValid() {
			snat = snat6
		}
		for _, b := range strings.Split(val, ",") {
			if b = strings.TrimSpace(b); b == "" {
				continue
			}
			ba, bport, err := hostPort(b)
			if err != nil || ba.Is4() != vip.Is4() {
				warns = append(warns, fmt.Sprintf("load balancer %s: VIP %q: backend %q ignored", lb.Name, key, b))
				continue
			}
			h := hairpin{vip: vip, vipPort: vport, backend: ba, bPort: bport, snat: snat}
			if vport != 0 {
				h.proto = proto
			}
			out = append(out, h)
		}
	}
	return out, warns
}

// hostPort parses "IP", "IP:port", "[IPv6]" or "[IPv6]:port".
func hostPort(s string) (netip.Addr, uint16, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr(), ap.Port(), nil
	}
	a, err := netip.ParseAddr(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("not an address or address:port")
	}
	return a, 0, nil
}

func addrOf(p *of.Packet, f of.Field, v6 bool) netip.Addr {
	v := p.Get(f)
	if v6 {
		var b [16]byte
		for i := 0; i < 8; i++ {
			b[i] = byte(v.Hi >> (56 - 8*i))
			b[8+i] = byte(v.Lo >> (56 - 8*i))
		}
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte{byte(v.Lo >> 24), byte(v.Lo >> 16), byte(v.Lo >> 8), byte(v.Lo)})
}

// l4 returns the packet's transport source and destination ports.
func l4(p *of.Packet) (proto uint64, src, dst uint16) {
	proto = p.Get(of.IPProto).Lo
	switch proto {
	case 6:
		return proto, uint16(p.Get(of.TCPSrc).Lo), uint16(p.Get(of.TCPDst).Lo)
	case 17:
		return proto, uint16(p.Get(of.UDPSrc).Lo), uint16(p.Get(of.UDPDst).Lo)
	case 132:
		return proto, uint16(p.Get(of.SCTPSrc).Lo), uint16(p.Get(of.SCTPDst).Lo)
	}
	return proto, 0, 0
}

// lbHairpin answers chk_lb_hairpin (reply false): the packet was
// load-balanced (ct dnat) from a VIP of this datapath — the original
// destination northd saved in reg1/xxreg1 and reg2[0..15] — to a backend
// that is its own source; and chk_lb_hairpin_reply (reply true): the
// packet comes from a backend's address and port to that VIP's hairpin
// SNAT address (hairpin_snat_ip, else the VIP).
func (d *dpInfo) lbHairpin(p *of.Packet, reply bool) bool {
	if len(d.hairpins) == 0 {
		return false
	}
	var v6 bool
	switch p.Get(of.EthType).Lo {
	case 0x0800:
	case 0x86dd:
		v6 = true
	default:
		return false
	}
	srcF, dstF := of.IPSrc, of.IPDst
	if v6 {
		srcF, dstF = of.IPv6Src, of.IPv6Dst
	}
	src, dst := addrOf(p, srcF, v6), addrOf(p, dstF, v6)
	proto, sport, dport := l4(p)
	for _, h := range d.hairpins {
		if h.vip.Is6() != v6 || (h.proto != 0 && h.proto != proto) {
			continue
		}
		if reply {
			if src == h.backend && (h.bPort == 0 || sport == h.bPort) && dst == h.snat {
				return true
			}
			continue
		}
		if p.Get(of.CTState).Lo&of.CSDNAT == 0 || src != dst || dst != h.backend || (h.bPort != 0 && dport != h.bPort) {
			continue
		}
		var orig netip.Addr
		if v6 {
			orig = addrOf(p, of.XXReg1, true)
		} else {
			orig = addrOf(p, of.Reg1, false)
		}
		if orig != h.vip {
			continue
		}
		if h.vipPort != 0 && uint16(p.Get(of.Reg2).Lo&0xffff) != h.vipPort {
			continue
		}
		return true
	}
	return false
}
