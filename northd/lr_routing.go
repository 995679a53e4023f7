package northd

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// Route priorities as OVN 23.03: longest prefix first (prefix length ×
// routePrioMult), and for one prefix a connected network before a static
// dst-ip route before a src-ip route.
const (
	routePrioMult      = 3
	routePrioSrc       = 0
	routePrioStatic    = 1
	routePrioConnected = 2
)

// lrRoutingGen: lr_in_ip_routing_pre, lr_in_ip_routing,
// lr_in_ip_routing_ecmp, lr_in_policy, lr_in_policy_ecmp (ingress 12–16).
// Routing decrements the TTL and leaves the next hop in reg0, the output
// port's address in reg1, its MAC in eth.src and the port in outport.
// Routes with the same prefix and policy are an ECMP group: routing picks a
// member with select() into reg8[16..31] (reg8[0..15] = group id) and the
// ECMP stage fills in that member's next hop.
type lrRoutingGen struct{}

func (lrRoutingGen) Name() string { return "northd/lr_routing.go" }

func (lrRoutingGen) Router(rc *RouterContext, b *Builder) {
	b.Add(LRInIPRoutingPre, 0, "1", "reg7 = 0; next;")
	b.Add(LRInIPRouting, 10550, "nd_rs || nd_ra", "drop;")
	b.Add(LRInIPRouting, 0, "1", "drop;")
	b.Add(LRInIPRoutingECMP, 150, "reg8[0..15] == 0", "next;")
	b.Add(LRInIPRoutingECMP, 0, "1", "drop;")
	b.Add(LRInPolicy, 0, "1", "reg8[0..15] = 0; next;")
	b.Add(LRInPolicyECMP, 150, "reg8[0..15] == 0", "next;")
	b.Add(LRInPolicyECMP, 0, "1", "drop;")
	for _, p := range rc.Ports {
		if !p.Enabled() {
			continue
		}
		b.Ref(RefLRP, p.Name)
		for _, n := range p.IPv4 {
			b.Add(LRInIPRouting, uint16(n.Bits()*routePrioMult+routePrioConnected), "ip4.dst == "+n.Masked().String(),
				fmt.Sprintf("ip.ttl--; reg8[0..15] = 0; reg0 = ip4.dst; reg1 = %s; eth.src = %s; outport = %s; "+
					"flags.loopback = 1; next;", n.Addr(), p.MAC, quote(p.Name)))
		}
		{
			nets := append([]netip.Prefix{netip.PrefixFrom(lla(p.MAC), 64)}, p.IPv6...)
			for i, n := range nets {
				m := "ip6.dst == " + n.Masked().String()
				if i == 0 {
					// Every port has fe80::/64: link-local traffic leaves
					// by the port it came in on.
					m = "inport == " + quote(p.Name) + " && " + m
				}
				b.Add(LRInIPRouting, uint16(n.Bits()*routePrioMult+routePrioConnected), m,
					fmt.Sprintf("ip.ttl--; reg8[0..15] = 0; xxreg0 = ip6.dst; xxreg1 = %s; eth.src = %s; outport = %s; "+
						"flags.loopback = 1; next;", n.Addr(), p.MAC, quote(p.Name)))
			}
		}
	}
	b.Ref("", "")

	// Static routes grouped by (prefix, policy), groups in a stable order.
	type gkey struct {
		p   netip.Prefix
		src bool
	}
	groups := map[gkey][]*RouteCtx{}
	var keys []gkey
	for _, rt := range rc.Routes {
		if !rt.Discard && !rt.Port.Enabled() {
			continue
		}
		k := gkey{rt.Prefix, rt.SrcIP}
		if groups[k] == nil {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], rt)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].p.Bits() != keys[j].p.Bits() {
			return keys[i].p.Bits() > keys[j].p.Bits()
		}
		if c := keys[i].p.Addr().Compare(keys[j].p.Addr()); c != 0 {
			return c < 0
		}
		return !keys[i].src && keys[j].src
	})
	ecmpID := 0
	for _, k := range keys {
		rts := groups[k]
		ip, r0, r1 := "ip4", "reg0", "reg1"
		if !k.p.Addr().Is4() {
			ip, r0, r1 = "ip6", "xxreg0", "xxreg1"
		}
		field, off := ip+".dst", routePrioStatic
		if k.src {
			field, off = ip+".src", routePrioSrc
		}
		prio := uint16(k.p.Bits()*routePrioMult + off)
		// dst-ip routes are in route table 0 (reg7, set by
		// lr_in_ip_routing_pre); OVN 23.03 writes src-ip routes without it.
		match := field + " == " + k.p.String()
		if !k.src {
			match = "reg7 == 0 && " + match
		}
		hop := func(rt *RouteCtx) string {
			return fmt.Sprintf("%s = %s; %s = %s; eth.src = %s; outport = %s;", r0, rt.Nexthop, r1, rt.Src, rt.Port.MAC, quote(rt.Port.Name))
		}
		if d := discardRoute(rts); d != nil {
			// A discard route wins over other routes of its prefix.
			b.Ref(RefRoute, d.UUID)
			b.Add(LRInIPRouting, prio, match, "drop;")
			continue
		}
		if len(rts) == 1 {
			b.Ref(RefRoute, rts[0].UUID)
			b.Add(LRInIPRouting, prio, match, "ip.ttl--; reg8[0..15] = 0; "+hop(rts[0])+" flags.loopback = 1; next;")
			continue
		}
		ecmpID++
		members := make([]string, len(rts))
		for i := range rts {
			members[i] = fmt.Sprint(i + 1)
		}
		b.Ref("", "")
		b.Add(LRInIPRouting, prio, match, fmt.Sprintf("ip.ttl--; flags.loopback = 1; reg8[0..15] = %d; reg8[16..31] = select(%s);",
			ecmpID, strings.Join(members, ", ")))
		for i, rt := range rts {
			b.Ref(RefRoute, rt.UUID)
			b.Add(LRInIPRoutingECMP, 100, fmt.Sprintf("reg8[0..15] == %d && reg8[16..31] == %d", ecmpID, i+1), hop(rt)+" next;")
		}
	}
	b.Ref("", "")
}

// discardRoute returns the group's first discard route, if any.
func discardRoute(rts []*RouteCtx) *RouteCtx {
	for _, rt := range rts {
		if rt.Discard {
			return rt
		}
	}
	return nil
}
