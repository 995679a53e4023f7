package northd

import (
	"fmt"
	"net/netip"
	"strings"
)

// lrNeighborGen: lr_in_lookup_neighbor / lr_in_learn_neighbor (ingress 1–2).
// ARP replies, ARP requests from a port's own networks, and neighbour
// advertisements/solicitations are looked up in MAC_Binding (lookup_arp /
// lookup_nd → reg9[2]); bindings not known yet are learnt with put_arp /
// put_nd. Other packets skip learning.
type lrNeighborGen struct{}

func (lrNeighborGen) Name() string { return "northd/lr_ipinput.go" }

func (lrNeighborGen) Router(rc *RouterContext, b *Builder) {
	const lookup = "reg9[2] = lookup_arp(inport, arp.spa, arp.sha); next;"
	b.Add(LRInLookupNeighbor, 0, "1", "reg9[2] = 1; next;")
	b.Add(LRInLookupNeighbor, 100, "arp.op == 2", lookup)
	b.Add(LRInLookupNeighbor, 100, "nd_na", "reg9[2] = lookup_nd(inport, nd.target, nd.tll); next;")
	b.Add(LRInLookupNeighbor, 100, "nd_ns", "reg9[2] = lookup_nd(inport, ip6.src, nd.sll); next;")
	for _, p := range rc.Ports {
		b.Ref(RefLRP, p.Name)
		for _, n := range p.IPv4 {
			b.Add(LRInLookupNeighbor, 100, fmt.Sprintf("inport == %s && arp.spa == %s && arp.op == 1%s", quote(p.Name), n.Masked(), p.onGateway()), lookup)
		}
	}
	b.Ref("", "")
	b.Add(LRInLearnNeighbor, 100, "reg9[2] == 1", "next;")
	b.Add(LRInLearnNeighbor, 95, "nd_na && nd.tll == 0", "put_nd(inport, nd.target, eth.src); next;")
	b.Add(LRInLearnNeighbor, 95, "nd_ns && (ip6.src == 0 || nd.sll == 0)", "next;")
	b.Add(LRInLearnNeighbor, 90, "arp", "put_arp(inport, arp.spa, arp.sha); next;")
	b.Add(LRInLearnNeighbor, 90, "nd_na", "put_nd(inport, nd.target, nd.tll); next;")
	b.Add(LRInLearnNeighbor, 90, "nd_ns", "put_nd(inport, ip6.src, nd.sll); next;")
	b.Add(LRInLearnNeighbor, 0, "1", "drop;")
}

// lrIPInputGen: lr_in_ip_input (ingress 3): the router's own addresses.
// Martian and spoofed sources are dropped; ARP requests and neighbour
// solicitations for a port's addresses are answered, as are pings; TCP to
// the router is reset and other traffic to it gets ICMP unreachable;
// expiring TTLs get ICMP time exceeded. Transit traffic goes on to
// routing. Every port has, besides its networks, the IPv6 link-local
// address derived from its MAC, as in OVN.
type lrIPInputGen struct{}

func (lrIPInputGen) Name() string { return "northd/lr_ipinput.go" }

