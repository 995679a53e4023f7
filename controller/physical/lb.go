package physical

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/govn/govn/controller"
	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// LoadBalancer is an SB Load_Balancer row, parsed (see ParseLoadBalancer).
// It feeds the tables behind chk_lb_hairpin, chk_lb_hairpin_reply and
// ct_snat_to_vip.
type LoadBalancer struct {
	Name string
	// Datapaths are the keys of the datapaths the load balancer applies to;
	// flows are made for the local ones.
	Datapaths []uint32
	// Proto is the IP protocol number of VIPs with a port (6, 17 or 132).
	Proto uint8
	VIPs  []VIP
	// HairpinSNAT4/6 are options:hairpin_snat_ip (invalid: none): a
	// hairpinned connection is SNATed to the address of the VIP's family
	// instead of the VIP.
	HairpinSNAT4, HairpinSNAT6 netip.Addr
}

// VIP is one virtual address (with port, or Port 0 for any) and its
// backends.
type VIP struct {
	Addr     netip.Addr
	Port     uint16
	Backends []Backend
}

// Backend is one backend address (Port 0 when the VIP has none).
type Backend struct {
	Addr netip.Addr
	Port uint16
}

// snatAddr is the source a hairpinned connection to v is translated to.
func (lb *LoadBalancer) snatAddr(v *VIP) netip.Addr {
	if v.Addr.Is4() && lb.HairpinSNAT4.IsValid() {
		return lb.HairpinSNAT4
	}
	if v.Addr.Is6() && lb.HairpinSNAT6.IsValid() {
		return lb.HairpinSNAT6
	}
	return v.Addr
}

// ParseLoadBalancer parses an SB Load_Balancer's vips ("VIP[:PORT]" →
// "IP[:PORT],..."; IPv6 with a port as "[IP]:PORT"), protocol ("tcp" when
// empty) and options:hairpin_snat_ip (one IPv4 and/or one IPv6 address,
// space separated). A bad VIP entry is skipped and reported in errs; the
// rest is kept.
func ParseLoadBalancer(name string, dps []uint32, vips map[string]string, protocol string, options map[string]string) (LoadBalancer, []error) {
	lb := LoadBalancer{Name: name, Datapaths: slices.Clone(dps)}
	var errs []error
	switch protocol {
	case "", "tcp":
		lb.Proto = 6
	case "udp":
		lb.Proto = 17
	case "sctp":
		lb.Proto = 132
	default:
		return lb, []error{fmt.Errorf("load balancer %s: unknown protocol %q", name, protocol)}
	}
	for _, f := range strings.Fields(options["hairpin_snat_ip"]) {
		a, err := netip.ParseAddr(f)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("load balancer %s: options:hairpin_snat_ip: %v", name, err))
		case a.Is4():
			lb.HairpinSNAT4 = a
		default:
			lb.HairpinSNAT6 = a
		}
	}
	keys := make([]string, 0, len(vips))
	for k := range vips {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		addr, port, err := parseHostPort(k)
		if err != nil {
			errs = append(errs, fmt.Errorf("load balancer %s: VIP %q: %v", name, k, err))
			continue
		}
		v := VIP{Addr: addr, Port: port}
		ok := true
		for _, bs := range strings.Split(vips[k], ",") {
			bs = strings.TrimSpace(bs)
			if bs == "" {
				continue
			}
			ba, bp, err := parseHostPort(bs)
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("load balancer %s: VIP %q: backend %q: %v", name, k, bs, err))
				ok = false
			case ba.Is4() != addr.Is4():
				errs = append(errs, fmt.Errorf("load balancer %s: VIP %q: backend %q: address family differs from the VIP's", name, k, bs))
				ok = false
			case (bp == 0) != (port == 0):
				errs = append(errs, fmt.Errorf("load balancer %s: VIP %q: backend %q: a port is needed on both the VIP and the backend, or on neither", name, k, bs))
				ok = false
			default:
				v.Backends = append(v.Backends, Backend{Addr: ba, Port: bp})
			}
		}
		if ok {
			lb.VIPs = append(lb.VIPs, v)
		}
	}
	return lb, errs
}

// parseHostPort parses "IPv4", "IPv4:PORT", "IPv6" or "[IPv6]:PORT".
func parseHostPort(s string) (netip.Addr, uint16, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), 0, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("want IP, IP:PORT or [IPv6]:PORT")
	}
	if ap.Port() == 0 {
		return netip.Addr{}, 0, fmt.Errorf("port 0")
	}
	return ap.Addr().Unmap(), ap.Port(), nil
}

