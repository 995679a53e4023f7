package northd

import (
	"fmt"
	"sort"
	"strings"
)

// Gateways, as OVN 23.03 (ovn-architecture(7), "Gateway Routers" and
// "Distributed Gateway Ports"):
//
//   - A gateway router (Logical_Router options:chassis=<chassis>) runs on
//     that chassis only: its router ports and the switch ports peering them
//     are Port_Bindings of type "l3gateway" with options
//     l3gateway-chassis=<chassis> and peer=<other end>.
//   - A distributed gateway port (DGP) is a router port with
//     gateway_chassis rows or an ha_chassis_group. It stays a patch port,
//     with options:chassis-redirect-port=cr-<port>, and gets a second
//     Port_Binding "cr-<port>" of type "chassisredirect" (options
//     distributed-port=<port>) tied to an SB HA_Chassis_Group. The
//     controller on the group's highest-priority chassis claims the cr
//     port; traffic that must be centralised is redirected to it in
//     lr_in_gw_redirect.

// HAGroupSpec is a desired SB HA_Chassis_Group: named after the router
// port (gateway_chassis) or after the NB HA_Chassis_Group.
type HAGroupSpec struct {
	Name    string
	Chassis []HAChassisSpec // sorted by chassis name
}

// HAChassisSpec is one desired SB HA_Chassis row.
type HAChassisSpec struct {
	Chassis  string // chassis name (HA_Chassis.chassis is set when a Chassis row has that name)
	Priority int
}

// RedirectPrefix starts the name of a distributed gateway port's
// chassisredirect Port_Binding.
const RedirectPrefix = "cr-"

// gatewayChassis is a gateway router's chassis (Logical_Router
// options:chassis), "" for a distributed router.
func gatewayChassis(r *Router) string {
	if r == nil {
		return ""
	}
	return strings.TrimSpace(r.Options["chassis"])
}

// haGroup resolves the HA chassis group of a router port: its NB
// ha_chassis_group (preferred) or its gateway_chassis rows. ok is false
// when the port is not a distributed gateway port.
func (nb *NB) haGroup(p *RouterPort) (HAGroupSpec, bool) {
	if p.HAChassisGroup != "" {
		if g := nb.HAGroups[p.HAChassisGroup]; g != nil {
			spec := HAGroupSpec{Name: g.Name}
			for _, id := range g.HAChassis {
				if c := nb.HAChassis[id]; c != nil && c.ChassisName != "" {
					spec.Chassis = append(spec.Chassis, HAChassisSpec{c.ChassisName, c.Priority})
				}
			}
			sortHA(spec.Chassis)
			return spec, true
		}
	}
	spec := HAGroupSpec{Name: p.Name}
	found := false
	for _, id := range p.GatewayChassis {
		if g := nb.GatewayChassis[id]; g != nil {
			found = true
			if g.ChassisName != "" {
				spec.Chassis = append(spec.Chassis, HAChassisSpec{g.ChassisName, g.Priority})
			}
		}
	}
	sortHA(spec.Chassis)
	return spec, found
}

func sortHA(cs []HAChassisSpec) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Chassis < cs[j].Chassis })
	// One chassis once (two Gateway_Chassis rows naming the same chassis:
	// the first in name order wins).
	out := cs[:0]
	for i, c := range cs {
		if i > 0 && c.Chassis == cs[i-1].Chassis {
			continue
		}
		out = append(out, c)
	}
}

// routerPortGateway tells how a router port is bound: chassis is the
// gateway router's chassis ("" unless the router is a gateway router);
// redirect is "cr-<port>" for a distributed gateway port.
func (nb *NB) routerPortGateway(p *RouterPort, r *Router) (chassis, redirect string) {
	if c := gatewayChassis(r); c != "" {
		return c, ""
	}
	if _, ok := nb.haGroup(p); ok {
		return "", RedirectPrefix + p.Name
	}
	return "", ""
}

// routerPortBinding is the Port_Binding of a router port: a patch to its
// peer switch port (l3gateway on a gateway router), mac "MAC NETWORK...".
func routerPortBinding(router string, rp *RouterPortCtx, chassis string) *PortBindingSpec {
	p := rp.RouterPort
	pb := &PortBindingSpec{Switch: router, Name: p.Name, Type: "patch", Options: map[string]string{},
		MAC:          []string{strings.TrimSpace(p.MAC + " " + strings.Join(p.Networks, " "))},
		RequestedKey: requestedKey(p.Options, MaxPortKey)}
	if rp.Peer != "" {
		pb.Options["peer"] = rp.Peer
	}
	if chassis != "" {
		pb.Type = "l3gateway"
		pb.Options["l3gateway-chassis"] = chassis
	}
	if rp.Redirect != "" {
		pb.Options["chassis-redirect-port"] = rp.Redirect
	}
	return pb
}

// redirectBinding is the chassisredirect Port_Binding of a distributed
// gateway port.
func redirectBinding(router string, rp *RouterPortCtx) *PortBindingSpec {
	p := rp.RouterPort
	return &PortBindingSpec{Switch: router, Name: rp.Redirect, Type: "chassisredirect",
		Options: map[string]string{"distributed-port": p.Name},
		MAC:     []string{strings.TrimSpace(p.MAC + " " + strings.Join(p.Networks, " "))},
		HAGroup: rp.HA.Name}
}