func (lrIPInputGen) Router(rc *RouterContext, b *Builder) {
	b.Add(LRInIPInput, 100, "ip4.src_mcast || ip4.src == 255.255.255.255 || ip4.src == 127.0.0.0/8 || "+
		"ip4.dst == 127.0.0.0/8 || ip4.src == 0.0.0.0/8 || ip4.dst == 0.0.0.0/8", "drop;")
	b.Add(LRInIPInput, 85, "arp || nd", "drop;")
	b.Add(LRInIPInput, 84, "nd_rs || nd_ra", "next;")
	b.Add(LRInIPInput, 82, "ip4.mcast || ip6.mcast", "drop;")
	b.Add(LRInIPInput, 50, "eth.bcast", "drop;")
	b.Add(LRInIPInput, 32, "ip.ttl == {0, 1} && !ip.later_frag && (ip4.mcast || ip6.mcast)", "drop;")
	b.Add(LRInIPInput, 30, "ip.ttl == {0, 1}", "drop;")
	b.Add(LRInIPInput, 0, "1", "next;")
	na := "nd_na"
	if rc.Caps.NDNARouter {
		na = "nd_na_router"
	}
	// As OVN 23.03, a gateway router or a router with a distributed
	// gateway port neither resets TCP nor sends ICMP unreachable for its
	// own addresses (those packets are dropped at priority 60).
	gw := rc.Chassis != ""
	for _, p := range rc.Ports {
		gw = gw || p.Redirect != ""
	}
	snatIPs := rc.snatIPs()
	for _, p := range rc.Ports {
		b.Ref(RefLRP, p.Name)
		in := "inport == " + quote(p.Name)
		// IPv4.
		var own4 []netip.Prefix
		if len(p.IPv4) > 0 {
			var srcs []netip.Prefix
			for _, n := range p.IPv4 {
				own4 = append(own4, netip.PrefixFrom(n.Addr(), 32))
				srcs = append(srcs, netip.PrefixFrom(n.Addr(), 32))
				if n.Bits() < 31 {
					srcs = append(srcs, netip.PrefixFrom(broadcast(n), 32))
				}
			}
			b.Add(LRInIPInput, 100, "ip4.src == "+braced(srcs)+" && reg9[0] == 0", "drop;")
			b.Add(LRInIPInput, 90, "ip4.dst == "+ipList(own4)+" && icmp4.type == 8 && icmp4.code == 0",
				"ip4.dst <-> ip4.src; ip.ttl = 255; icmp4.type = 0; flags.loopback = 1; next;")
			for _, n := range p.IPv4 {
				b.Add(LRInIPInput, 90, fmt.Sprintf("%s && arp.op == 1 && arp.tpa == %s && arp.spa == %s%s", in, n.Addr(), n.Masked(), p.onGateway()),
					"eth.dst = eth.src; eth.src = xreg0[0..47]; arp.op = 2; arp.tha = arp.sha; arp.sha = xreg0[0..47]; "+
						"arp.tpa <-> arp.spa; outport = inport; flags.loopback = 1; output;")
			}
			if !gw {
				for _, a := range own4 {
					unreachable(b, "ip4", "icmp4", a.Addr(), 3, 3, 2, rc.Caps.TCPReset)
				}
			}
			ownDrop(b, "ip4", own4, snatIPs)
			// As OVN 23.03, the time-exceeded reply on a distributed
			// gateway port swaps the addresses instead of using the
			// port's address as the source.
			src := fmt.Sprintf("ip4.dst = ip4.src; ip4.src = %s;", p.IPv4[0].Addr())
			if p.Redirect != "" {
				src = "ip4.dst <-> ip4.src;"
			}
			b.Add(LRInIPInput, 31, in+" && ip4 && ip.ttl == {0, 1} && !ip.later_frag", fmt.Sprintf(
				"icmp4 {eth.dst <-> eth.src; icmp4.type = 11; icmp4.code = 0; %s "+
					"ip.ttl = 254; outport = %s; flags.loopback = 1; output; };", src, quote(p.Name)))
		}
		// IPv6: the port's networks and its link-local address.
		var own6 []netip.Prefix
		for _, n := range p.IPv6 {
			own6 = append(own6, netip.PrefixFrom(n.Addr(), 128))
		}
		own6 = append(own6, netip.PrefixFrom(lla(p.MAC), 128))
		for _, a := range own6 {
			t := a.Addr()
			b.Add(LRInIPInput, 90, fmt.Sprintf("%s && ip6.dst == {%s, %s} && nd_ns && nd.target == %s%s", in, t, solicitedNode(t), t, p.onGateway()),
				na+" { eth.src = xreg0[0..47]; ip6.src = nd.target; nd.tll = xreg0[0..47]; "+
					"outport = inport; flags.loopback = 1; output; };")
		}
		b.Add(LRInIPInput, 90, "ip6.dst == "+ipList(own6)+" && icmp6.type == 128 && icmp6.code == 0",
			"ip6.dst <-> ip6.src; ip.ttl = 255; icmp6.type = 129; flags.loopback = 1; next;")
		if !gw {
			for _, a := range own6 {
				unreachable(b, "ip6", "icmp6", a.Addr(), 1, 4, 3, rc.Caps.TCPReset)
			}
		}
		ownDrop(b, "ip6", own6, snatIPs)
		for _, n := range p.IPv6 {
			src := fmt.Sprintf("ip6.dst = ip6.src; ip6.src = %s;", n.Addr())
			if p.Redirect != "" {
				src = "ip6.dst <-> ip6.src;"
			}
			b.Add(LRInIPInput, 31, fmt.Sprintf("%s && ip6 && ip6.src == %s && ip.ttl == {0, 1} && !ip.later_frag", in, n.Masked()),
				fmt.Sprintf("icmp6 {eth.dst <-> eth.src; %s ip.ttl = 254; icmp6.type = 3; "+
					"icmp6.code = 0; outport = %s; flags.loopback = 1; output; };", src, quote(p.Name)))
		}
	}
	b.Ref("", "")
}