// ct_state=+trk-inv: OpenFlow accepts matches on the conntrack original
// tuple only with a valid tracked connection.
const (
	ctStateTracked = 0x20
	ctStateValid   = 0x30 // mask: trk and inv
)

func setIP(m *of.Match, v4, v6 of.Field, a netip.Addr) {
	if a.Is4() {
		b := a.As4()
		m.Set(v4, bits.From64(uint64(b[0])<<24|uint64(b[1])<<16|uint64(b[2])<<8|uint64(b[3])), bits.Ones(32))
		return
	}
	var v bits.U128
	for _, x := range a.As16() {
		v = v.Lsh(8).Or(bits.From64(uint64(x)))
	}
	m.Set(v6, v, bits.Ones(128))
}

func tpFields(proto uint8) (src, dst of.Field) {
	switch proto {
	case 17:
		return of.UDPSrc, of.UDPDst
	case 132:
		return of.SCTPSrc, of.SCTPDst
	}
	return of.TCPSrc, of.TCPDst
}

// loadBalancer adds the hairpin flows of lb for each of its local datapaths:
//
//	TableLBHairpin:      a natted connection (ct_mark.natted) from backend B
//	                     to itself whose original destination (conntrack
//	                     original tuple) is the VIP → flags.lb_hairpin = 1
//	TableLBHairpinReply: B → the hairpin SNAT address from B's port
//	                     → flags.lb_hairpin = 1
//	TableCTSNATHairpin:  original destination the VIP → commit in the SNAT
//	                     zone (reg12) with source = the hairpin SNAT address
func (b *builder) loadBalancer(lb *LoadBalancer) {
	hit := set(of.Sub(symtab.FlagsField, controller.FlagLookupLBHairpinBit, 1), 1)
	if b.lbSeen == nil {
		b.lbSeen = map[string]bool{}
	}
	add := func(table uint8, m of.Match, acts ...of.Action) {
		k := strconv.Itoa(int(table)) + " " + m.String()
		if b.lbSeen[k] {
			return // the same VIP in two load balancers: one flow
		}
		b.lbSeen[k] = true
		b.add(table, prioPort, m, acts...)
	}
	for _, dp := range lb.Datapaths {
		if !b.local[dp] {
			continue
		}
		for i := range lb.VIPs {
			v := &lb.VIPs[i]
			ethType := uint64(0x0800)
			if v.Addr.Is6() {
				ethType = 0x86dd
			}
			base := func() of.Match {
				return match(fv{symtab.DatapathField, uint64(dp)}, fv{of.EthType, ethType})
			}
			orig := func(m *of.Match) {
				m.Set(of.CTState, bits.From64(ctStateTracked), bits.From64(ctStateValid))
				setIP(m, of.CTNwDst, of.CTIPv6Dst, v.Addr)
				if v.Port != 0 {
					m.Set(of.CTNwProto, bits.From64(uint64(lb.Proto)), bits.Ones(8))
					m.Set(of.CTTpDst, bits.From64(uint64(v.Port)), bits.Ones(16))
				}
			}
			snat := lb.snatAddr(v)
			srcF, dstF := tpFields(lb.Proto)
			for _, be := range v.Backends {
				m := base()
				setIP(&m, of.IPSrc, of.IPv6Src, be.Addr)
				setIP(&m, of.IPDst, of.IPv6Dst, be.Addr)
				if be.Port != 0 {
					m.Set(of.IPProto, bits.From64(uint64(lb.Proto)), bits.Ones(8))
					m.Set(dstF, bits.From64(uint64(be.Port)), bits.Ones(16))
				}
				m.Set(of.CTMark, bits.From64(1<<symtab.CTMarkNatted), bits.From64(1<<symtab.CTMarkNatted))
				orig(&m)
				add(controller.TableLBHairpin, m, hit)

				r := base()
				setIP(&r, of.IPSrc, of.IPv6Src, be.Addr)
				setIP(&r, of.IPDst, of.IPv6Dst, snat)
				if be.Port != 0 {
					r.Set(of.IPProto, bits.From64(uint64(lb.Proto)), bits.Ones(8))
					r.Set(srcF, bits.From64(uint64(be.Port)), bits.Ones(16))
				}
				add(controller.TableLBHairpinReply, r, hit)
			}
			if len(v.Backends) == 0 {
				continue
			}
			m := base()
			orig(&m)
			add(controller.TableCTSNATHairpin, m,
				of.CT{Commit: true, Table: -1, Zone: snatZone, NAT: &of.NAT{Src: true, Addr: snat}})
		}
	}
}
