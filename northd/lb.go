package northd

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
)

// Load balancers (NB Load_Balancer, Load_Balancer_Group) on logical
// switches: parsing of the rows, and the switch flows of OVN 23.03's
// Pre-LB, Pre-stateful, LB, Pre-Hairpin, Nat-Hairpin and Hairpin stages.

// LBBackend is one backend of a VIP.
type LBBackend struct {
	Addr netip.Addr
	Port uint16 // 0: none (the destination port is kept)
}

// String is the backend as ct_lb_mark(backends=...) writes it:
// "10.0.0.1", "10.0.0.1:80", "fd00::1", "[fd00::1]:80".
func (b LBBackend) String() string { return hostPort(b.Addr, b.Port) }

func hostPort(a netip.Addr, port uint16) string {
	if port == 0 {
		return a.String()
	}
	return netip.AddrPortFrom(a, port).String()
}

// LBVIP is one parsed entry of Load_Balancer.vips.
type LBVIP struct {
	Key      string // the vips key verbatim
	Addr     netip.Addr
	Port     uint16 // 0: portless VIP (all traffic to the address)
	Backends []LBBackend
	flows    vipFlows // its switch flows' texts
}

// IsV6 reports an IPv6 VIP.
func (v *LBVIP) IsV6() bool { return v.Addr.Is6() }

// BackendList is the backends as ct_lb_mark's backends= argument.
func (v *LBVIP) BackendList() string {
	ss := make([]string, len(v.Backends))
	for i, b := range v.Backends {
		ss[i] = b.String()
	}
	return strings.Join(ss, ",")
}

// LB is a load balancer row with its VIPs and options parsed.
type LB struct {
	*LoadBalancer
	Protocol string  // tcp (default), udp or sctp
	VIPs     []LBVIP // valid VIPs, ordered by key
	// Reject: options:reject=true — a VIP without backends answers with a
	// TCP reset / ICMP unreachable instead of dropping.
	Reject bool
	// SkipSNAT: options:skip_snat=true (routers: no lb_force_snat_ip).
	SkipSNAT bool
	// HairpinSNATv4/v6: options:hairpin_snat_ip (source of hairpinned
	// traffic instead of the VIP); invalid when unset.
	HairpinSNATv4, HairpinSNATv6 netip.Addr
	// AffinityTimeout: options:affinity_timeout in seconds (0: none).
	AffinityTimeout int
	// HashFields is the ct_lb_mark hash_fields argument from
	// selection_fields ("" when unset: dp_hash).
	HashFields string
}

// ParseLB parses a Load_Balancer row. A VIP that does not parse (bad
// address, port, backend, address family mix, a backend port on a
// portless VIP) is left out, as OVN does, and reported in errs with the
// reason; so are invalid options (which are then ignored). The LB with
// the remaining VIPs is always returned.
func ParseLB(lb *LoadBalancer) (out *LB, errs []error) {
	out = &LB{LoadBalancer: lb, Protocol: "tcp"}
	switch lb.Protocol {
	case "", "tcp":
	case "udp", "sctp":
		out.Protocol = lb.Protocol
	default:
		errs = append(errs, fmt.Errorf("protocol %q is not tcp, udp or sctp", lb.Protocol))
		return out, errs
	}
	keys := make([]string, 0, len(lb.Vips))
	for k := range lb.Vips {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, err := ParseLBVIP(k, lb.Vips[k])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out.VIPs = append(out.VIPs, v)
	}
	o := lb.Options
	out.Reject = o["reject"] == "true"
	out.SkipSNAT = o["skip_snat"] == "true"
	if s, ok := o["hairpin_snat_ip"]; ok {
		for _, f := range strings.Fields(s) {
			a, err := netip.ParseAddr(f)
			switch {
			case err != nil || a.Zone() != "" || a.Is4In6():
				errs = append(errs, fmt.Errorf("options:hairpin_snat_ip %q: %q is not an IP address", s, f))
			case a.Is4() && !out.HairpinSNATv4.IsValid():
				out.HairpinSNATv4 = a
			case a.Is6() && !out.HairpinSNATv6.IsValid():
				out.HairpinSNATv6 = a
			default:
				errs = append(errs, fmt.Errorf("options:hairpin_snat_ip %q: more than one address of a family", s))
			}
		}
	}
	if s, ok := o["affinity_timeout"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 65535 {
			errs = append(errs, fmt.Errorf("options:affinity_timeout %q is not a number of seconds in 0..65535", s))
		} else {
			out.AffinityTimeout = n
		}
	}
	if len(lb.SelectionFields) > 0 {
		// As OVN: the NB set's (sorted) order; tp_src/tp_dst name the
		// protocol's port field.
		fs := append([]string(nil), lb.SelectionFields...)
		sort.Strings(fs)
		for i, f := range fs {
			switch f {
			case "tp_src", "tp_dst":
				fs[i] = out.Protocol + f[2:]
			}
		}
		out.HashFields = strings.Join(fs, ",")
	}
	for i := range out.VIPs {
		out.VIPs[i].flows = switchVIPFlows(out, &out.VIPs[i])
	}
	return out, errs
}

