package northd

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
)

// NATCtx is one valid NAT rule of a router.
type NATCtx struct {
	*NAT
	External netip.Addr
	Logical  netip.Prefix // a host prefix for dnat and dnat_and_snat
	// Port is the distributed gateway port the rule applies to (nil on a
	// gateway router).
	Port *RouterPortCtx
	// ExtMAC (canonical) and Distributed: a dnat_and_snat rule with
	// external_mac and logical_port on a distributed router is handled
	// on the chassis where logical_port resides, with external_mac as
	// its source MAC, instead of on the gateway chassis.
	ExtMAC      string
	Distributed bool
	// Stateless: options:stateless=true (dnat_and_snat only): addresses
	// are rewritten without conntrack.
	Stateless bool
}

// SNAT reports whether the rule translates source addresses (snat,
// dnat_and_snat).
func (n *NATCtx) SNAT() bool { return n.Type == "snat" || n.Type == "dnat_and_snat" }

// DNAT reports whether the rule translates destination addresses (dnat,
// dnat_and_snat).
func (n *NATCtx) DNAT() bool { return n.Type == "dnat" || n.Type == "dnat_and_snat" }

// resident is the is_chassis_resident() condition of the rule on a
// distributed router: the logical port of a distributed floating IP,
// else the gateway port's cr port.
func (n *NATCtx) resident() string {
	if n.Distributed {
		return fmt.Sprintf("is_chassis_resident(%s)", quote(n.LogicalPort))
	}
	return fmt.Sprintf("is_chassis_resident(%s)", quote(n.Port.Redirect))
}

// ip is the rule's IP version prefix ("ip4" or "ip6").
func (n *NATCtx) ip() string {
	if n.External.Is4() {
		return "ip4"
	}
	return "ip6"
}

// nextHopReg is the register routing leaves the next hop in (reg0 /
// xxreg0); srcReg the output port's address (reg1 / xxreg1).
func (n *NATCtx) nextHopReg() string {
	if n.External.Is4() {
		return "reg0"
	}
	return "xxreg0"
}

func (n *NATCtx) srcReg() string {
	if n.External.Is4() {
		return "reg1"
	}
	return "xxreg1"
}

// neighborMatch matches an ARP request (IPv4) or neighbour solicitation
// (IPv6) for the external IP.
func (n *NATCtx) neighborMatch() string {
	if n.External.Is4() {
		return "arp.op == 1 && arp.tpa == " + n.External.String()
	}
	return fmt.Sprintf("ip6.dst == {%s, %s} && nd_ns && nd.target == %s", n.External, solicitedNode(n.External), n.External)
}

// neighborReply answers it with mac.
func (n *NATCtx) neighborReply(mac string) string {
	if n.External.Is4() {
		return fmt.Sprintf(arpReply, mac)
	}
	return fmt.Sprintf("nd_na { eth.src = %[1]s; ip6.src = nd.target; nd.tll = %[1]s; outport = inport; flags.loopback = 1; output; };", mac)
}

// logicalMatch is the logical IP as a match operand (a host address
// without its prefix length).
func (n *NATCtx) logicalMatch() string { return prefixString(n.Logical) }

// newNATs validates a router's NAT rows (ordered by UUID); bad rows are
// reported on b and skipped.
func newNATs(nb *NB, rc *RouterContext, b *Builder) {
	if len(rc.Router.NAT) == 0 {
		return
	}
	var dgps []*RouterPortCtx
	byUUID := map[string]*RouterPortCtx{}
	for _, p := range rc.Ports {
		if p.Redirect != "" {
			dgps = append(dgps, p)
			byUUID[p.UUID] = p
		}
	}
	ids := append([]string(nil), rc.Router.NAT...)
	sort.Strings(ids)
	for _, id := range ids {
		n := nb.NATs[id]
		if n == nil {
			continue
		}
		nc, err := newNAT(n, rc, dgps, byUUID)
		if err != nil {
			b.Bad("NAT", n.UUID, n.ExternalIP, err)
			continue
		}
		rc.NATs = append(rc.NATs, nc)
	}
}