// routerSwitchPortBinding completes the binding of a switch port of type
// router whose router port is on a gateway router (type l3gateway) or is
// a distributed gateway port, and sets nat_addresses as OVN 23.03 does: on
// a switch with a localnet port, unless options:nat-addresses says
// otherwise, the router port's MAC and IPv4 addresses (followed, for a
// distributed gateway port, by is_chassis_resident of its cr port), for
// the controller's gratuitous ARPs. An explicit nat-addresses other than
// "router" is copied.
func (nb *NB) routerSwitchPortBinding(pb *PortBindingSpec, sp *SwitchPort, localnet bool) {
	rp, r := nb.routerPortByName(sp.Options["router-port"])
	if rp == nil {
		return
	}
	chassis, redirect := nb.routerPortGateway(rp, r)
	if chassis != "" {
		pb.Type = "l3gateway"
		pb.Options["l3gateway-chassis"] = chassis
	}
	na, set := sp.Options["nat-addresses"]
	switch {
	case set && na != "router":
		if na = strings.TrimSpace(na); na != "" {
			pb.NATAddresses = []string{na}
		}
	case chassis == "" && redirect == "":
	case set && na == "router":
		pb.NATAddresses = natAddresses(nb, rp, r, redirect, true)
	case localnet:
		pb.NATAddresses = natAddresses(nb, rp, r, redirect, false)
	}
}

// natAddresses are the gratuitous-ARP entries of a gateway router port
// ("MAC IPv4...", followed for a distributed gateway port by
// is_chassis_resident of the port that answers for them): the port's own
// addresses and, with withNAT (nat-addresses=router), one entry with the
// IPv4 external IPs of the router's NAT rules and load balancer VIPs
// (sorted) and, on a
// distributed router, one per distributed floating IP with its
// external_mac, resident on its logical_port.
func natAddresses(nb *NB, rp *RouterPort, r *Router, redirect string, withNAT bool) []string {
	ctx, err := parseRouterPort(rp)
	if err != nil || len(ctx.IPv4) == 0 {
		return nil
	}
	resident := func(port string) string {
		if redirect == "" {
			return ""
		}
		return fmt.Sprintf(" is_chassis_resident(%s)", quote(port))
	}
	own := []string{ctx.MAC}
	for _, n := range ctx.IPv4 {
		own = append(own, n.Addr().String())
	}
	out := []string{strings.Join(own, " ") + resident(redirect)}
	if !withNAT {
		return out
	}
	var central []string
	var fips []string
	seen := map[string]bool{} // the port's own addresses are listed already
	for _, n := range ctx.IPv4 {
		seen[n.Addr().String()] = true
	}
	for _, id := range r.NAT {
		n := nb.NATs[id]
		if n == nil || seen[n.ExternalIP] || strings.Contains(n.ExternalIP, ":") {
			continue
		}
		seen[n.ExternalIP] = true
		if redirect != "" && n.Type == "dnat_and_snat" && n.ExternalMAC != "" && n.LogicalPort != "" {
			fips = append(fips, n.ExternalMAC+" "+n.ExternalIP+resident(n.LogicalPort))
			continue
		}
		central = append(central, n.ExternalIP)
	}
	// And the router's load balancer VIPs (IPv4).
	for _, lb := range nb.DatapathLBs(r.LoadBalancers, r.LBGroups) {
		l, _ := ParseLB(lb)
		for _, v := range l.VIPs {
			if a := v.Addr.String(); v.Addr.Is4() && !seen[a] {
				seen[a] = true
				central = append(central, a)
			}
		}
	}
	sort.Strings(central)
	sort.Strings(fips)
	if len(central) > 0 {
		out = append(out, ctx.MAC+" "+strings.Join(central, " ")+resident(redirect))
	}
	return append(out, fips...)
}

// onGateway is " && is_chassis_resident(cr port)" for a distributed
// gateway port (its traffic is handled on the gateway chassis), "" for
// other ports.
func (p *RouterPortCtx) onGateway() string {
	if p.Redirect == "" {
		return ""
	}
	return fmt.Sprintf(" && is_chassis_resident(%s)", quote(p.Redirect))
}

// distributedFIPs are the valid distributed floating IPs (dnat_and_snat
// with external_mac and logical_port) of router r on its distributed
// gateway port rp, for the peer switch's destination lookup.
func (nb *NB) distributedFIPs(r *Router, rp *RouterPort) []*NATCtx {
	if len(r.NAT) == 0 {
		return nil
	}
	rc := &RouterContext{Router: r, Chassis: gatewayChassis(r)}
	var dgps []*RouterPortCtx
	byUUID := map[string]*RouterPortCtx{}
	for _, id := range r.Ports {
		p := nb.RouterPorts[id]
		if p == nil {
			continue
		}
		if _, ok := nb.haGroup(p); ok {
			pc := &RouterPortCtx{RouterPort: p, Redirect: RedirectPrefix + p.Name}
			dgps = append(dgps, pc)
			byUUID[p.UUID] = pc
		}
	}
	ids := append([]string(nil), r.NAT...)
	sort.Strings(ids)
	var out []*NATCtx
	for _, id := range ids {
		n := nb.NATs[id]
		if n == nil {
			continue
		}
		if nc, err := newNAT(n, rc, dgps, byUUID); err == nil && nc.Distributed && nc.Port.RouterPort == rp {
			out = append(out, nc)
		}
	}
	return out
}
