package northd

import "fmt"

// lrARPGen: lr_in_arp_resolve (ingress 17), lr_in_arp_request (ingress 21)
// and lr_out_delivery (egress 6). The next hop's MAC comes from a static
// entry when the next hop is a known address on the peer switch (its
// ports' static addresses and the router ports behind it), else from
// MAC_Binding (get_arp). A next hop still unknown (eth.dst all zeros) is
// asked for with an ARP request instead of forwarding the packet.
type lrARPGen struct{}

func (lrARPGen) Name() string { return "northd/lr_arp.go" }

func (lrARPGen) Router(rc *RouterContext, b *Builder) {
	b.Add(LRInARPResolve, 500, "ip4.mcast || ip6.mcast", "next;")
	b.Add(LRInARPResolve, 1, "ip4", "get_arp(outport, reg0); next;")
	b.Add(LRInARPResolve, 1, "ip6", "get_nd(outport, xxreg0); next;")
	b.Add(LRInARPResolve, 0, "1", "drop;")
	b.Add(LRInARPRequest, 100, "eth.dst == 00:00:00:00:00:00 && ip6", "nd_ns { nd.target = xxreg0; output; };")
	b.Add(LROutDelivery, 0, "1", "drop;")
	b.Add(LRInARPRequest, 100, "eth.dst == 00:00:00:00:00:00 && ip4",
		"arp { eth.dst = ff:ff:ff:ff:ff:ff; arp.spa = reg1; arp.tpa = reg0; arp.op = 1; output; };")
	b.Add(LRInARPRequest, 0, "1", "output;")
	// IPv6 static next hops are solicited at their solicited-node address.
	for _, rt := range rc.Routes {
		if rt.Discard || !rt.Nexthop.Is6() {
			continue
		}
		b.Ref(RefRoute, rt.UUID)
		sn := solicitedNode(rt.Nexthop)
		a := sn.As16()
		b.Add(LRInARPRequest, 200, "eth.dst == 00:00:00:00:00:00 && ip6 && xxreg0 == "+rt.Nexthop.String(), fmt.Sprintf(
			"nd_ns { eth.dst = 33:33:%02x:%02x:%02x:%02x; ip6.dst = %s; nd.target = %s; output; };",
			a[12], a[13], a[14], a[15], sn, rt.Nexthop))
	}
	for _, p := range rc.Ports {
		b.Ref(RefLRP, p.Name)
		out := "outport == " + quote(p.Name)
		if p.Enabled() {
			b.Add(LROutDelivery, 100, out, "output;")
		}
		seen := map[string]bool{}
		for _, nb := range p.Neighbors {
			for _, ip := range nb.IPv4 {
				a := ip.Addr().String()
				if seen[a] {
					continue // first port with the address wins
				}
				seen[a] = true
				b.Add(LRInARPResolve, 100, fmt.Sprintf("%s && reg0 == %s", out, a), "eth.dst = "+nb.MAC+"; next;")
			}
			if len(p.IPv6) == 0 {
				continue
			}
			for _, ip := range nb.IPv6 {
				a := ip.Addr().String()
				if seen[a] {
					continue
				}
				seen[a] = true
				b.Add(LRInARPResolve, 100, fmt.Sprintf("%s && xxreg0 == %s", out, a), "eth.dst = "+nb.MAC+"; next;")
			}
		}
	}
	b.Ref("", "")
}