func newNAT(n *NAT, rc *RouterContext, dgps []*RouterPortCtx, byUUID map[string]*RouterPortCtx) (*NATCtx, error) {
	nc := &NATCtx{NAT: n}
	switch n.Type {
	case "snat", "dnat", "dnat_and_snat":
	default:
		return nil, fmt.Errorf("type %q is not snat, dnat or dnat_and_snat", n.Type)
	}
	var err error
	if nc.External, err = netip.ParseAddr(strings.TrimSpace(n.ExternalIP)); err != nil || nc.External.Zone() != "" {
		return nil, fmt.Errorf("external_ip %q is not an IP address", n.ExternalIP)
	}
	li := strings.TrimSpace(n.LogicalIP)
	if strings.Contains(li, "/") {
		nc.Logical, err = netip.ParsePrefix(li)
		if err == nil && nc.Logical.Masked() != nc.Logical {
			err = fmt.Errorf("host bits set")
		}
	} else {
		var a netip.Addr
		if a, err = netip.ParseAddr(li); err == nil {
			nc.Logical = netip.PrefixFrom(a, a.BitLen())
		}
	}
	if err != nil || nc.Logical.Addr().Zone() != "" || nc.Logical.Addr().Is4In6() {
		return nil, fmt.Errorf("logical_ip %q is not an IP address or network", n.LogicalIP)
	}
	if nc.Logical.Addr().Is4() != nc.External.Is4() {
		return nil, fmt.Errorf("external_ip %s and logical_ip %s are of different IP versions", n.ExternalIP, n.LogicalIP)
	}
	if nc.DNAT() && !nc.Logical.IsSingleIP() {
		return nil, fmt.Errorf("logical_ip %q: %s needs a single address", n.LogicalIP, n.Type)
	}
	if n.ExternalPortRange != "" {
		return nil, fmt.Errorf("external_port_range %q is not supported", n.ExternalPortRange)
	}
	if n.AllowedExtIPs || n.ExemptedExtIPs {
		return nil, fmt.Errorf("allowed_ext_ips / exempted_ext_ips are not supported")
	}
	if n.Options["stateless"] == "true" {
		if n.Type != "dnat_and_snat" {
			return nil, fmt.Errorf("options:stateless=true needs type dnat_and_snat, not %s", n.Type)
		}
		nc.Stateless = true
	}
	if n.ExternalMAC != "" {
		hw, err := net.ParseMAC(n.ExternalMAC)
		if err != nil || len(hw) != 6 {
			return nil, fmt.Errorf("external_mac %q is not an Ethernet address", n.ExternalMAC)
		}
		nc.ExtMAC = hw.String()
	}
	if rc.Chassis != "" {
		return nc, nil // gateway router: everything happens on its chassis
	}
	switch {
	case n.GatewayPort != "":
		if nc.Port = byUUID[n.GatewayPort]; nc.Port == nil {
			return nil, fmt.Errorf("gateway_port is not a distributed gateway port of router %q", rc.Router.Name)
		}
	case len(dgps) == 1:
		nc.Port = dgps[0]
	case len(dgps) == 0:
		return nil, fmt.Errorf("router %q is neither a gateway router (options:chassis) nor has a distributed gateway port", rc.Router.Name)
	default:
		return nil, fmt.Errorf("router %q has %d distributed gateway ports and gateway_port is not set", rc.Router.Name, len(dgps))
	}
	nc.Distributed = n.Type == "dnat_and_snat" && nc.ExtMAC != "" && n.LogicalPort != ""
	return nc, nil
}

// lrNATGen: NAT as OVN 23.03 on a gateway router and on a distributed
// router with a gateway port (ovn-northd(8), router pipeline):
// lr_in_ip_input answers ARP for external IPs, lr_in_unsnat reverses SNAT
// (ct_snat), lr_in_dnat translates destinations (ct_dnat), lr_out_undnat
// reverses DNAT, lr_out_snat translates sources (longest logical prefix
// first), lr_out_egr_loop sends traffic for an external IP of the router
// back into its ingress pipeline. On a distributed router this happens on
// the gateway chassis (is_chassis_resident of the cr port), or for a
// distributed floating IP where its logical port is; the "_in_czone"
// actions use the router's common (DNAT) zone so SNAT and DNAT of one
// connection share one conntrack entry.
type lrNATGen struct{}

func (lrNATGen) Name() string { return "northd/lr_nat.go" }

const arpReply = "eth.dst = eth.src; eth.src = %[1]s; arp.op = 2; arp.tha = arp.sha; arp.sha = %[1]s; " +
	"arp.tpa <-> arp.spa; outport = inport; flags.loopback = 1; output;"