// ParseLBVIP parses one vips entry: key "IP", "IP:port", "[IPv6]" or
// "[IPv6]:port"; value a comma-separated list of backends in the same
// forms (may be empty: no backends). A portless VIP's backends carry no
// port; every backend has the VIP's address family.
func ParseLBVIP(key, value string) (LBVIP, error) {
	v := LBVIP{Key: key}
	var err error
	v.Addr, v.Port, err = parseHostPort(strings.TrimSpace(key))
	if err != nil {
		return v, fmt.Errorf("vip %q: %v", key, err)
	}
	for _, tok := range strings.Split(value, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			continue
		}
		a, p, err := parseHostPort(tok)
		if err != nil {
			return v, fmt.Errorf("vip %q: backend %q: %v", key, tok, err)
		}
		if a.Is4() != v.Addr.Is4() {
			return v, fmt.Errorf("vip %q: backend %q is not of the VIP's address family", key, tok)
		}
		if p != 0 && v.Port == 0 {
			return v, fmt.Errorf("vip %q: backend %q has a port but the VIP has none", key, tok)
		}
		v.Backends = append(v.Backends, LBBackend{Addr: a, Port: p})
	}
	return v, nil
}

// parseHostPort parses "IP", "IP:port", "[IPv6]" or "[IPv6]:port" (port
// 1..65535; 0 returned when absent).
func parseHostPort(s string) (netip.Addr, uint16, error) {
	host, portStr := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return netip.Addr{}, 0, fmt.Errorf("missing ']'")
		}
		host = s[1:end]
		rest := s[end+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return netip.Addr{}, 0, fmt.Errorf("unexpected %q after ']'", rest)
			}
			portStr = rest[1:]
			if portStr == "" {
				return netip.Addr{}, 0, fmt.Errorf("empty port")
			}
		}
	case strings.Count(s, ":") == 1:
		host, portStr, _ = strings.Cut(s, ":")
		if portStr == "" {
			return netip.Addr{}, 0, fmt.Errorf("empty port")
		}
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" || a.Is4In6() {
		return netip.Addr{}, 0, fmt.Errorf("%q is not an IP address", host)
	}
	if a.Is4() && strings.HasPrefix(s, "[") {
		return netip.Addr{}, 0, fmt.Errorf("brackets around IPv4 address %q", host)
	}
	var port uint16
	if portStr != "" {
		n, err := strconv.Atoi(portStr)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != portStr {
			return netip.Addr{}, 0, fmt.Errorf("port %q is not a number in 1..65535", portStr)
		}
		port = uint16(n)
	}
	return a, port, nil
}

