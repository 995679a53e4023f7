package northd

import (
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Engine turns the NB state into the desired SB state. It keeps, per
// logical switch, the flows, port bindings and multicast groups it computed
// last time, and a desired flow table keyed by (stage, priority, match,
// actions) with the set of switches each flow applies to. Run recomputes
// only the switches the NB store marked dirty (all of them on a full
// recompute) and records which flow keys changed, so the SB sync touches
// only those.
type Engine struct {
	gens  []Generator
	rgens []RouterGenerator
	val   Validator
	caps  Caps

	sw      map[string]*switchOut
	desired map[flowKey]*desiredFlow

	// Changes since the last Take: switches whose rows changed and flow
	// keys whose desired state changed; global: port groups/address sets.
	changedSwitches map[string]bool
	changedKeys     map[flowKey]struct{}
	globalChanged   bool

	// Desired global rows (SB Port_Group per switch and per name,
	// Address_Set), recomputed when the NB store says so.
	PortGroups  map[string]map[string][]string // PG name → switch UUID → port names
	AddressSets map[string][]string            // name → addresses
	// LBs are the desired SB Load_Balancer rows by NB Load_Balancer UUID
	// (recomputed when a load balancer or a switch's references change).
	LBs       map[string]*LBSpec
	lbChanged bool

	// Bad lists the NB rows skipped by the last computation of each switch
	// (and of the global rows), for logs and metrics.
	bad       map[string][]BadRow
	badGlobal []BadRow
	// FlowErrors are generated flows the validator rejected (northd bugs).
	flowErrors map[string][]error
}

// switchOut is one datapath's output: a logical switch's or, with router
// set, a logical router's.
type switchOut struct {
	router       bool
	name         string
	requestedKey int // other_config:requested-tnl-key (0: none)
	flows        []Flow
	ports        []*PortBindingSpec
	mcs          []*MulticastSpec
	haGroups     []*HAGroupSpec // a router's distributed gateway ports' groups
}

type desiredFlow struct {
	flow Flow     // first contributor: stage, texts, source, ref
	dps  []string // switch UUIDs, sorted
}

// requestedKey parses a requested-tnl-key option (0 if absent or out of
// 1..max).
func requestedKey(m map[string]string, max int) int {
	v, ok := m["requested-tnl-key"]
	if !ok {
		return 0
	}
	var k int
	if _, err := fmt.Sscanf(v, "%d", &k); err != nil || k < 1 || k > max || fmt.Sprint(k) != v {
		return 0
	}
	return k
}

// PortBindingSpec is the desired Port_Binding of one logical switch port
// (the columns northd owns).
type PortBindingSpec struct {
	Switch       string // switch UUID
	Name         string // logical_port
	Type         string
	MAC          []string
	Options      map[string]string
	PortSecurity []string
	ParentPort   *string
	Tag          *int
	// RequestedKey is options:requested-tnl-key (0: none).
	RequestedKey int
	// NATAddresses is Port_Binding.nat_addresses; HAGroup names the SB
	// HA_Chassis_Group of a chassisredirect port ("" for none).
	NATAddresses []string
	HAGroup      string
}

// MulticastSpec is a desired Multicast_Group.
type MulticastSpec struct {
	Switch string
	Name   string
	Key    int
	Ports  []string // logical port names
}

// NewEngine returns an engine with the given generators (DefaultGenerators
// if nil) and validator (NewLflowValidator if nil).
func NewEngine(gens []Generator, val Validator) *Engine {
	if gens == nil {
		gens = DefaultGenerators()
	}
	if val == nil {
		val = NewLflowValidator()
	}
	return &Engine{
		gens:            gens,
		rgens:           DefaultRouterGenerators(),
		val:             val,
		caps:            ProbeCaps(val),
		sw:              map[string]*switchOut{},
		desired:         map[flowKey]*desiredFlow{},
		changedSwitches: map[string]bool{},
		changedKeys:     map[flowKey]struct{}{},
		bad:             map[string][]BadRow{},
		flowErrors:      map[string][]error{},
		PortGroups:      map[string]map[string][]string{},
		AddressSets:     map[string][]string{},
		LBs:             map[string]*LBSpec{},
	}
}

// SetCaps overrides the probed optional features (tests pin them so golden
// files do not depend on which features the lflow parser has today).
// Features the validator rejects still never reach the SB.
func (e *Engine) SetCaps(c Caps) { e.caps = c }

// Caps returns the optional features in use.
func (e *Engine) Caps() Caps { return e.caps }

// RunStats describes one Run.
type RunStats struct {
	Full             bool
	SwitchesComputed int
	FlowsChanged     int
}

// Run brings the desired state up to date with nb and clears nb's dirty
// marks.
func (e *Engine) Run(nb *NB) RunStats {
	st := RunStats{Full: nb.allDirty}
	var dirty []string
	if nb.allDirty {
		for id := range nb.Switches {
			dirty = append(dirty, id)
		}
		for id := range nb.Routers {
			dirty = append(dirty, id)
		}
		for id := range e.sw {
			if nb.Switches[id] == nil && nb.Routers[id] == nil {
				dirty = append(dirty, id)
			}
		}
	} else {
		// Routers read their peer switches' ports (static ARP entries),
		// and switches read their routers' ports ("router" addresses): a
		// changed switch recomputes the routers it is connected to, and
		// a router change every router and every switch with a
		// router-type port.
		if nb.routersDirty {
			for id, sw := range nb.Switches {
				for _, pid := range sw.Ports {
					if p := nb.Ports[pid]; p != nil && p.Type == "router" {
						nb.dirty[id] = true
						break
					}
				}
			}
		}
		if len(nb.Routers) > 0 {
			nb.markRouters()
		}
		for id := range nb.dirty {
			dirty = append(dirty, id)
		}
	}
	sort.Strings(dirty)
	before := len(e.changedKeys)
	// Switches are computed in parallel (pure, read-only on nb and e.sw),
	// then folded into the desired table in order.
	cs := make([]*computed, len(dirty))
	workers := min(runtime.GOMAXPROCS(0), len(dirty)/parallelMin)
	if workers > 1 {
		var wg sync.WaitGroup
		next := make(chan int, len(dirty))
		for i := range dirty {
			next <- i
		}
		close(next)
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					cs[i] = e.compute(nb, dirty[i])
				}
			}()
		}
		wg.Wait()
	} else {
		for i, id := range dirty {
			cs[i] = e.compute(nb, id)
		}
	}
	for _, c := range cs {
		e.apply(c)
	}
	st.SwitchesComputed = len(dirty)
	if nb.globalDirty || nb.allDirty {
		e.runGlobal(nb)
	}
	if nb.lbDirty || nb.allDirty {
		e.runLBs(nb)
	}
	st.FlowsChanged = len(e.changedKeys) - before
	nb.dirty = map[string]bool{}
	nb.allDirty = false
	nb.globalDirty = false
	nb.routersDirty = false
	nb.lbDirty = false
	return st
}