// egressLoop re-injects a packet into the router's ingress pipeline
// (hairpin to an external IP of the router itself).
const egressLoop = `clone { ct_clear; inport = outport; outport = ""; eth.dst <-> eth.src; flags = 0; flags.loopback = 1; ` +
	`flags.use_snat_zone = reg9[4]; reg0 = 0; reg1 = 0; reg2 = 0; reg3 = 0; reg4 = 0; reg5 = 0; reg6 = 0; reg7 = 0; ` +
	`reg8 = 0; reg9 = 0; ` + regbitEgressLoopback + ` = 1; next(pipeline=ingress, table=0); };`

func (lrNATGen) Router(rc *RouterContext, b *Builder) {
	for _, p := range rc.Ports {
		if p.Redirect != "" && p.Enabled() {
			b.Ref(RefLRP, p.Name)
			b.Add(LRInGWRedirect, 50, "outport == "+quote(p.Name), "outport = "+quote(p.Redirect)+"; next;")
		}
	}
	b.Ref("", "")
	if len(rc.NATs) == 0 {
		return
	}
	b.Add(LROutChkDNATLocal, 50, "ip && ct_mark.natted == 1", regbitDNATLocal+" = 1; next;")
	if rc.Chassis != "" {
		gatewayRouterUnDNAT(b)
	}
	seenARP := map[netip.Addr]bool{}
	seenUnSNAT := map[netip.Addr]bool{}
	for _, n := range rc.NATs {
		b.Ref(RefNAT, n.UUID)
		if !seenARP[n.External] {
			seenARP[n.External] = true
			b.Add(LRInIPInput, 90, n.neighborMatch(), n.neighborReply("xreg0[0..47]"))
		}
		if rc.Chassis != "" {
			gatewayRouterNAT(n, b, seenUnSNAT)
			continue
		}
		distributedNAT(n, b, seenUnSNAT)
	}
	b.Ref("", "")
}

// gatewayRouterNAT: the flows of one NAT rule on a gateway router.
func gatewayRouterNAT(n *NATCtx, b *Builder, seenUnSNAT map[netip.Addr]bool) {
	ext, ip := n.External.String(), n.ip()
	if n.Stateless {
		// Addresses rewritten in place, both ways, without conntrack.
		if !seenUnSNAT[n.External] {
			seenUnSNAT[n.External] = true
			b.Add(LRInUnSNAT, 90, "ip && "+ip+".dst == "+ext, "next;")
		}
		b.Add(LRInDNAT, 100, "ip && "+ip+".dst == "+ext, fmt.Sprintf("flags.loopback = 1; %s.dst=%s; next;", ip, n.logicalMatch()))
		b.Add(LROutSNAT, uint16(n.Logical.Bits()+1), fmt.Sprintf("ip && %s.src == %s", ip, n.logicalMatch()),
			fmt.Sprintf("%s.src=%s; next;", ip, ext))
		return
	}
	if n.SNAT() && !seenUnSNAT[n.External] {
		seenUnSNAT[n.External] = true
		b.Add(LRInUnSNAT, 90, "ip && "+ip+".dst == "+ext, "ct_snat;")
	}
	if n.DNAT() {
		b.Add(LRInDNAT, 100, "ip && "+ip+".dst == "+ext, fmt.Sprintf("flags.loopback = 1; ct_dnat(%s);", n.logicalMatch()))
	}
	if n.SNAT() {
		b.Add(LROutSNAT, uint16(n.Logical.Bits()+1), fmt.Sprintf("ip && %s.src == %s && (!ct.trk || !ct.rpl)", ip, n.logicalMatch()),
			fmt.Sprintf("ct_snat(%s);", ext))
	}
}

