package northd

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// routerLBs parses the load balancers of a router (its own and those of
// its load balancer groups). Bad VIPs and options are reported and left
// out (as for switches).
func routerLBs(nb *NB, r *Router, b *Builder) []*LB {
	var out []*LB
	for _, lb := range nb.DatapathLBs(r.LoadBalancers, r.LBGroups) {
		l, errs := ParseLB(lb)
		for _, err := range errs {
			b.Bad("Load_Balancer", lb.UUID, lb.Name, err)
		}
		out = append(out, l)
	}
	return out
}

// lrLBGen: load balancers on a router, as OVN 23.03: lr_in_defrag sends
// traffic for a VIP to conntrack (ct_dnat: established connections are
// translated), lr_in_dnat picks a backend for new connections
// (ct_lb_mark, on the gateway chassis of a distributed router) and passes
// established/related ones, lr_out_undnat reverses the translation of
// replies leaving by a distributed gateway port (a gateway router
// un-DNATs everything, see lrNATGen), and the router answers ARP for VIPs
// on its networks.
type lrLBGen struct{}

func (lrLBGen) Name() string { return "northd/lr_lb.go" }

func (lrLBGen) Router(rc *RouterContext, b *Builder) {
	force := strings.TrimSpace(rc.Router.Options["lb_force_snat_ip"]) != ""
	if rc.Chassis != "" {
		forceSNATIPs(rc, b)
	}
	nvips := 0
	for _, l := range rc.LBs {
		nvips += len(l.VIPs)
	}
	if nvips == 0 {
		return
	}
	var dgp *RouterPortCtx
	ndgp := 0
	for _, p := range rc.Ports {
		if p.Redirect != "" {
			dgp = p
			ndgp++
		}
	}
	if ndgp > 1 {
		for _, l := range rc.LBs {
			b.Bad("Load_Balancer", l.UUID, l.Name, fmt.Errorf("router %q has %d distributed gateway ports: load balancing is not supported there", rc.Router.Name, ndgp))
		}
		return
	}
	res := ""
	if dgp != nil {
		res = fmt.Sprintf(" && is_chassis_resident(%s)", quote(dgp.Redirect))
	}

	b.Add(LRInDNAT, 70, "ct.est && !ct.rel && !ct.new && ct_mark.natted && ct_mark.force_snat == 1", "flags.force_snat_for_lb = 1; next;")
	b.Add(LRInDNAT, 70, "ct.est && !ct.rel && !ct.new && ct_mark.natted && ct_mark.skip_snat == 1", "flags.skip_snat_for_lb = 1; next;")
	b.Add(LRInDNAT, 70, "ct.rel && !ct.est && !ct.new && ct_mark.force_snat == 1", "flags.force_snat_for_lb = 1; ct_commit_nat;")
	b.Add(LRInDNAT, 70, "ct.rel && !ct.est && !ct.new && ct_mark.skip_snat == 1", "flags.skip_snat_for_lb = 1; ct_commit_nat;")
	b.Add(LRInDNAT, 50, "ct.est && !ct.rel && !ct.new && ct_mark.natted", "next;")
	b.Add(LRInDNAT, 50, "ct.rel && !ct.est && !ct.new", "ct_commit_nat;")
	if rc.Chassis != "" {
		gatewayRouterUnDNAT(b)
	}

	reachable := map[bool]map[string]bool{true: {}, false: {}} // IPv4? → VIPs
	for _, l := range rc.LBs {
		b.Ref(RefLB, l.UUID)
		if l.SkipSNAT {
			b.Add(LROutSNAT, 120, "flags.skip_snat_for_lb == 1 && ip", "next;")
		}
		// skip_snat wins over the router's lb_force_snat_ip.
		flag, ctFlag := "", ""
		switch {
		case l.SkipSNAT:
			flag, ctFlag = "flags.skip_snat_for_lb = 1; ", "; skip_snat"
		case force:
			flag, ctFlag = "flags.force_snat_for_lb = 1; ", "; force_snat"
		}
		for i := range l.VIPs {
			v := &l.VIPs[i]
			vip, ip := v.Addr.String(), "ip4"
			if v.IsV6() {
				ip = "ip6"
			}
			for _, p := range rc.Ports {
				for _, n := range append(append([]netip.Prefix(nil), p.IPv4...), p.IPv6...) {
					if n.Contains(v.Addr) {
						reachable[!v.IsV6()][vip] = true
					}
				}
			}
			b.Add(LRInDefrag, 100, "ip && "+ip+".dst == "+vip, "ct_dnat;")
			match := fmt.Sprintf("ct.new && !ct.rel && %[1]s && %[1]s.dst == %[2]s", ip, vip)
			prio := uint16(110)
			if v.Port != 0 {
				match += fmt.Sprintf(" && %[1]s && %[1]s.dst == %[2]d", l.Protocol, v.Port)
				prio = 120
			}
			switch {
			case len(v.Backends) > 0:
				args := "backends=" + v.BackendList()
				if l.HashFields != "" {
					args += "; hash_fields=" + quote(l.HashFields)
				}
				b.Add(LRInDNAT, prio, match+res, flag+"ct_lb_mark("+args+ctFlag+");")
				if l.AffinityTimeout > 0 {
					routerAffinityFlows(l, v, flag, ctFlag, b)
				}
			case l.Reject:
				// As OVN 23.03, the reject flow of a distributed router
				// has no gateway-chassis condition.
				b.Add(LRInDNAT, prio, match, fmt.Sprintf("%sreg0 = 0; reject { outport <-> inport; next(pipeline=egress,table=%d);};", flag, LROutSNAT.Table()))
			default:
				// OVN 23.03 writes flag+"drop;", which its own action
				// parser rejects (drop must be the only action), so
				// ovn-controller skips that flow; govn drops.
				b.Add(LRInDNAT, prio, match+res, "drop;")
			}
			if dgp != nil && len(v.Backends) > 0 {
				terms := make([]string, len(v.Backends))
				for j, be := range v.Backends {
					terms[j] = "(" + ip + ".src == " + be.Addr.String()
					if be.Port != 0 {
						terms[j] += fmt.Sprintf(" && %s.src == %d", l.Protocol, be.Port)
					}
					terms[j] += ")"
				}
				act := "ct_dnat_in_czone;"
				if flag != "" {
					act = flag + "next;"
				}
				b.Add(LROutUnDNAT, 120, fmt.Sprintf("%s && (%s) && outport == %s%s", ip, strings.Join(terms, " || "), quote(dgp.Name), res), act)
			}
		}
	}
	b.Ref("", "")
	// ARP / ND for the VIPs on the router's networks, on every port (OVN
	// 23.03 names them through the SB address sets
	// _rtr_lb_<datapath key>_ip4/_ip6; govn writes the addresses).
	for _, v4 := range []bool{true, false} {
		if len(reachable[v4]) == 0 {
			continue
		}
		vips := make([]string, 0, len(reachable[v4]))
		for a := range reachable[v4] {
			vips = append(vips, a)
		}
		sort.Strings(vips)
		set := "{" + strings.Join(vips, ", ") + "}"
		for _, p := range rc.Ports {
			b.Ref(RefLRP, p.Name)
			if v4 {
				b.Add(LRInIPInput, 90, fmt.Sprintf("inport == %s && arp.op == 1 && arp.tpa == %s%s", quote(p.Name), set, p.onGateway()),
					fmt.Sprintf(arpReply, "xreg0[0..47]"))
			} else {
				b.Add(LRInIPInput, 90, fmt.Sprintf("inport == %s && nd_ns && nd.target == %s%s", quote(p.Name), set, p.onGateway()),
					"nd_na { eth.src = xreg0[0..47]; ip6.src = nd.target; nd.tll = xreg0[0..47]; outport = inport; flags.loopback = 1; output; };")
			}
		}
	}
	b.Ref("", "")
}