// switchLBs parses the load balancers of a switch, reporting bad rows on
// b. LBs are in UUID order.
func switchLBs(nb *NB, s *Switch, b *Builder) []*LB {
	var out []*LB
	for _, lb := range nb.DatapathLBs(s.LoadBalancers, s.LBGroups) {
		l, errs := nb.parsedLB(lb)
		for _, err := range errs {
			b.Bad("Load_Balancer", lb.UUID, lb.Name, err)
		}
		out = append(out, l)
	}
	return out
}

// LBSpec is a desired SB Load_Balancer row (as OVN 23.03 writes it: one
// per NB load balancer used by at least one logical switch, directly or
// through a group; name, vips and protocol copied, NB options plus
// hairpin_orig_tuple=true, the switches' datapaths).
type LBSpec struct {
	Name     string
	Vips     map[string]string
	Protocol string // NB protocol verbatim ("" when unset)
	Options  map[string]string
	Switches []string // NB switch UUIDs, sorted
}

// SB Load_Balancer keys northd writes.
const (
	ExtLBID               = "lb_id"              // external_ids: NB Load_Balancer UUID
	LBOptHairpinOrigTuple = "hairpin_orig_tuple" // options: flows match the ct original tuple
)

// runLBs recomputes the desired SB Load_Balancer rows.
func (e *Engine) runLBs(nb *NB) {
	e.lbChanged = true
	lbs := map[string]*LBSpec{}
	for _, id := range lbSwitchIDs(nb) {
		s := nb.Switches[id]
		for _, lb := range nb.DatapathLBs(s.LoadBalancers, s.LBGroups) {
			sp := lbs[lb.UUID]
			if sp == nil {
				opts := make(map[string]string, len(lb.Options)+1)
				for k, v := range lb.Options {
					opts[k] = v
				}
				opts[LBOptHairpinOrigTuple] = "true"
				sp = &LBSpec{Name: lb.Name, Vips: lb.Vips, Protocol: lb.Protocol, Options: opts}
				if sp.Vips == nil {
					sp.Vips = map[string]string{}
				}
				lbs[lb.UUID] = sp
			}
			sp.Switches = append(sp.Switches, id)
		}
	}
	e.LBs = lbs
}