// distributedNAT: the flows of one NAT rule on a distributed router,
// applied at its gateway port.
func distributedNAT(n *NATCtx, b *Builder, seenUnSNAT map[netip.Addr]bool) {
	ext, ip := n.External.String(), n.ip()
	p := n.Port
	in, out := "inport == "+quote(p.Name), "outport == "+quote(p.Name)
	res := n.resident()
	// A condition on the gateway chassis, left out for distributed
	// floating IPs where the match does not need it.
	gwRes := " && " + res
	if n.Distributed {
		gwRes = ""
	}
	mac, setMAC := "xreg0[0..47]", ""
	if n.Distributed {
		mac, setMAC = n.ExtMAC, "eth.src = "+n.ExtMAC+"; "
	}
	if n.Type == "snat" {
		// Packets from the SNAT address itself (looped back by
		// lr_out_egr_loop) are not spoofed.
		b.Add(LRInIPInput, 120, fmt.Sprintf("%s && %s.src == %s", in, ip, ext), "next;")
	}
	b.Add(LRInIPInput, 92, fmt.Sprintf("%s && %s && %s", in, n.neighborMatch(), res), n.neighborReply(mac))
	b.Add(LRInIPInput, 91, fmt.Sprintf("%s && %s", in, n.neighborMatch()), "drop;")
	switch {
	case n.Stateless:
		if !seenUnSNAT[n.External] {
			seenUnSNAT[n.External] = true
			b.Add(LRInUnSNAT, 100, fmt.Sprintf("ip && %s.dst == %s && %s && flags.loopback == 0%s", ip, ext, in, gwRes), "next;")
		}
		b.Add(LRInDNAT, 100, fmt.Sprintf("ip && %s.dst == %s && %s%s", ip, ext, in, gwRes), fmt.Sprintf("%s.dst=%s; next;", ip, n.logicalMatch()))
		b.Add(LROutUnDNAT, 100, fmt.Sprintf("ip && %s.src == %s && %s%s", ip, n.logicalMatch(), out, gwRes), setMAC+"next;")
	default:
		if n.SNAT() && !seenUnSNAT[n.External] {
			seenUnSNAT[n.External] = true
			m := fmt.Sprintf("ip && %s.dst == %s && %s", ip, ext, in)
			b.Add(LRInUnSNAT, 100, m+" && flags.loopback == 0"+gwRes, "ct_snat_in_czone;")
			b.Add(LRInUnSNAT, 100, m+" && flags.loopback == 1 && flags.use_snat_zone == 1"+gwRes, "ct_snat;")
		}
		if n.DNAT() {
			b.Add(LRInDNAT, 100, fmt.Sprintf("ip && %s.dst == %s && %s%s", ip, ext, in, gwRes), fmt.Sprintf("ct_dnat_in_czone(%s);", n.logicalMatch()))
			b.Add(LROutUnDNAT, 100, fmt.Sprintf("ip && %s.src == %s && %s%s", ip, n.logicalMatch(), out, gwRes), setMAC+"ct_dnat_in_czone;")
		}
	}
	b.Add(LRInARPResolve, 150, fmt.Sprintf("%s && %s && %s.dst == %s", in, out, ip, ext), "drop;")
	if n.Distributed {
		b.Add(LRInARPResolve, 100, fmt.Sprintf("%s && %s == %s", out, n.nextHopReg(), ext), "eth.dst = "+n.ExtMAC+"; next;")
		b.Add(LRInGWRedirect, 100, fmt.Sprintf("%s.src == %s && %s && %s", ip, n.logicalMatch(), out, res),
			fmt.Sprintf("eth.src = %s; %s = %s; next;", n.ExtMAC, n.srcReg(), ext))
	} else {
		b.Add(LRInARPResolve, 100, fmt.Sprintf("%s && %s == %s", out, n.nextHopReg(), ext), "eth.dst = "+p.MAC+"; next;")
	}
	b.Add(LROutChkDNATLocal, 50, fmt.Sprintf("ip && %s.dst == %s && %s", ip, ext, res), regbitDNATLocal+" = 1; next;")
	if n.SNAT() {
		prio := uint16(n.Logical.Bits() + 1 + natDistributedPrio)
		m := fmt.Sprintf("ip && %s.src == %s && %s && %s", ip, n.logicalMatch(), out, res)
		if n.Stateless {
			b.Add(LROutSNAT, prio, m, fmt.Sprintf("%s%s.src=%s; next;", setMAC, ip, ext))
		} else {
			b.Add(LROutSNAT, prio+1, m+" && "+regbitDNATLocal+" == 1", fmt.Sprintf("%s%s = 0; ct_snat(%s);", setMAC, regbitDNATLocal, ext))
			b.Add(LROutSNAT, prio, m, fmt.Sprintf("%sct_snat_in_czone(%s);", setMAC, ext))
		}
	}
	b.Add(LROutEgrLoop, 100, fmt.Sprintf("%s.dst == %s && %s && %s", ip, ext, out, res), egressLoop)
}

// natDistributedPrio lifts a distributed router's SNAT flows (prefix
// length + 1) above a gateway router's range, as OVN 23.03 numbers them.
const natDistributedPrio = 128
