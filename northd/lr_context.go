package northd

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
)

// RouterGenerator produces the logical flows of one feature for one
// logical router (the router counterpart of Generator).
type RouterGenerator interface {
	Name() string
	Router(rc *RouterContext, b *Builder)
}

// DefaultRouterGenerators are the logical router features, in order.
func DefaultRouterGenerators() []RouterGenerator {
	return []RouterGenerator{lrAdmissionGen{}, lrNeighborGen{}, lrIPInputGen{}, lrRoutingGen{}, lrARPGen{}, lrNATGen{}, lrLBGen{}, lrPassGen{}}
}

// RouterPortCtx is a logical router port as the router generators see it.
type RouterPortCtx struct {
	*RouterPort
	MAC  string         // canonical
	IPv4 []netip.Prefix // networks (address with its prefix length)
	IPv6 []netip.Prefix
	// Peer is the name of the switch port of type router whose
	// options:router-port names this port ("" when unconnected).
	Peer string
	// Neighbors are the static addresses reachable through the peer
	// switch: its other ports' addresses and the router ports behind its
	// other router-type ports.
	Neighbors []PortAddrs
	// Redirect is "cr-<name>" for a distributed gateway port ("" else),
	// HA its HA chassis group.
	Redirect string
	HA       *HAGroupSpec
}

// Enabled reports whether the port is administratively up.
func (p *RouterPortCtx) Enabled() bool { return p.RouterPort.Enabled == nil || *p.RouterPort.Enabled }

// RouteCtx is one valid static route.
type RouteCtx struct {
	*StaticRoute
	Prefix  netip.Prefix
	Nexthop netip.Addr
	Port    *RouterPortCtx // output port
	Src     netip.Addr     // the output port's address used as reg1 / arp.spa
	SrcIP   bool           // policy src-ip
	Discard bool           // nexthop "discard": matching packets are dropped
}

// RouterContext is everything router generators need about one router.
type RouterContext struct {
	Router *Router
	// Chassis is options:chassis of a gateway router ("" for a
	// distributed router).
	Chassis string
	// NATs are the valid NAT rules, ordered by UUID.
	NATs []*NATCtx
	// LBs are the router's load balancers (own and from groups), parsed.
	LBs    []*LB
	Ports  []*RouterPortCtx // valid ports, in Router.Ports order
	Routes []*RouteCtx      // valid static routes, ordered by UUID
	Caps   Caps
}

// parseRouterPort parses an LRP's MAC and networks.
func parseRouterPort(p *RouterPort) (*RouterPortCtx, error) {
	hw, err := net.ParseMAC(p.MAC)
	if err != nil || len(hw) != 6 {
		return nil, fmt.Errorf("mac %q is not an Ethernet address", p.MAC)
	}
	rp := &RouterPortCtx{RouterPort: p, MAC: hw.String()}
	if len(p.Networks) == 0 {
		return nil, fmt.Errorf("networks is empty")
	}
	for _, n := range p.Networks {
		pf, err := netip.ParsePrefix(strings.TrimSpace(n))
		if err != nil || pf.Addr().Zone() != "" || pf.Addr().Is4In6() {
			return nil, fmt.Errorf("network %q is not IP/prefix-length", n)
		}
		if pf.Addr().Is4() {
			rp.IPv4 = append(rp.IPv4, pf)
		} else {
			rp.IPv6 = append(rp.IPv6, pf)
		}
	}
	return rp, nil
}

// routerPortAddrs are the addresses a switch port of type router with
// addresses "router" stands for: the peer router port's MAC and IPs.
func routerPortAddrs(p *RouterPort) (PortAddrs, bool) {
	rp, err := parseRouterPort(p)
	if err != nil {
		return PortAddrs{}, false
	}
	pa := PortAddrs{MAC: rp.MAC}
	for _, n := range rp.IPv4 {
		pa.IPv4 = append(pa.IPv4, netip.PrefixFrom(n.Addr(), 32))
	}
	for _, n := range rp.IPv6 {
		pa.IPv6 = append(pa.IPv6, netip.PrefixFrom(n.Addr(), 128))
	}
	return pa, true
}

