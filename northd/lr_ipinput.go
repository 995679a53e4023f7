package northd

import (
	"fmt"
	"net/netip"
)

// lrNeighborGen: lr_in_lookup_neighbor / lr_in_learn_neighbor (ingress 1–2).
// ARP replies, and ARP requests from a port's own networks to one of its
// addresses, are looked up in MAC_Binding (lookup_arp → reg9[2]); unknown
// bindings are learnt with put_arp. Other packets skip learning.
type lrNeighborGen struct{}

func (lrNeighborGen) Name() string { return "northd/lr_ipinput.go" }

func (lrNeighborGen) Router(rc *RouterContext, b *Builder) {
	const lookup = "reg9[2] = lookup_arp(inport, arp.spa, arp.sha); next;"
	b.Add(LRInLookupNeighbor, 0, "1", "reg9[2] = 1; next;")
	b.Add(LRInLookupNeighbor, 100, "arp.op == 2", lookup)
	for _, p := range rc.Ports {
		b.Ref(RefLRP, p.Name)
		for _, n := range p.IPv4 {
			b.Add(LRInLookupNeighbor, 100, fmt.Sprintf("inport == %s && arp.spa == %s && arp.tpa == %s && arp.op == 1",
				quote(p.Name), n.Masked(), n.Addr()), lookup)
		}
	}
	b.Ref("", "")
	b.Add(LRInLearnNeighbor, 100, "reg9[2] == 1", "next;")
	b.Add(LRInLearnNeighbor, 90, "arp", "put_arp(inport, arp.spa, arp.sha); next;")
	if rc.hasIPv6() {
		b.Add(LRInLookupNeighbor, 100, "nd_na", "reg9[2] = lookup_nd(inport, nd.target, nd.tll); next;")
		b.Add(LRInLookupNeighbor, 100, "nd_ns", "reg9[2] = lookup_nd(inport, ip6.src, nd.sll); next;")
		b.Add(LRInLearnNeighbor, 90, "nd_na", "put_nd(inport, nd.target, nd.tll); next;")
		b.Add(LRInLearnNeighbor, 90, "nd_ns", "put_nd(inport, ip6.src, nd.sll); next;")
	}
}

// lrIPInputGen: lr_in_ip_input (ingress 3): the router's own addresses.
// Martian and spoofed sources are dropped, ARP requests for a port's
// addresses answered, ICMP echo requests to them answered, expiring TTLs
// answered with ICMP time exceeded, any other traffic to the router's
// addresses dropped; transit traffic goes on to routing.
type lrIPInputGen struct{}

func (lrIPInputGen) Name() string { return "northd/lr_ipinput.go" }

func (lrIPInputGen) Router(rc *RouterContext, b *Builder) {
	b.Add(LRInIPInput, 100, "ip4.src_mcast || ip4.src == 255.255.255.255 || ip4.src == 127.0.0.0/8 || "+
		"ip4.dst == 127.0.0.0/8 || ip4.src == 0.0.0.0/8 || ip4.dst == 0.0.0.0/8", "drop;")
	b.Add(LRInIPInput, 95, "ip4.mcast", "drop;")
	b.Add(LRInIPInput, 50, "eth.bcast", "drop;")
	b.Add(LRInIPInput, 30, "ip4 && ip.ttl == {0, 1}", "drop;")
	b.Add(LRInIPInput, 0, "1", "next;")
	var all []netip.Prefix
	for _, p := range rc.Ports {
		b.Ref(RefLRP, p.Name)
		if len(p.IPv4) == 0 {
			continue
		}
		var own, srcs []netip.Prefix
		for _, n := range p.IPv4 {
			own = append(own, netip.PrefixFrom(n.Addr(), 32))
			srcs = append(srcs, netip.PrefixFrom(n.Addr(), 32))
			if n.Bits() < 31 {
				srcs = append(srcs, netip.PrefixFrom(broadcast(n), 32))
			}
		}
		all = append(all, own...)
		b.Add(LRInIPInput, 100, "ip4.src == "+ipList(srcs)+" && reg9[0] == 0", "drop;")
		b.Add(LRInIPInput, 90, "ip4.dst == "+ipList(own)+" && icmp4.type == 8 && icmp4.code == 0",
			"ip4.dst <-> ip4.src; ip.ttl = 255; icmp4.type = 0; flags.loopback = 1; next;")
		in := "inport == " + quote(p.Name)
		for _, n := range p.IPv4 {
			b.Add(LRInIPInput, 90, fmt.Sprintf("%s && arp.spa == %s && arp.tpa == %s && arp.op == 1", in, n.Masked(), n.Addr()),
				"eth.dst = eth.src; eth.src = xreg0[0..47]; arp.op = 2; arp.tha = arp.sha; arp.sha = xreg0[0..47]; "+
					"arp.tpa <-> arp.spa; outport = inport; flags.loopback = 1; output;")
		}
		b.Add(LRInIPInput, 40, in+" && ip4 && ip.ttl == {0, 1} && !ip.later_frag", fmt.Sprintf(
			"icmp4 { eth.dst <-> eth.src; icmp4.type = 11; icmp4.code = 0; ip4.dst = ip4.src; ip4.src = %s; "+
				"ip.ttl = 254; next; };", p.IPv4[0].Addr()))
	}
	b.Ref("", "")
	if len(all) > 0 {
		b.Add(LRInIPInput, 60, "ip4.dst == "+ipList(all), "drop;")
	}
	lrIPInput6(rc, b)
}