func lbSwitchIDs(nb *NB) []string {
	ids := make([]string, 0, len(nb.Switches))
	for id, s := range nb.Switches {
		if len(s.LoadBalancers) > 0 || len(s.LBGroups) > 0 {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// lbGen: the switch's Pre-LB, per-VIP Pre-stateful, LB and hairpin flows
// (ingress and egress), as OVN 23.03. The pre-stateful stage's generic
// flows and the stateful commit are aclGen's. Session affinity
// (options:affinity_timeout): switchAffinityFlows.
type lbGen struct{}

func (lbGen) Name() string { return "northd/lb.go" }

func (lbGen) Switch(sc *SwitchContext, b *Builder) {
	ndMLD := "nd || nd_rs || nd_ra"
	if sc.Caps.MLD {
		ndMLD += " || mldv1 || mldv2"
	}
	// Pre-LB: traffic that never goes to conntrack for load balancing.
	for _, d := range []struct {
		stage     Stage
		svc, port string
		egress    bool
	}{
		{LSInPreLB, "eth.dst == $svc_monitor_mac", "inport", false},
		{LSOutPreLB, "eth.src == $svc_monitor_mac", "outport", true},
	} {
		b.Add(d.stage, 110, d.svc, "next;")
		b.Add(d.stage, 110, "eth.mcast", "next;")
		b.Add(d.stage, 110, ndMLD, "next;")
		b.Add(d.stage, 110, regbitACLStateless+" == 1", "next;")
		b.Add(d.stage, 0, "1", "next;")
		// Router ports never use the switch's conntrack (the router has
		// its own); localnet ports neither, unless a VIP must be
		// reachable from the physical network. Leaving towards such a
		// port, the switch's conntrack state is cleared unless stateful
		// ACLs need it.
		act := "next;"
		if d.egress && !sc.HasStateful {
			act = "ct_clear; next;"
		}
		for _, p := range sc.Ports {
			if p.Type == "router" || (p.Type == "localnet" && !sc.HasLBVIP) {
				b.Ref(RefLSP, p.Name)
				b.Add(d.stage, 110, "ip && "+d.port+" == "+quote(p.Name), act)
				b.Ref("", "")
			}
		}
		if sc.HasLBVIP {
			b.Add(d.stage, 100, "ip", regbitConntrackNAT+" = 1; next;")
		}
	}

	// Default flows of the LB and hairpin stages.
	for _, st := range []Stage{LSInLBAffCheck, LSInLB, LSInLBAffLearn, LSInPreHairpin, LSInNATHairpin, LSInHairpin} {
		b.Add(st, 0, "1", "next;")
	}
	if !sc.HasLBVIP {
		return
	}
	// Hairpin: a backend reaching a VIP that load-balances to itself.
	// chk_lb_hairpin (reg0[6]) is set for such a connection's packets
	// from the backend, chk_lb_hairpin_reply (reg0[12]) for its replies;
	// both are SNATed (to the VIP or hairpin_snat_ip) and sent back out
	// of the port they came in on.
	b.Add(LSInPreHairpin, 100, "ip && ct.trk",
		regbitHairpin+" = chk_lb_hairpin(); "+regbitHairpinReply+" = chk_lb_hairpin_reply(); next;")
	b.Add(LSInNATHairpin, 100, "ip && ct.new && ct.trk && "+regbitHairpin+" == 1", "ct_snat_to_vip; next;")
	b.Add(LSInNATHairpin, 100, "ip && ct.est && ct.trk && "+regbitHairpin+" == 1", "ct_snat;")
	b.Add(LSInNATHairpin, 90, "ip && "+regbitHairpinReply+" == 1", "ct_snat;")
	b.Add(LSInHairpin, 1, "("+regbitHairpin+" == 1 || "+regbitHairpinReply+" == 1)",
		"eth.dst <-> eth.src; outport = inport; flags.loopback = 1; output;")

	for _, l := range sc.LBs {
		b.Ref(RefLB, l.UUID)
		for i := range l.VIPs {
			lbVIPFlows(&l.VIPs[i], b)
			if l.AffinityTimeout > 0 {
				switchAffinityFlows(l, &l.VIPs[i], b)
			}
		}
	}
	b.Ref("", "")
}

// switchAffinityFlows: session affinity for a VIP of a load balancer with
// options:affinity_timeout, as OVN 23.03. ls_in_lb_aff_check asks
// chk_lb_aff() whether this client has a live session with the VIP (the
// original destination is in reg1/xxreg1 and reg2[0..15] after
// pre-stateful); if so, the learned flow has loaded the backend and
// ls_in_lb (priority 150) sends the connection to that backend alone. A
// new connection that was load balanced normally reaches
// ls_in_lb_aff_learn with its chosen backend as destination and
// commit_lb_aff learns the session (idle timeout = affinity_timeout).
//
// Two deliberate differences from OVN 23.03 (northd/README): the learn
// flow continues with next; (23.03 ends it there, dropping the first
// packet of every new session), and IPv6 sessions match the backend in
// xxreg1, where commit_lb_aff loads it (23.03 matches xxreg0 on switches,
// which never hits).
func switchAffinityFlows(l *LB, v *LBVIP, b *Builder) {
	if len(v.Backends) == 0 {
		return
	}
	ipv, vipReg, beReg := "ip4", "reg1", regLBAffBackendIP4
	if v.IsV6() {
		ipv, vipReg, beReg = "ip6", "xxreg1", regLBAffBackendIP6
	}
	vipMatch := fmt.Sprintf("%s == %s", vipReg, v.Addr)
	save := fmt.Sprintf("%s = %s; ", vipReg, v.Addr)
	proto := ""
	if v.Port != 0 {
		vipMatch += fmt.Sprintf(" && %s == %d", regLBPort, v.Port)
		save += fmt.Sprintf("%s = %d; ", regLBPort, v.Port)
		proto = ", proto = " + l.Protocol
	}
	b.Add(LSInLBAffCheck, 100, "ct.new && "+ipv+" && "+vipMatch, regbitKnownLBSession+" = chk_lb_aff(); next;")
	for _, be := range v.Backends {
		hit := fmt.Sprintf("%s == 1 && ct.new && %s && %s == %s", regbitKnownLBSession, ipv, beReg, be.Addr)
		learn := fmt.Sprintf("%s == 0 && ct.new && %s && %s && %s.dst == %s", regbitKnownLBSession, ipv, vipMatch, ipv, be.Addr)
		if be.Port != 0 {
			hit += fmt.Sprintf(" && %s == %d", regLBAffMatchPort, be.Port)
			learn += fmt.Sprintf(" && %s.dst == %d", l.Protocol, be.Port)
		}
		b.Add(LSInLB, 150, hit, regbitConntrackCommit+" = 0; "+save+"ct_lb_mark(backends="+be.String()+");")
		b.Add(LSInLBAffLearn, 100, learn, fmt.Sprintf("commit_lb_aff(vip = %s, backend = %s%s, timeout = %d); next;",
			quote(hostPort(v.Addr, v.Port)), quote(be.String()), proto, l.AffinityTimeout))
	}
}

// lbVIPFlows are one VIP's pre-stateful and LB flows (texts computed
// once per load balancer row by ParseLB).
func lbVIPFlows(v *LBVIP, b *Builder) {
	b.Add(LSInPreStateful, 120, v.flows.preMatch, v.flows.preActions)
	b.Add(LSInLB, v.flows.lbPrio, v.flows.lbMatch, v.flows.lbActions)
}

// vipFlows are the texts of a VIP's switch flows.
type vipFlows struct {
	preMatch, preActions string
	lbPrio               uint16
	lbMatch, lbActions   string
}

// switchVIPFlows computes a VIP's switch flows.
func switchVIPFlows(l *LB, v *LBVIP) vipFlows {
	ipv, vipReg := "ip4", "reg1" // the VIP is kept in reg1 / xxreg1 for chk_lb_hairpin
	if v.IsV6() {
		ipv, vipReg = "ip6", "xxreg1"
	}
	match := ipv + ".dst == " + v.Addr.String()
	save := vipReg + " = " + v.Addr.String() + "; "
	f := vipFlows{lbPrio: 110}
	if v.Port != 0 {
		match += fmt.Sprintf(" && %s.dst == %d", l.Protocol, v.Port)
		save += fmt.Sprintf("%s = %d; ", regLBPort, v.Port)
		f.lbPrio = 120
	}
	// Pre-stateful: record the original destination, then conntrack
	// (ct_lb_mark: established connections are NATed as committed).
	f.preMatch, f.preActions = regbitConntrackNAT+" == 1 && "+match, save+"ct_lb_mark;"
	f.lbMatch = "ct.new && " + match
	switch {
	case len(v.Backends) > 0:
		// New connections are committed by ct_lb_mark itself, not by the
		// stateful stage.
		hash := ""
		if l.HashFields != "" {
			hash = "; hash_fields=" + quote(l.HashFields)
		}
		f.lbActions = regbitConntrackCommit + " = 0; ct_lb_mark(backends=" + v.BackendList() + hash + ");"
	case l.Reject:
		f.lbActions = fmt.Sprintf("reg0 = 0; reject { outport <-> inport; next(pipeline=egress,table=%d); };", LSOutQoSMark.Table())
	default:
		f.lbActions = "drop;"
	}
	return f
}