// MarkAllChanged makes the next SB sync compare every switch and flow
// (after a failed transaction, with a reloaded SBState).
func (e *Engine) MarkAllChanged() {
	for id := range e.sw {
		e.changedSwitches[id] = true
	}
	for k := range e.desired {
		e.changedKeys[k] = struct{}{}
	}
	e.globalChanged = true
	e.lbChanged = true
}

// Bad returns every NB row currently skipped, sorted.
func (e *Engine) Bad() []BadRow {
	var out []BadRow
	for _, b := range e.bad {
		out = append(out, b...)
	}
	out = append(out, e.badGlobal...)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Table != out[j].Table {
			return out[i].Table < out[j].Table
		}
		if out[i].UUID != out[j].UUID {
			return out[i].UUID < out[j].UUID
		}
		return out[i].Err.Error() < out[j].Err.Error() // one row, several reasons (load balancer VIPs)
	})
	// One row can be bad on several switches (port-group ACLs).
	uniq := out[:0]
	for i, b := range out {
		if i > 0 && b.Table == out[i-1].Table && b.UUID == out[i-1].UUID && b.Err.Error() == out[i-1].Err.Error() {
			continue
		}
		uniq = append(uniq, b)
	}
	return uniq
}

// FlowErrors returns generated flows the validator rejected.
func (e *Engine) FlowErrors() []error {
	var out []error
	for _, l := range e.flowErrors {
		out = append(out, l...)
	}
	return out
}

