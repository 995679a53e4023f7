package northd

import "slices"

// Pure copies of the northbound rows northd reads. The run shell converts
// libovsdb models into these and feeds them to an NB store; golden tests
// build them directly.

// Switch is a Logical_Switch row.
type Switch struct {
	UUID        string
	Name        string
	Ports       []string // Logical_Switch_Port UUIDs
	ACLs        []string // ACL UUIDs
	OtherConfig map[string]string
	// LoadBalancers and LBGroups are the Load_Balancer and
	// Load_Balancer_Group UUIDs of columns load_balancer and
	// load_balancer_group.
	LoadBalancers []string
	LBGroups      []string
}

// SwitchPort is a Logical_Switch_Port row.
type SwitchPort struct {
	UUID         string
	Name         string
	Type         string // "", "router", "localnet", "localport", ...
	Addresses    []string
	PortSecurity []string
	Options      map[string]string
	Enabled      *bool
	Up           *bool
	ParentName   *string
	Tag          *int
}

// ACL is an ACL row.
type ACL struct {
	UUID      string
	Direction string // "from-lport" or "to-lport"
	Priority  int
	Match     string
	Action    string // allow, allow-related, allow-stateless, drop, reject, pass
	Log       bool
	Name      *string
	Severity  *string
	Meter     *string
	Label     int
	Options   map[string]string
	Tier      int // 0..3: evaluation tier (OVN 23.06 ACL.tier), see acl.go
}

// PortGroup is a Port_Group row.
type PortGroup struct {
	UUID  string
	Name  string
	Ports []string // Logical_Switch_Port UUIDs
	ACLs  []string
}

// AddressSet is an Address_Set row.
type AddressSet struct {
	UUID      string
	Name      string
	Addresses []string
}

// NB is the northbound state northd computes from: rows by UUID, plus the
// relations derived from them. Set*/Delete* record which switches need their
// flows recomputed (Dirty); a change northd cannot attribute to switches sets
// the whole state dirty.
type NB struct {
	Switches    map[string]*Switch
	Ports       map[string]*SwitchPort
	ACLs        map[string]*ACL
	PortGroups  map[string]*PortGroup
	AddressSets map[string]*AddressSet
	// Routers, RouterPorts and Routes stay nil until the first router row
	// arrives, so switch-only deployments pay nothing for them.
	Routers     map[string]*Router
	RouterPorts map[string]*RouterPort
	Routes      map[string]*StaticRoute
	// LoadBalancers and LBGroups are the Load_Balancer and
	// Load_Balancer_Group rows (empty maps when there are none).
	LoadBalancers map[string]*LoadBalancer
	LBGroups      map[string]*LoadBalancerGroup
	// lbParsed: each load balancer parsed once when set (switches share
	// the result; read-only while the engine runs).
	lbParsed map[string]parsedLB
	// NATs, GatewayChassis, HAGroups and HAChassis (NB rows of router
	// NAT and distributed gateway ports) are created with Routers.
	NATs           map[string]*NAT
	GatewayChassis map[string]*GatewayChassis
	HAGroups       map[string]*HAChassisGroup
	HAChassis      map[string]*HAChassis

	// SvcMonitorMAC is NB_Global options:svc_monitor_mac (used in flows
	// through the $svc_monitor_mac address set).
	SvcMonitorMAC string
	// IgnoreLSPDown is NB_Global options:ignore_lsp_down (true unless
	// "false").
	IgnoreLSPDown bool

	portIndex map[string]string // port UUID → switch UUID

	dirty    map[string]bool // switch UUIDs
	allDirty bool
	// globalDirty: port groups / address sets changed (SB Port_Group,
	// Address_Set need syncing).
	globalDirty bool
	// routersDirty: a router, router port or static route changed, or a
	// switch port of type router did: every router and every switch with a
	// router-type port is recomputed (routers are few).
	routersDirty bool
	// lbDirty: a load balancer, LB group or a switch's LB references
	// changed (SB Load_Balancer needs syncing).
	lbDirty bool
}