// routerAffinityFlows: session affinity for a router VIP of a load
// balancer with options:affinity_timeout, as OVN 23.03 (see
// switchAffinityFlows): lr_in_lb_aff_check saves the VIP in reg0/xxreg0
// and its port in reg9[16..31] and asks chk_lb_aff(); a hit goes to the
// learned backend in lr_in_dnat (priority 150), a miss is learned in
// lr_in_lb_aff_learn after ct_lb_mark chose the backend. The learn flow
// continues with next; (OVN 23.03 ends there, dropping the first packet
// of each new session). The hit keeps the load balancer's skip_snat /
// force_snat flags like the priority-120 flow.
func routerAffinityFlows(l *LB, v *LBVIP, flag, ctFlag string, b *Builder) {
	ip, vipReg, beReg := "ip4", "reg0", regLBAffBackendIP4
	if v.IsV6() {
		ip, vipReg, beReg = "ip6", "xxreg0", regLBAffBackendIP6
	}
	check := fmt.Sprintf("ct.new && !ct.rel && %[1]s && %[1]s.dst == %[2]s", ip, v.Addr)
	save := fmt.Sprintf("%s = %s.dst; ", vipReg, ip)
	vipMatch := fmt.Sprintf("%s == %s", vipReg, v.Addr)
	proto := ""
	if v.Port != 0 {
		check += fmt.Sprintf(" && %[1]s && %[1]s.dst == %[2]d", l.Protocol, v.Port)
		save += fmt.Sprintf("%s = %s.dst; ", regLRLBPort, l.Protocol)
		vipMatch += fmt.Sprintf(" && %s == %d", regLRLBPort, v.Port)
		proto = ", proto = " + l.Protocol
	}
	b.Add(LRInLBAffCheck, 100, check, save+regbitKnownLBSession+" = chk_lb_aff(); next;")
	for _, be := range v.Backends {
		hit := fmt.Sprintf("%s == 1 && ct.new && %s && %s == %s", regbitKnownLBSession, ip, beReg, be.Addr)
		learn := fmt.Sprintf("%s == 0 && ct.new && %s && %s && %s.dst == %s", regbitKnownLBSession, ip, vipMatch, ip, be.Addr)
		if be.Port != 0 {
			hit += fmt.Sprintf(" && %s == %d", regLBAffMatchPort, be.Port)
			learn += fmt.Sprintf(" && %s.dst == %d", l.Protocol, be.Port)
		}
		b.Add(LRInDNAT, 150, hit, fmt.Sprintf("%s = %s; %sct_lb_mark(backends=%s%s);", vipReg, v.Addr, flag, be, ctFlag))
		b.Add(LRInLBAffLearn, 100, learn, fmt.Sprintf("commit_lb_aff(vip = %s, backend = %s%s, timeout = %d); next;",
			quote(hostPort(v.Addr, v.Port)), quote(be.String()), proto, l.AffinityTimeout))
	}
}