// NumFlows is the number of desired logical flows (rows: one per key).
func (e *Engine) NumFlows() int { return len(e.desired) }

// SwitchFlows returns the flows computed for one switch (sorted copy).
func (e *Engine) SwitchFlows(uuid string) []Flow {
	o := e.sw[uuid]
	if o == nil {
		return nil
	}
	fs := append([]Flow(nil), o.flows...)
	SortFlows(fs)
	return fs
}

// SwitchPorts returns the desired port bindings of a switch.
func (e *Engine) SwitchPorts(uuid string) []*PortBindingSpec {
	if o := e.sw[uuid]; o != nil {
		return o.ports
	}
	return nil
}

// SwitchMulticast returns the desired multicast groups of a switch.
func (e *Engine) SwitchMulticast(uuid string) []*MulticastSpec {
	if o := e.sw[uuid]; o != nil {
		return o.mcs
	}
	return nil
}

// SwitchName is the name of a computed switch.
func (e *Engine) SwitchName(uuid string) (string, bool) {
	o := e.sw[uuid]
	if o == nil {
		return "", false
	}
	return o.name, true
}

// Switches lists the computed switches' UUIDs, sorted.
func (e *Engine) Switches() []string {
	out := make([]string, 0, len(e.sw))
	for id := range e.sw {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// parallelMin is the number of dirty switches per extra worker.
const parallelMin = 8

// computed is one switch's new output, before it is folded in.
type computed struct {
	id      string
	out     *switchOut // nil: the switch is gone
	oldKeys map[flowKey]struct{}
	bad     []BadRow
	ferrs   []error
}

// compute recomputes one switch. It only reads nb and e (safe to run for
// several switches at once).
func (e *Engine) compute(nb *NB, id string) *computed {
	c := &computed{id: id, oldKeys: map[flowKey]struct{}{}}
	// Keys this switch had: flows among them were validated already.
	if old := e.sw[id]; old != nil {
		for i := range old.flows {
			c.oldKeys[old.flows[i].key()] = struct{}{}
		}
	}
	if s := nb.Switches[id]; s != nil {
		c.out, c.bad, c.ferrs = e.computeSwitch(nb, s, c.oldKeys)
	} else if r := nb.Routers[id]; r != nil {
		c.out, c.bad, c.ferrs = e.computeRouter(nb, r, c.oldKeys)
	}
	return c
}

// apply folds one computed switch into the engine's state.
func (e *Engine) apply(c *computed) {
	id := c.id
	e.changedSwitches[id] = true
	if c.out != nil {
		e.sw[id] = c.out
	} else {
		delete(e.sw, id)
	}
	if len(c.bad) > 0 {
		e.bad[id] = c.bad
	} else {
		delete(e.bad, id)
	}
	if len(c.ferrs) > 0 {
		e.flowErrors[id] = c.ferrs
	} else {
		delete(e.flowErrors, id)
	}
	oldKeys := c.oldKeys
	if c.out != nil {
		for i := range c.out.flows {
			f := &c.out.flows[i]
			k := f.key()
			if _, ok := oldKeys[k]; ok {
				delete(oldKeys, k)
				continue
			}
			e.addDP(k, f, id)
		}
	}
	for k := range oldKeys {
		e.removeDP(k, id)
	}
}

func (e *Engine) addDP(k flowKey, f *Flow, dp string) {
	d := e.desired[k]
	if d == nil {
		e.desired[k] = &desiredFlow{flow: *f, dps: []string{dp}}
		e.changedKeys[k] = struct{}{}
		return
	}
	i := sort.SearchStrings(d.dps, dp)
	if i < len(d.dps) && d.dps[i] == dp {
		return
	}
	d.dps = append(d.dps, "")
	copy(d.dps[i+1:], d.dps[i:])
	d.dps[i] = dp
	e.changedKeys[k] = struct{}{}
}

func (e *Engine) removeDP(k flowKey, dp string) {
	d := e.desired[k]
	if d == nil {
		return
	}
	i := sort.SearchStrings(d.dps, dp)
	if i >= len(d.dps) || d.dps[i] != dp {
		return
	}
	d.dps = append(d.dps[:i], d.dps[i+1:]...)
	if len(d.dps) == 0 {
		delete(e.desired, k)
	}
	e.changedKeys[k] = struct{}{}
}

// pgNames are the address-set names each port group provides.
func pgSetNames(pg string) (string, string) { return pg + "_ip4", pg + "_ip6" }

// computeSwitch runs the generators for one switch.
func (e *Engine) computeSwitch(nb *NB, s *Switch, known map[flowKey]struct{}) (*switchOut, []BadRow, []error) {
	// The switch's previous flow count is a good size hint (load
	// balancers make switches with thousands of flows).
	b := &Builder{flows: make([]Flow, 0, len(known)+len(known)/8)}
	sc := &SwitchContext{Switch: s, Caps: e.caps, IgnoreLSPDown: nb.IgnoreLSPDown}
	for _, pid := range s.Ports {
		sp := nb.Ports[pid]
		if sp == nil {
			continue
		}
		p := newPort(sp, b)
		if sp.Type == "router" && nb.Routers != nil && !p.Skip && slices.Contains(sp.Addresses, "router") {
			if rp, r := nb.routerPortByName(sp.Options["router-port"]); rp != nil {
				if pa, ok := routerPortAddrs(rp); ok {
					p.Addrs = append(p.Addrs, pa)
				}
				if _, redirect := nb.routerPortGateway(rp, r); redirect != "" {
					p.Resident = redirect
					p.FIPs = nb.distributedFIPs(r, rp)
				}
			}
		}
		if p.Unknown {
			sc.HasUnknown = true
		}
		sc.Ports = append(sc.Ports, p)
	}
	sc.ACLs = e.switchACLs(nb, s, sc, b)
	sc.LBs = switchLBs(nb, s, b)
	for _, l := range sc.LBs {
		if len(l.Vips) > 0 {
			sc.HasLBVIP = true // as OVN: any vips entry, even one that does not parse
		}
	}
	for _, a := range sc.ACLs {
		sc.HasACLs = true
		if a.Action == "allow-related" {
			sc.HasStateful = true
		}
	}

	out := &switchOut{name: s.Name, requestedKey: requestedKey(s.OtherConfig, MaxDatapathKey)}
	var ferrs []error
	seen := make(map[flowKey]struct{}, len(known))
	for _, g := range e.gens {
		b.source = g.Name()
		start := len(b.flows)
		g.Switch(sc, b)
		ferrs = e.keepValid(b, start, seen, known, ferrs)
	}
	out.flows = b.flows

	// Port bindings and multicast groups.
	flood := &MulticastSpec{Switch: s.UUID, Name: MCFlood, Key: MCFloodKey}
	unknown := &MulticastSpec{Switch: s.UUID, Name: MCUnknown, Key: MCUnknownKey}
	localnet := false
	for _, p := range sc.Ports {
		if p.Type == "localnet" {
			localnet = true
		}
	}
	for _, p := range sc.Ports {
		pb := portBindingSpec(s.UUID, p.SwitchPort)
		if p.Type == "router" && nb.Routers != nil {
			nb.routerSwitchPortBinding(pb, p.SwitchPort, localnet)
		}
		out.ports = append(out.ports, pb)
		flood.Ports = append(flood.Ports, p.Name)
		if p.Unknown {
			unknown.Ports = append(unknown.Ports, p.Name)
		}
	}
	sort.Strings(flood.Ports)
	sort.Strings(unknown.Ports)
	out.mcs = append(out.mcs, flood)
	if len(unknown.Ports) > 0 {
		out.mcs = append(out.mcs, unknown)
	}
	return out, b.bad, ferrs
}

// switchACLs returns the valid ACLs that apply to a switch: its own and
// those of port groups with a port on it, ordered by UUID.
func (e *Engine) switchACLs(nb *NB, s *Switch, sc *SwitchContext, b *Builder) []*ACL {
	ids := map[string]bool{}
	for _, a := range s.ACLs {
		ids[a] = true
	}
	if len(nb.PortGroups) > 0 {
		onSwitch := make(map[string]bool, len(sc.Ports))
		for _, p := range sc.Ports {
			onSwitch[p.UUID] = true
		}
		for _, pg := range nb.PortGroups {
			for _, p := range pg.Ports {
				if onSwitch[p] {
					for _, a := range pg.ACLs {
						ids[a] = true
					}
					break
				}
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	var sets, groups map[string]bool
	var out []*ACL
	for _, id := range sortedKeys(ids) {
		a := nb.ACLs[id]
		if a == nil {
			continue
		}
		if err := e.checkACL(nb, a, &sets, &groups); err != nil {
			b.Bad("ACL", a.UUID, aclName(a), err)
			continue
		}
		out = append(out, a)
	}
	return out
}

func aclName(a *ACL) string {
	if a.Name != nil {
		return *a.Name
	}
	return ""
}

// checkACL validates an ACL row: direction, action, priority, match syntax
// and the address sets and port groups its match names.
func (e *Engine) checkACL(nb *NB, a *ACL, sets, groups *map[string]bool) error {
	switch a.Direction {
	case "from-lport", "to-lport":
	default:
		return fmt.Errorf("direction %q is not from-lport or to-lport", a.Direction)
	}
	switch a.Action {
	case "allow", "allow-related", "allow-stateless", "drop", "reject", "pass":
	default:
		return fmt.Errorf("action %q is not supported", a.Action)
	}
	if a.Tier < 0 || a.Tier > MaxACLTier {
		return fmt.Errorf("tier %d is outside 0..%d", a.Tier, MaxACLTier)
	}
	if a.Priority < 0 || a.Priority > 32767 {
		return fmt.Errorf("priority %d is outside 0..32767", a.Priority)
	}
	if err := e.val.Match(a.Match); err != nil {
		return fmt.Errorf("match %q: %w", a.Match, err)
	}
	ss, gs, err := References(a.Match)
	if err != nil {
		return fmt.Errorf("match %q: %w", a.Match, err)
	}
	if len(ss) == 0 && len(gs) == 0 {
		return nil
	}
	if *sets == nil {
		*sets, *groups = nb.setNames()
	}
	for _, s := range ss {
		if !(*sets)[s] {
			return fmt.Errorf("match %q: address set $%s does not exist", a.Match, s)
		}
	}
	for _, g := range gs {
		if !(*groups)[g] {
			return fmt.Errorf("match %q: port group @%s does not exist", a.Match, g)
		}
	}
	return nil
}

// setNames returns the address set names ACLs may use (NB address sets,
// <pg>_ip4/_ip6 of each port group, svc_monitor_mac) and the port groups.
func (nb *NB) setNames() (sets, groups map[string]bool) {
	sets = map[string]bool{"svc_monitor_mac": true}
	groups = map[string]bool{}
	for _, as := range nb.AddressSets {
		sets[as.Name] = true
	}
	for _, pg := range nb.PortGroups {
		groups[pg.Name] = true
		a, b := pgSetNames(pg.Name)
		sets[a], sets[b] = true, true
	}
	return sets, groups
}

func portBindingSpec(sw string, p *SwitchPort) *PortBindingSpec {
	pb := &PortBindingSpec{Switch: sw, Name: p.Name, Type: p.Type, MAC: p.Addresses,
		PortSecurity: p.PortSecurity, ParentPort: p.ParentName, Tag: p.Tag, Options: p.Options,
		RequestedKey: requestedKey(p.Options, MaxPortKey)}
	if p.Type == "router" {
		// A switch port of type router is one end of a patch to the router
		// port named by options:router-port.
		pb.Type = "patch"
		pb.Options = map[string]string{}
		if rp := p.Options["router-port"]; rp != "" {
			pb.Options["peer"] = rp
		}
	}
	return pb
}

// runGlobal recomputes the SB Port_Group and Address_Set contents.
func (e *Engine) runGlobal(nb *NB) {
	e.globalChanged = true
	e.badGlobal = nil
	pgs := map[string]map[string][]string{}
	sets := map[string][]string{}
	if nb.SvcMonitorMAC != "" {
		sets["svc_monitor_mac"] = []string{nb.SvcMonitorMAC}
	}
	for _, as := range nb.AddressSets {
		addrs := append([]string(nil), as.Addresses...)
		sort.Strings(addrs)
		sets[as.Name] = addrs
	}
	// Port → switch.
	if nb.portIndex == nil {
		nb.buildPortIndex()
	}
	for _, pg := range nb.PortGroups {
		per := map[string][]string{}
		var v4, v6 []string
		for _, pid := range pg.Ports {
			p := nb.Ports[pid]
			sw := nb.portIndex[pid]
			if p == nil || sw == "" {
				continue
			}
			per[sw] = append(per[sw], p.Name)
			for _, a := range p.Addresses {
				a = strings.TrimSpace(a)
				if a == "unknown" || a == "router" || a == "dynamic" || a == "" {
					continue
				}
				pa, err := ParseAddresses(a)
				if err != nil {
					continue // reported with the port
				}
				for _, ip := range pa.IPv4 {
					v4 = append(v4, ip.Addr().String())
				}
				for _, ip := range pa.IPv6 {
					v6 = append(v6, ip.Addr().String())
				}
			}
		}
		for sw := range per {
			sort.Strings(per[sw])
		}
		pgs[pg.Name] = per
		n4, n6 := pgSetNames(pg.Name)
		sort.Strings(v4)
		sort.Strings(v6)
		v4, v6 = slices.Compact(v4), slices.Compact(v6) // two ports may share an address
		if _, clash := sets[n4]; clash {
			e.badGlobal = append(e.badGlobal, BadRow{Table: "Port_Group", UUID: pg.UUID, Name: pg.Name,
				Err: fmt.Errorf("address set %q already exists; port group addresses not published", n4)})
		} else {
			sets[n4] = v4
		}
		if _, clash := sets[n6]; !clash {
			sets[n6] = v6
		}
	}
	e.PortGroups = pgs
	e.AddressSets = sets
}

// keepValid validates the flows a generator added to b from start on (flows
// the datapath already had were validated when they first appeared),
// dropping duplicate keys (first wins) and rejected flows.
func (e *Engine) keepValid(b *Builder, start int, seen, known map[flowKey]struct{}, ferrs []error) []error {
	kept := b.flows[:start]
	for i := start; i < len(b.flows); i++ {
		f := b.flows[i]
		k := f.key()
		if _, dup := seen[k]; dup {
			continue
		}
		seen[k] = struct{}{}
		if _, ok := known[k]; ok {
			kept = append(kept, f)
			continue
		}
		if err := e.val.Match(f.Match); err != nil {
			ferrs = append(ferrs, &flowError{&f, fmt.Errorf("match: %w", err)})
			continue
		}
		if err := e.val.Actions(f.Actions); err != nil {
			ferrs = append(ferrs, &flowError{&f, fmt.Errorf("actions: %w", err)})
			continue
		}
		kept = append(kept, f)
	}
	b.flows = kept
	return ferrs
}

// computeRouter runs the router generators for one router.
func (e *Engine) computeRouter(nb *NB, r *Router, known map[flowKey]struct{}) (*switchOut, []BadRow, []error) {
	b := &Builder{}
	out := &switchOut{router: true, name: r.Name, requestedKey: requestedKey(r.Options, MaxDatapathKey)}
	rc := newRouterContext(nb, r, b)
	rc.Caps = e.caps
	for _, p := range rc.Ports {
		out.ports = append(out.ports, routerPortBinding(r.UUID, p, rc.Chassis))
		if p.Redirect != "" {
			out.ports = append(out.ports, redirectBinding(r.UUID, p))
			out.haGroups = append(out.haGroups, p.HA)
		}
	}
	if r.Enabled != nil && !*r.Enabled {
		// A disabled router keeps its datapath and ports but has no flows.
		return out, b.bad, nil
	}
	var ferrs []error
	seen := make(map[flowKey]struct{}, len(known))
	for _, g := range e.rgens {
		b.source = g.Name()
		start := len(b.flows)
		g.Router(rc, b)
		ferrs = e.keepValid(b, start, seen, known, ferrs)
	}
	out.flows = b.flows
	return out, b.bad, ferrs
}