// unreachable: traffic to one of the router's own addresses that is not a
// ping: TCP is reset (when the action is available), UDP gets port
// unreachable, anything else protocol unreachable.
func unreachable(b *Builder, ip, icmp string, a netip.Addr, typ, portCode, protoCode int, tcpReset bool) {
	m := fmt.Sprintf("%s && %s.dst == %s && !ip.later_frag", ip, ip, a)
	swap := fmt.Sprintf("eth.dst <-> eth.src; %[1]s.dst <-> %[1]s.src;", ip)
	if tcpReset {
		b.Add(LRInIPInput, 80, m+" && tcp", "tcp_reset {"+swap+" next; };")
	}
	b.Add(LRInIPInput, 80, m+" && udp", fmt.Sprintf("%s {%s ip.ttl = 255; %s.type = %d; %s.code = %d; next; };",
		icmp, swap, icmp, typ, icmp, portCode))
	b.Add(LRInIPInput, 70, m, fmt.Sprintf("%s {%s ip.ttl = 255; %s.type = %d; %s.code = %d; next; };",
		icmp, swap, icmp, typ, icmp, protoCode))
}

// braced is an address set in braces even with one member (as OVN writes
// the router's own-address drops).
func braced(ps []netip.Prefix) string {
	ss := make([]string, len(ps))
	for i, p := range ps {
		ss[i] = prefixString(p)
	}
	return "{" + strings.Join(ss, ", ") + "}"
}

// broadcast is the directed broadcast address of an IPv4 network.
func broadcast(n netip.Prefix) netip.Addr {
	a := n.Addr().As4()
	bits := n.Bits()
	for i := 0; i < 4; i++ {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				a[i] |= 0x80 >> j
			}
		}
	}
	return netip.AddrFrom4(a)
}

// ownDrop drops traffic to the router's own addresses that nothing above
// answered: in lr_in_ip_input, except for addresses that are also SNAT or
// load balancer addresses, whose traffic must first reach lr_in_unsnat /
// lr_in_dnat — those are dropped in lr_in_arp_resolve at priority 2
// instead (as OVN 23.03).
func ownDrop(b *Builder, ip string, own []netip.Prefix, snat map[netip.Addr]bool) {
	var early, late []netip.Prefix
	for _, a := range own {
		if snat[a.Addr()] {
			late = append(late, a)
		} else {
			early = append(early, a)
		}
	}
	if len(early) > 0 {
		b.Add(LRInIPInput, 60, ip+".dst == "+braced(early), "drop;")
	}
	if len(late) > 0 {
		b.Add(LRInARPResolve, 2, ip+".dst == "+braced(late), "drop;")
	}
}

// snatIPs are the addresses the router translates sources to or balances:
// snat external IPs, load balancer VIPs and, on a gateway router,
// lb_force_snat_ip (OVN 23.03's snat_ips and lb_ips; dnat_and_snat
// external IPs are not among them).
func (rc *RouterContext) snatIPs() map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for _, n := range rc.NATs {
		if n.Type == "snat" {
			m[n.External] = true
		}
	}
	for _, l := range rc.LBs {
		for _, v := range l.VIPs {
			m[v.Addr] = true
		}
	}
	if rc.Chassis != "" {
		for _, f := range strings.Fields(rc.Router.Options["lb_force_snat_ip"]) {
			if a, err := netip.ParseAddr(f); err == nil {
				m[a] = true
			}
		}
	}
	return m
}