// gatewayRouterUnDNAT: a gateway router with NAT or load balancers
// un-DNATs every reply and commits new connections in lr_out_post_undnat.
func gatewayRouterUnDNAT(b *Builder) {
	b.Add(LROutUnDNAT, 100, "nd || nd_rs || nd_ra", "next;")
	b.Add(LROutUnDNAT, 50, "ip", "flags.loopback = 1; ct_dnat;")
	b.Add(LROutPostUnDNAT, 50, "ip && ct.new", "ct_commit { }; next;")
}

// forceSNATIPs: a gateway router's options:lb_force_snat_ip (IPv4 and/or
// IPv6 addresses) is the source of load-balanced connections
// (flags.force_snat_for_lb, set in lr_in_dnat), and replies to it are
// un-SNATed. "router_ip" (per-port addresses) gives no flows in OVN 23.03
// either.
func forceSNATIPs(rc *RouterContext, b *Builder) {
	v := strings.TrimSpace(rc.Router.Options["lb_force_snat_ip"])
	if v == "" || v == "router_ip" {
		return
	}
	seen := map[bool]bool{}
	for _, f := range strings.Fields(v) {
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" || a.Is4In6() {
			b.Bad("Logical_Router", rc.Router.UUID, rc.Router.Name, fmt.Errorf("options:lb_force_snat_ip: %q is not an IP address", f))
			return
		}
		if seen[a.Is4()] {
			continue // one address per family, the first
		}
		seen[a.Is4()] = true
		ip := "ip6"
		if a.Is4() {
			ip = "ip4"
		}
		b.Add(LRInUnSNAT, 110, fmt.Sprintf("%s && %s.dst == %s", ip, ip, a), "ct_snat;")
		b.Add(LROutSNAT, 100, "flags.force_snat_for_lb == 1 && "+ip, fmt.Sprintf("ct_snat(%s);", a))
	}
}