// NewNB returns an empty store (everything dirty).
func NewNB() *NB {
	return &NB{
		Switches:      map[string]*Switch{},
		Ports:         map[string]*SwitchPort{},
		ACLs:          map[string]*ACL{},
		PortGroups:    map[string]*PortGroup{},
		AddressSets:   map[string]*AddressSet{},
		LoadBalancers: map[string]*LoadBalancer{},
		LBGroups:      map[string]*LoadBalancerGroup{},
		lbParsed:      map[string]parsedLB{},
		dirty:         map[string]bool{},
		allDirty:      true,
		IgnoreLSPDown: true,
		globalDirty:   true,
	}
}

// MarkAllDirty forces a full recompute on the next run.
func (nb *NB) MarkAllDirty() {
	nb.allDirty = true
	nb.globalDirty = true
	nb.routersDirty = true
	nb.lbDirty = true
}

// SetSwitch inserts or replaces a switch.
func (nb *NB) SetSwitch(s *Switch) {
	old := nb.Switches[s.UUID]
	nb.Switches[s.UUID] = s
	nb.dirty[s.UUID] = true
	if nb.portIndex != nil {
		if old != nil {
			for _, p := range old.Ports {
				if nb.portIndex[p] == s.UUID {
					delete(nb.portIndex, p)
				}
			}
		}
		for _, p := range s.Ports {
			nb.portIndex[p] = s.UUID
		}
	}
	if old == nil || !sameStrings(old.LoadBalancers, s.LoadBalancers) || !sameStrings(old.LBGroups, s.LBGroups) {
		nb.lbDirty = true // SB Load_Balancer datapaths
	}
	if old == nil || !sameStrings(old.Ports, s.Ports) {
		// Port membership moves ports between switches and changes which
		// switches port-group ACLs apply to.
		nb.globalDirty = true
		if nb.Routers != nil && old != nil && !sameStrings(nb.routerPorts(old.Ports), nb.routerPorts(s.Ports)) {
			nb.routersDirty = true // a router gains or loses this switch
		}
	}
}

// DeleteSwitch removes a switch.
func (nb *NB) DeleteSwitch(uuid string) {
	if old, ok := nb.Switches[uuid]; ok {
		if nb.portIndex != nil {
			for _, p := range old.Ports {
				if nb.portIndex[p] == uuid {
					delete(nb.portIndex, p)
				}
			}
		}
		delete(nb.Switches, uuid)
		nb.dirty[uuid] = true
		nb.globalDirty = true
		if len(old.LoadBalancers) > 0 || len(old.LBGroups) > 0 {
			nb.lbDirty = true
		}
	}
}

// SetPort inserts or replaces a logical switch port.
func (nb *NB) SetPort(p *SwitchPort) {
	old := nb.Ports[p.UUID]
	nb.Ports[p.UUID] = p
	nb.markPortSwitches(p.UUID)
	if p.Type == "router" || (old != nil && old.Type == "router") {
		nb.routersDirty = true
	}
	if old == nil || old.Name != p.Name || !sameStrings(old.Addresses, p.Addresses) {
		nb.globalDirty = true // $pg_ip4 / port group names
	}
}

// DeletePort removes a logical switch port.
func (nb *NB) DeletePort(uuid string) {
	if old, ok := nb.Ports[uuid]; ok {
		nb.markPortSwitches(uuid)
		if old.Type == "router" {
			nb.routersDirty = true
		}
		delete(nb.Ports, uuid)
		nb.globalDirty = true
	}
}

// SetACL inserts or replaces an ACL.
func (nb *NB) SetACL(a *ACL) {
	nb.ACLs[a.UUID] = a
	nb.markACLSwitches(a.UUID)
}

// DeleteACL removes an ACL.
func (nb *NB) DeleteACL(uuid string) {
	if _, ok := nb.ACLs[uuid]; ok {
		nb.markACLSwitches(uuid)
		delete(nb.ACLs, uuid)
	}
}