// lrIPInput6: the IPv6 part of lr_in_ip_input for ports with IPv6
// networks (their global addresses and the link-local address derived
// from the port's MAC).
func lrIPInput6(rc *RouterContext, b *Builder) {
	if !rc.hasIPv6() {
		return
	}
	b.Add(LRInIPInput, 100, "ip6.src == ::1 || ip6.dst == ::1", "drop;")
	b.Add(LRInIPInput, 30, "ip6 && ip.ttl == {0, 1}", "drop;")
	na := "nd_na"
	if rc.Caps.NDNARouter {
		na = "nd_na_router"
	}
	var all []netip.Prefix
	for _, p := range rc.Ports {
		if len(p.IPv6) == 0 {
			continue
		}
		b.Ref(RefLRP, p.Name)
		own := []netip.Prefix{}
		for _, n := range p.IPv6 {
			own = append(own, netip.PrefixFrom(n.Addr(), 128))
		}
		own = append(own, netip.PrefixFrom(lla(p.MAC), 128))
		all = append(all, own...)
		b.Add(LRInIPInput, 100, "ip6.src == "+ipList(own)+" && reg9[0] == 0", "drop;")
		b.Add(LRInIPInput, 90, "ip6.dst == "+ipList(own)+" && icmp6.type == 128 && icmp6.code == 0",
			"ip6.dst <-> ip6.src; ip.ttl = 255; icmp6.type = 129; flags.loopback = 1; next;")
		in := "inport == " + quote(p.Name)
		for _, a := range own {
			t := a.Addr()
			b.Add(LRInIPInput, 90, fmt.Sprintf("%s && nd_ns && ip6.dst == {%s, %s} && nd.target == %s", in, t, solicitedNode(t), t),
				fmt.Sprintf("%s { eth.src = xreg0[0..47]; ip6.src = %[2]s; nd.target = %[2]s; nd.tll = xreg0[0..47]; "+
					"outport = inport; flags.loopback = 1; output; };", na, t))
		}
		b.Add(LRInIPInput, 40, in+" && ip6 && ip.ttl == {0, 1} && !ip.later_frag", fmt.Sprintf(
			"icmp6 { eth.dst <-> eth.src; ip6.dst = ip6.src; ip6.src = %s; ip.ttl = 254; icmp6.type = 3; icmp6.code = 0; next; };",
			p.IPv6[0].Addr()))
	}
	b.Ref("", "")
	b.Add(LRInIPInput, 60, "ip6.dst == "+ipList(all), "drop;")
}

// hasIPv6 reports whether some port of the router has an IPv6 network.
func (rc *RouterContext) hasIPv6() bool {
	for _, p := range rc.Ports {
		if len(p.IPv6) > 0 {
			return true
		}
	}
	return false
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
