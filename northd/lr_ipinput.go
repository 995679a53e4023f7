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