// SetPortGroup inserts or replaces a port group.
func (nb *NB) SetPortGroup(pg *PortGroup) {
	if old := nb.PortGroups[pg.UUID]; old != nil {
		nb.markPortGroupSwitches(old)
		if old.Name != pg.Name {
			nb.allDirty = true // ACL matches may now resolve differently
		}
	} else {
		nb.allDirty = true
	}
	nb.PortGroups[pg.UUID] = pg
	nb.markPortGroupSwitches(pg)
	nb.globalDirty = true
}

// DeletePortGroup removes a port group.
func (nb *NB) DeletePortGroup(uuid string) {
	if old := nb.PortGroups[uuid]; old != nil {
		delete(nb.PortGroups, uuid)
		nb.allDirty = true
		nb.globalDirty = true
	}
}

// SetAddressSet inserts or replaces an address set. A changed address list
// only changes the SB Address_Set; a new or renamed set may make ACLs that
// referred to a missing set valid, so it recomputes everything.
func (nb *NB) SetAddressSet(as *AddressSet) {
	old := nb.AddressSets[as.UUID]
	if old == nil || old.Name != as.Name {
		nb.allDirty = true
	}
	nb.AddressSets[as.UUID] = as
	nb.globalDirty = true
}

// DeleteAddressSet removes an address set.
func (nb *NB) DeleteAddressSet(uuid string) {
	if _, ok := nb.AddressSets[uuid]; ok {
		delete(nb.AddressSets, uuid)
		nb.allDirty = true
		nb.globalDirty = true
	}
}

// SetIgnoreLSPDown sets NB_Global options:ignore_lsp_down.
func (nb *NB) SetIgnoreLSPDown(v bool) {
	if v != nb.IgnoreLSPDown {
		nb.IgnoreLSPDown = v
		nb.allDirty = true
	}
}

// SetSvcMonitorMAC sets NB_Global options:svc_monitor_mac.
func (nb *NB) SetSvcMonitorMAC(mac string) {
	if mac != nb.SvcMonitorMAC {
		nb.SvcMonitorMAC = mac
		nb.globalDirty = true
	}
}

func (nb *NB) markPortSwitches(portUUID string) {
	// Ports are few per switch; a reverse index would cost memory on every
	// switch update. Switch membership is found through the switch rows.
	// A port not (yet) in any switch is picked up by the switch update
	// that adds it.
	if sw := nb.portSwitch(portUUID); sw != "" {
		nb.dirty[sw] = true
	}
}

func (nb *NB) buildPortIndex() {
	nb.portIndex = make(map[string]string, len(nb.Ports))
	for id, sw := range nb.Switches {
		for _, p := range sw.Ports {
			nb.portIndex[p] = id
		}
	}
}

func (nb *NB) portSwitch(portUUID string) string {
	if nb.portIndex == nil {
		nb.buildPortIndex()
	}
	return nb.portIndex[portUUID]
}

func (nb *NB) markACLSwitches(aclUUID string) {
	for id, sw := range nb.Switches {
		for _, a := range sw.ACLs {
			if a == aclUUID {
				nb.dirty[id] = true
			}
		}
	}
	for _, pg := range nb.PortGroups {
		for _, a := range pg.ACLs {
			if a == aclUUID {
				nb.markPortGroupSwitches(pg)
			}
		}
	}
}