// newRouterContext resolves a router's ports, peers and routes; bad rows
// are reported on b and skipped.
func newRouterContext(nb *NB, r *Router, b *Builder) *RouterContext {
	rc := &RouterContext{Router: r, Chassis: gatewayChassis(r)}
	// Switch ports of type router, by the router port they name.
	peers := map[string]*SwitchPort{}
	for _, sp := range nb.Ports {
		if sp.Type == "router" {
			if rp := sp.Options["router-port"]; rp != "" {
				if old := peers[rp]; old == nil || sp.Name < old.Name {
					peers[rp] = sp
				}
			}
		}
	}
	byName := map[string]*RouterPortCtx{}
	for _, id := range r.Ports {
		p := nb.RouterPorts[id]
		if p == nil {
			continue
		}
		rp, err := parseRouterPort(p)
		if err != nil {
			b.Bad("Logical_Router_Port", p.UUID, p.Name, err)
			continue
		}
		if sp := peers[p.Name]; sp != nil {
			rp.Peer = sp.Name
			rp.Neighbors = neighbors(nb, sp)
		}
		if rc.Chassis == "" {
			if g, ok := nb.haGroup(p); ok {
				rp.Redirect, rp.HA = RedirectPrefix+p.Name, &g
			}
		}
		rc.Ports = append(rc.Ports, rp)
		byName[p.Name] = rp
	}
	newNATs(nb, rc, b)
	rc.LBs = routerLBs(nb, r, b)
	ids := append([]string(nil), r.StaticRoutes...)
	sort.Strings(ids)
	for _, id := range ids {
		sr := nb.Routes[id]
		if sr == nil {
			continue
		}
		rt, err := newRoute(sr, rc, byName)
		if err != nil {
			b.Bad("Logical_Router_Static_Route", sr.UUID, "", err)
			continue
		}
		if rt != nil {
			rc.Routes = append(rc.Routes, rt)
		}
	}
	return rc
}

// newRoute validates a static route.
func newRoute(sr *StaticRoute, rc *RouterContext, byName map[string]*RouterPortCtx) (*RouteCtx, error) {
	rt := &RouteCtx{StaticRoute: sr}
	var err error
	if strings.Contains(sr.IPPrefix, "/") {
		rt.Prefix, err = netip.ParsePrefix(sr.IPPrefix)
	} else {
		var a netip.Addr
		a, err = netip.ParseAddr(sr.IPPrefix)
		rt.Prefix = netip.PrefixFrom(a, a.BitLen())
	}
	if err != nil {
		return nil, fmt.Errorf("ip_prefix %q is not an IP prefix", sr.IPPrefix)
	}
	rt.Prefix = rt.Prefix.Masked()
	switch sr.Policy {
	case "", "dst-ip":
	case "src-ip":
		rt.SrcIP = true
	default:
		return nil, fmt.Errorf("policy %q is not dst-ip or src-ip", sr.Policy)
	}
	if sr.RouteTable != "" {
		return nil, fmt.Errorf("route_table %q: route tables are not supported", sr.RouteTable)
	}
	if sr.Nexthop == "discard" {
		rt.Discard = true
		return rt, nil
	}
	if rt.Nexthop, err = netip.ParseAddr(sr.Nexthop); err != nil {
		return nil, fmt.Errorf("nexthop %q is not an IP address or \"discard\"", sr.Nexthop)
	}
	if rt.Nexthop.Is4() != rt.Prefix.Addr().Is4() {
		return nil, fmt.Errorf("nexthop %s and ip_prefix %s are of different IP versions", sr.Nexthop, sr.IPPrefix)
	}
	nets := func(p *RouterPortCtx) []netip.Prefix {
		if rt.Nexthop.Is4() {
			return p.IPv4
		}
		return p.IPv6
	}
	if sr.OutputPort != nil && *sr.OutputPort != "" {
		rt.Port = byName[*sr.OutputPort]
		if rt.Port == nil {
			return nil, fmt.Errorf("output_port %q is not a port of router %q", *sr.OutputPort, rc.Router.Name)
		}
		if len(nets(rt.Port)) == 0 {
			return nil, fmt.Errorf("output_port %q has no network of the next hop's IP version", *sr.OutputPort)
		}
		rt.Src = nets(rt.Port)[0].Addr()
		for _, n := range nets(rt.Port) {
			if n.Contains(rt.Nexthop) {
				rt.Src = n.Addr()
				break
			}
		}
		return rt, nil
	}
	// As OVN: the port with the longest network containing the next hop.
	best := -1
	for _, p := range rc.Ports {
		for _, n := range nets(p) {
			if n.Contains(rt.Nexthop) && n.Bits() > best {
				best, rt.Port, rt.Src = n.Bits(), p, n.Addr()
			}
		}
	}
	if rt.Port == nil {
		return nil, fmt.Errorf("nexthop %s is not on a network of router %q", sr.Nexthop, rc.Router.Name)
	}
	return rt, nil
}

// neighbors lists the static addresses behind a router's peer switch port:
// the other ports of its switch (VIFs with static addresses; router-type
// ports as their router port's MAC and IPs).
func neighbors(nb *NB, peer *SwitchPort) []PortAddrs {
	sw := nb.Switches[nb.portSwitch(peer.UUID)]
	if sw == nil {
		return nil
	}
	var out []PortAddrs
	for _, id := range sw.Ports {
		sp := nb.Ports[id]
		if sp == nil || sp.UUID == peer.UUID {
			continue
		}
		for _, a := range sp.Addresses {
			a = strings.TrimSpace(a)
			switch a {
			case "unknown", "dynamic", "":
				continue
			case "router":
				if sp.Type == "router" {
					if rp, _ := nb.routerPortByName(sp.Options["router-port"]); rp != nil {
						if pa, ok := routerPortAddrs(rp); ok {
							out = append(out, pa)
						}
					}
				}
				continue
			}
			if pa, err := ParseAddresses(a); err == nil {
				out = append(out, pa)
			}
		}
	}
	return out
}