func (nb *NB) markPortGroupSwitches(pg *PortGroup) {
	for _, p := range pg.Ports {
		if sw := nb.portSwitch(p); sw != "" {
			nb.dirty[sw] = true
		}
	}
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Router is a Logical_Router row.
type Router struct {
	UUID         string
	Name         string
	Ports        []string // Logical_Router_Port UUIDs
	StaticRoutes []string // Logical_Router_Static_Route UUIDs
	NAT          []string // NAT UUIDs
	Enabled      *bool
	// Options: chassis=<name> makes a gateway router bound to that chassis.
	Options map[string]string
	// LoadBalancers and LBGroups: columns load_balancer and
	// load_balancer_group (UUIDs).
	LoadBalancers []string
	LBGroups      []string
}

// RouterPort is a Logical_Router_Port row.
type RouterPort struct {
	UUID     string
	Name     string
	MAC      string
	Networks []string // "IP/len"
	Enabled  *bool
	Options  map[string]string
	// GatewayChassis (Gateway_Chassis UUIDs) or HAChassisGroup (an NB
	// HA_Chassis_Group UUID, preferred when both are set) make the port a
	// distributed gateway port.
	GatewayChassis []string
	HAChassisGroup string
}

// NAT is a NAT row.
type NAT struct {
	UUID        string
	Type        string // "snat", "dnat", "dnat_and_snat"
	ExternalIP  string
	LogicalIP   string
	ExternalMAC string // "" when unset
	LogicalPort string // "" when unset
	GatewayPort string // Logical_Router_Port UUID, "" when unset
	Options     map[string]string
	// Unsupported columns, kept so such rows are reported, not silently
	// mistranslated.
	ExternalPortRange string
	AllowedExtIPs     bool
	ExemptedExtIPs    bool
}

// GatewayChassis is an NB Gateway_Chassis row.
type GatewayChassis struct {
	UUID        string
	Name        string
	ChassisName string
	Priority    int
}

// HAChassisGroup is an NB HA_Chassis_Group row.
type HAChassisGroup struct {
	UUID      string
	Name      string
	HAChassis []string // HA_Chassis UUIDs
}

// HAChassis is an NB HA_Chassis row.
type HAChassis struct {
	UUID        string
	ChassisName string
	Priority    int
}

// StaticRoute is a Logical_Router_Static_Route row.
type StaticRoute struct {
	UUID       string
	IPPrefix   string
	Nexthop    string
	OutputPort *string
	Policy     string // "dst-ip" (default) or "src-ip"
	RouteTable string
}

// SetRouter inserts or replaces a logical router.
func (nb *NB) SetRouter(r *Router) {
	nb.ensureRouters()
	nb.Routers[r.UUID] = r
	nb.routersDirty = true
}

// DeleteRouter removes a logical router.
func (nb *NB) DeleteRouter(uuid string) {
	if _, ok := nb.Routers[uuid]; ok {
		delete(nb.Routers, uuid)
		nb.dirty[uuid] = true
		nb.routersDirty = true
	}
}

// SetRouterPort inserts or replaces a logical router port.
func (nb *NB) SetRouterPort(p *RouterPort) {
	nb.ensureRouters()
	nb.RouterPorts[p.UUID] = p
	nb.routersDirty = true
}

// DeleteRouterPort removes a logical router port.
func (nb *NB) DeleteRouterPort(uuid string) {
	if _, ok := nb.RouterPorts[uuid]; ok {
		delete(nb.RouterPorts, uuid)
		nb.routersDirty = true
	}
}

// SetStaticRoute inserts or replaces a static route.
func (nb *NB) SetStaticRoute(r *StaticRoute) {
	nb.ensureRouters()
	nb.Routes[r.UUID] = r
	nb.routersDirty = true
}

// DeleteStaticRoute removes a static route.
func (nb *NB) DeleteStaticRoute(uuid string) {
	if _, ok := nb.Routes[uuid]; ok {
		delete(nb.Routes, uuid)
		nb.routersDirty = true
	}
}

// SetNAT inserts or replaces a NAT row.
func (nb *NB) SetNAT(n *NAT) {
	nb.ensureRouters()
	nb.NATs[n.UUID] = n
	nb.routersDirty = true
}

// DeleteNAT removes a NAT row.
func (nb *NB) DeleteNAT(uuid string) {
	if _, ok := nb.NATs[uuid]; ok {
		delete(nb.NATs, uuid)
		nb.routersDirty = true
	}
}

// SetGatewayChassis inserts or replaces a Gateway_Chassis row.
func (nb *NB) SetGatewayChassis(g *GatewayChassis) {
	nb.ensureRouters()
	nb.GatewayChassis[g.UUID] = g
	nb.routersDirty = true
}

// DeleteGatewayChassis removes a Gateway_Chassis row.
func (nb *NB) DeleteGatewayChassis(uuid string) {
	if _, ok := nb.GatewayChassis[uuid]; ok {
		delete(nb.GatewayChassis, uuid)
		nb.routersDirty = true
	}
}

// SetHAChassisGroup inserts or replaces an HA_Chassis_Group row.
func (nb *NB) SetHAChassisGroup(g *HAChassisGroup) {
	nb.ensureRouters()
	nb.HAGroups[g.UUID] = g
	nb.routersDirty = true
}

// DeleteHAChassisGroup removes an HA_Chassis_Group row.
func (nb *NB) DeleteHAChassisGroup(uuid string) {
	if _, ok := nb.HAGroups[uuid]; ok {
		delete(nb.HAGroups, uuid)
		nb.routersDirty = true
	}
}

// SetHAChassis inserts or replaces an HA_Chassis row.
func (nb *NB) SetHAChassis(c *HAChassis) {
	nb.ensureRouters()
	nb.HAChassis[c.UUID] = c
	nb.routersDirty = true
}

// DeleteHAChassis removes an HA_Chassis row.
func (nb *NB) DeleteHAChassis(uuid string) {
	if _, ok := nb.HAChassis[uuid]; ok {
		delete(nb.HAChassis, uuid)
		nb.routersDirty = true
	}
}

func (nb *NB) ensureRouters() {
	if nb.Routers == nil {
		nb.Routers = map[string]*Router{}
		nb.RouterPorts = map[string]*RouterPort{}
		nb.Routes = map[string]*StaticRoute{}
		nb.NATs = map[string]*NAT{}
		nb.GatewayChassis = map[string]*GatewayChassis{}
		nb.HAGroups = map[string]*HAChassisGroup{}
		nb.HAChassis = map[string]*HAChassis{}
	}
}

// routerPortByName finds a router port and its router by port name.
func (nb *NB) routerPortByName(name string) (*RouterPort, *Router) {
	for _, r := range nb.Routers {
		for _, id := range r.Ports {
			if p := nb.RouterPorts[id]; p != nil && p.Name == name {
				return p, r
			}
		}
	}
	return nil, nil
}

// markRouters marks dirty the routers whose flows may depend on what is
// dirty: all of them after a router-side change or a switch deletion,
// else the routers connected (through a router-type port) to a dirty
// switch.
func (nb *NB) markRouters() {
	all := nb.routersDirty
	var routers []string
	if !all {
		for id := range nb.dirty {
			if nb.Routers[id] != nil {
				continue
			}
			sw := nb.Switches[id]
			if sw == nil {
				all = true // a deleted switch: its ports are gone
				break
			}
			for _, pid := range sw.Ports {
				if p := nb.Ports[pid]; p != nil && p.Type == "router" {
					if _, r := nb.routerPortByName(p.Options["router-port"]); r != nil {
						routers = append(routers, r.UUID)
					}
				}
			}
		}
	}
	if all {
		for id := range nb.Routers {
			nb.dirty[id] = true
		}
		return
	}
	for _, id := range routers {
		nb.dirty[id] = true
	}
}

// routerPorts are the router-type ports among ports, in order.
func (nb *NB) routerPorts(ports []string) []string {
	var out []string
	for _, id := range ports {
		if p := nb.Ports[id]; p != nil && p.Type == "router" {
			out = append(out, id)
		}
	}
	return out
}

// LoadBalancer is a Load_Balancer row.
type LoadBalancer struct {
	UUID     string
	Name     string
	Vips     map[string]string // "VIP[:port]" → "backend[:port],..."
	Protocol string            // "tcp", "udp", "sctp"; "" means tcp
	Options  map[string]string
	// SelectionFields: eth_src, eth_dst, ip_src, ip_dst, tp_src, tp_dst.
	SelectionFields []string
}

// LoadBalancerGroup is a Load_Balancer_Group row.
type LoadBalancerGroup struct {
	UUID          string
	Name          string
	LoadBalancers []string // Load_Balancer UUIDs
}

// SetLoadBalancer inserts or replaces a load balancer: the switches and
// routers that use it (directly or through a group) are recomputed.
func (nb *NB) SetLoadBalancer(lb *LoadBalancer) {
	nb.LoadBalancers[lb.UUID] = lb
	l, errs := ParseLB(lb)
	nb.lbParsed[lb.UUID] = parsedLB{l, errs}
	nb.markLBUsers(lb.UUID)
	nb.lbDirty = true
}

// DeleteLoadBalancer removes a load balancer.
func (nb *NB) DeleteLoadBalancer(uuid string) {
	if _, ok := nb.LoadBalancers[uuid]; ok {
		nb.markLBUsers(uuid)
		delete(nb.LoadBalancers, uuid)
		delete(nb.lbParsed, uuid)
		nb.lbDirty = true
	}
}

// SetLoadBalancerGroup inserts or replaces a load balancer group.
func (nb *NB) SetLoadBalancerGroup(g *LoadBalancerGroup) {
	nb.LBGroups[g.UUID] = g
	nb.markGroupUsers(g.UUID)
	nb.lbDirty = true
}

// DeleteLoadBalancerGroup removes a load balancer group.
func (nb *NB) DeleteLoadBalancerGroup(uuid string) {
	if _, ok := nb.LBGroups[uuid]; ok {
		nb.markGroupUsers(uuid)
		delete(nb.LBGroups, uuid)
		nb.lbDirty = true
	}
}

// markLBUsers marks dirty every switch and router that references the
// load balancer directly or through one of its groups.
func (nb *NB) markLBUsers(lb string) {
	groups := map[string]bool{}
	for id, g := range nb.LBGroups {
		if slices.Contains(g.LoadBalancers, lb) {
			groups[id] = true
		}
	}
	uses := func(lbs, gs []string) bool {
		if slices.Contains(lbs, lb) {
			return true
		}
		for _, g := range gs {
			if groups[g] {
				return true
			}
		}
		return false
	}
	for id, s := range nb.Switches {
		if uses(s.LoadBalancers, s.LBGroups) {
			nb.dirty[id] = true
		}
	}
	for id, r := range nb.Routers {
		if uses(r.LoadBalancers, r.LBGroups) {
			nb.dirty[id] = true
			// The peer switch ports' nat_addresses (nat-addresses=router)
			// list the router's VIPs.
			nb.routersDirty = true
		}
	}
}

func (nb *NB) markGroupUsers(g string) {
	for id, s := range nb.Switches {
		if slices.Contains(s.LBGroups, g) {
			nb.dirty[id] = true
		}
	}
	for id, r := range nb.Routers {
		if slices.Contains(r.LBGroups, g) {
			nb.dirty[id] = true
		}
	}
}

// DatapathLBs returns the load balancers a switch or router uses: its own
// (column load_balancer) and those of its groups, each once, in UUID order.
// References to rows that do not exist are ignored.
func (nb *NB) DatapathLBs(lbs, groups []string) []*LoadBalancer {
	if len(lbs) == 0 && len(groups) == 0 {
		return nil
	}
	ids := map[string]bool{}
	for _, id := range lbs {
		ids[id] = true
	}
	for _, gid := range groups {
		if g := nb.LBGroups[gid]; g != nil {
			for _, id := range g.LoadBalancers {
				ids[id] = true
			}
		}
	}
	var out []*LoadBalancer
	for _, id := range sortedKeys(ids) {
		if lb := nb.LoadBalancers[id]; lb != nil {
			out = append(out, lb)
		}
	}
	return out
}

type parsedLB struct {
	lb   *LB
	errs []error
}

// parsedLB returns the parsed form of a load balancer row.
func (nb *NB) parsedLB(lb *LoadBalancer) (*LB, []error) {
	if p, ok := nb.lbParsed[lb.UUID]; ok && p.lb.LoadBalancer == lb {
		return p.lb, p.errs
	}
	return ParseLB(lb) // a row not set through SetLoadBalancer
}
