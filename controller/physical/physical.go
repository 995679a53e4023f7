// Package physical computes the OpenFlow flows of br-int that do not come
// from logical flows: classification of local VIFs and tunnel packets
// (table 0), delivery to other chassis through Geneve tunnels, local
// delivery, multicast expansion, the loopback check, the logical-to-physical
// output and the MAC-binding table. The table layout is declared in package
// controller.
//
// It is pure: Flows takes a snapshot of what this chassis knows (Input) and
// returns flows; it does no I/O.
package physical

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"

	"github.com/govn/govn/controller"
	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// Port types (Port_Binding.type) the physical tables handle.
const (
	TypeVIF      = ""         // a VM/container interface, bound by iface-id
	TypePatch    = "patch"    // connects two logical datapaths on every chassis
	TypeLocalnet = "localnet" // a switch's connection to a physical network (ovn-bridge-mappings)
	// TypeL3Gateway connects a gateway router (bound to one chassis) and a
	// switch: a patch port on that chassis, a remote port elsewhere.
	TypeL3Gateway = "l3gateway"
	// TypeChassisRedirect is the gateway-chassis side of a distributed
	// router port: on its active chassis, output to it continues as the
	// distributed port; elsewhere it is a remote port on that chassis.
	TypeChassisRedirect = "chassisredirect"
)

// Port is a logical port (Port_Binding) of a datapath this chassis may need.
type Port struct {
	Name     string // logical_port
	Datapath uint32 // Datapath_Binding.tunnel_key
	Key      uint32 // Port_Binding.tunnel_key
	Type     string // one of the Type constants; others are ignored
	Peer     string // TypePatch, TypeL3Gateway: the peer logical port's name
	// Chassis is the name of the chassis the port is bound to ("" if
	// unbound); for TypeChassisRedirect the active gateway chassis.
	Chassis string
	// Tag is a TypeLocalnet port's VLAN (1..4095; 0 = untagged).
	Tag uint16
	// GatewayChassis is a TypeL3Gateway port's options:l3gateway-chassis.
	GatewayChassis string
	// DistributedPort is a TypeChassisRedirect port's
	// options:distributed-port (a port name of the same datapath).
	DistributedPort string
}

// DPZones are the conntrack zones of a local datapath: a router's DNAT and
// SNAT zones (a switch's SNAT zone commits hairpinned load-balancer
// connections).
type DPZones struct{ DNAT, SNAT uint16 }

// MulticastGroup is a Multicast_Group row.
type MulticastGroup struct {
	Datapath uint32
	Key      uint32 // 32768..65535
	Name     string
	Ports    []string // member logical port names
}

// MACBinding is a MAC_Binding row, resolved to keys.
type MACBinding struct {
	Datapath uint32
	Port     uint32 // logical port key
	IP       netip.Addr
	MAC      uint64 // 48-bit Ethernet address
}

// FDB is an FDB row (a learned MAC address of a logical port).
type FDB struct {
	Datapath uint32
	Port     uint32
	MAC      uint64
}

// Input is everything the physical flows depend on.
type Input struct {
	// Chassis is this chassis' name (Chassis.name, the system-id).
	Chassis string
	// Ports are the logical ports of (at least) the local datapaths.
	Ports []Port
	// Groups are the multicast groups of (at least) the local datapaths.
	Groups []MulticastGroup
	// VIFs maps the logical port of each local OVS interface
	// (external_ids:iface-id) to its OpenFlow port number.
	VIFs map[string]uint32
	// Tunnels maps each remote chassis name to the OpenFlow port of the
	// tunnel to it.
	Tunnels map[string]uint32
	// Zones maps local logical ports to their conntrack zone (see
	// AssignZones). A port without a zone uses zone 0.
	Zones map[string]uint16
	// MACBindings are the MAC_Binding rows of the local datapaths.
	MACBindings []MACBinding
	// FDBs are the FDB rows of the local datapaths.
	FDBs []FDB
	// Localnet maps each localnet port whose physical network is mapped on
	// this chassis (ovn-bridge-mappings) to the OpenFlow port of the br-int
	// side of its patch-port pair.
	Localnet map[string]uint32
	// DPZones are the conntrack zones of the local datapaths (by key),
	// loaded into reg11/reg12 whenever a packet enters a datapath's ingress
	// pipeline or is delivered to one of its local ports.
	DPZones map[uint32]DPZones
	// LoadBalancers feed the load-balancer hairpin tables.
	LoadBalancers []LoadBalancer
}

// Local reports whether port p is a VIF bound to this chassis with a local
// OpenFlow port.
func (in *Input) Local(p *Port) (uint32, bool) {
	if p.Type != TypeVIF || p.Chassis != in.Chassis || in.Chassis == "" {
		return 0, false
	}
	ofp, ok := in.VIFs[p.Name]
	return ofp, ok && ofp > 0
}

// LocalnetPort returns the br-int OpenFlow port of a localnet port whose
// network is mapped here.
func (in *Input) LocalnetPort(p *Port) (uint32, bool) {
	if p.Type != TypeLocalnet {
		return 0, false
	}
	ofp, ok := in.Localnet[p.Name]
	return ofp, ok && ofp > 0
}

// Crosses reports whether p is crossed into its peer datapath on this
// chassis: a patch port, or an l3gateway port whose gateway chassis is this
// one. byName resolves the peer, which must be of the same type.
func (in *Input) crosses(p *Port, byName map[string]*Port) (*Port, bool) {
	switch p.Type {
	case TypePatch:
	case TypeL3Gateway:
		if p.GatewayChassis == "" || p.GatewayChassis != in.Chassis {
			return nil, false
		}
	default:
		return nil, false
	}
	peer, ok := byName[p.Peer]
	if !ok || peer.Type != p.Type {
		return nil, false
	}
	return peer, true
}

// Resident reports whether p's traffic is handled on this chassis as a local
// port: a VIF bound here with an OpenFlow port, a mapped localnet port, an
// l3gateway port of this gateway chassis, a chassisredirect port active here.
func (in *Input) Resident(p *Port) bool {
	if in.Chassis == "" {
		return false
	}
	switch p.Type {
	case TypeVIF:
		_, ok := in.Local(p)
		return ok
	case TypeLocalnet:
		_, ok := in.LocalnetPort(p)
		return ok
	case TypeL3Gateway:
		return p.GatewayChassis == in.Chassis
	case TypeChassisRedirect:
		return p.Chassis == in.Chassis
	}
	return false
}

// LocalDatapaths returns the datapaths this chassis needs: those with a
// resident port (a VIF bound here, a localnet port whose network is mapped
// here, an l3gateway or active chassisredirect port of this chassis), and
// every datapath reachable from those through patch ports (and l3gateway
// ports of this chassis).
func LocalDatapaths(in *Input) map[uint32]bool {
	local := map[uint32]bool{}
	var queue []uint32
	for i := range in.Ports {
		p := &in.Ports[i]
		if in.Resident(p) && !local[p.Datapath] {
			local[p.Datapath] = true
			queue = append(queue, p.Datapath)
		}
	}
	// Only patch and l3gateway ports cross (to a peer of their type).
	patches := map[uint32][]*Port{}
	byName := map[string]*Port{}
	for i := range in.Ports {
		if p := &in.Ports[i]; p.Type == TypePatch || p.Type == TypeL3Gateway {
			patches[p.Datapath] = append(patches[p.Datapath], p)
			byName[p.Name] = p
		}
	}
	for len(queue) > 0 {
		dp := queue[0]
		queue = queue[1:]
		for _, p := range patches[dp] {
			if peer, ok := in.crosses(p, byName); ok && !local[peer.Datapath] {
				local[peer.Datapath] = true
				queue = append(queue, peer.Datapath)
			}
		}
	}
	return local
}

// Priorities used by the physical tables.
const (
	prioHigh    = 150
	prioPort    = 100
	prioDefault = 0
)

// Flows returns the physical flows for in, sorted by table, priority
// (descending) and match. Cookies are 0.
func Flows(in *Input) []of.Flow {
	b := &builder{in: in, local: LocalDatapaths(in)}
	b.byName = make(map[string]*Port, len(in.Ports))
	for i := range in.Ports {
		b.byName[in.Ports[i].Name] = &in.Ports[i]
	}
	b.classify()
	for i := range in.Ports {
		p := &in.Ports[i]
		if !b.local[p.Datapath] {
			continue
		}
		b.port(p)
	}
	for i := range in.Groups {
		if g := &in.Groups[i]; b.local[g.Datapath] {
			b.multicast(g)
		}
	}
	for _, mb := range in.MACBindings {
		if b.local[mb.Datapath] {
			b.macBinding(mb)
		}
	}
	for _, f := range in.FDBs {
		if b.local[f.Datapath] {
			b.fdb(f)
		}
	}
	for i := range in.LoadBalancers {
		b.loadBalancer(&in.LoadBalancers[i])
	}
	b.defaults()
	// Sort with each match's text computed once (not per comparison).
	type item struct {
		f     *of.Flow
		match string
	}
	items := make([]item, len(b.flows))
	for i := range b.flows {
		items[i] = item{&b.flows[i], b.flows[i].Match.String()}
	}
	slices.SortFunc(items, func(x, y item) int {
		if c := cmp.Or(cmp.Compare(x.f.Table, y.f.Table), cmp.Compare(y.f.Priority, x.f.Priority)); c != 0 {
			return c
		}
		return cmp.Compare(x.match, y.match)
	})
	out := make([]of.Flow, len(items))
	for i, it := range items {
		out[i] = *it.f
	}
	return out
}

type builder struct {
	in     *Input
	local  map[uint32]bool
	byName map[string]*Port
	flows  []of.Flow
	lbSeen map[string]bool
}

func (b *builder) add(table uint8, prio uint16, m of.Match, acts ...of.Action) {
	b.flows = append(b.flows, of.Flow{Table: table, Priority: prio, Match: m, Actions: of.Actions(acts)})
}

// Register and field shorthands.
var (
	metadata   = of.Whole(symtab.DatapathField)
	inport     = of.Whole(symtab.InportField)
	outport    = of.Whole(symtab.OutportField)
	flags      = of.Whole(symtab.FlagsField)
	ctZone     = symtab.ZoneSubfield(symtab.CTZoneField)
	dnatZone   = symtab.ZoneSubfield(symtab.DNATZoneField)
	snatZone   = symtab.ZoneSubfield(symtab.SNATZoneField)
	tunID      = of.Whole(of.TunID)
	tunMeta    = of.Whole(of.TunMetadata0)
	tunInport  = of.Sub(of.TunMetadata0, 16, 15) // ingress port key
	tunOutport = of.Sub(of.TunMetadata0, 0, 16)  // egress port / group key
)

func set(sf of.Subfield, v uint64) of.SetField { return of.SetField{Dst: sf, Value: bits.From64(v)} }

func resubmit(t uint8) of.Resubmit { return of.Resubmit{Table: int(t)} }

// fv is one exact field constraint.
type fv struct {
	f of.Field
	v uint64
}

// match builds a match from exact field constraints.
func match(cs ...fv) of.Match {
	var m of.Match
	for _, c := range cs {
		m.Set(c.f, bits.From64(c.v), bits.Ones(c.f.Width()))
	}
	return m
}

func (b *builder) zone(name string) uint64 { return uint64(b.in.Zones[name]) }

// dpZones returns the loads of datapath dp's DNAT and SNAT zones (none if
// it has no zones).
func (b *builder) dpZones(dp uint32) []of.Action {
	z, ok := b.in.DPZones[dp]
	if !ok {
		return nil
	}
	return []of.Action{set(dnatZone, uint64(z.DNAT)), set(snatZone, uint64(z.SNAT))}
}

// enter returns the loads that start datapath dp's ingress pipeline for a
// packet from logical port key with port conntrack zone zone.
func (b *builder) enter(dp, key uint32, zone uint64) []of.Action {
	acts := []of.Action{set(metadata, uint64(dp)), set(inport, uint64(key)), set(ctZone, zone)}
	return append(acts, b.dpZones(dp)...)
}

// vlanTCI is the vlan_tci of VLAN vid with the "present" bit.
func vlanTCI(vid uint16) uint64 { return 0x1000 | uint64(vid&0xfff) }

// classify: table 0 for local VIFs, mapped localnet ports and tunnels.
func (b *builder) classify() {
	for i := range b.in.Ports {
		p := &b.in.Ports[i]
		if ofp, ok := b.in.Local(p); ok {
			b.add(controller.TableClassify, prioPort, match(fv{of.InPort, uint64(ofp)}),
				append(b.enter(p.Datapath, p.Key, b.zone(p.Name)), resubmit(controller.TableLogIngress))...)
			continue
		}
		ofp, ok := b.in.LocalnetPort(p)
		if !ok {
			continue
		}
		// From the physical network: only the port's VLAN (tagged), or only
		// untagged frames.
		m := match(fv{of.InPort, uint64(ofp)})
		var acts []of.Action
		prio := uint16(prioPort)
		if p.Tag != 0 {
			m.Set(of.VLANTCI, bits.From64(vlanTCI(p.Tag)), bits.From64(0x1fff))
			acts = append(acts, of.PopVLAN{})
			prio = prioHigh
		} else {
			m.Set(of.VLANTCI, bits.Zero, bits.From64(0x1000))
		}
		acts = append(acts, b.enter(p.Datapath, p.Key, b.zone(p.Name))...)
		b.add(controller.TableClassify, prio, m, append(acts, resubmit(controller.TableLogIngress))...)
	}
	for _, ch := range sortedKeys(b.in.Tunnels) {
		ofp := b.in.Tunnels[ch]
		if ch == b.in.Chassis || ofp == 0 {
			continue
		}
		b.add(controller.TableClassify, prioPort, match(fv{of.InPort, uint64(ofp)}),
			of.Move{Src: of.Sub(of.TunID, 0, 24), Dst: of.Sub(symtab.DatapathField, 0, 24)},
			of.Move{Src: tunInport, Dst: of.Sub(symtab.InportField, 0, 15)},
			of.Move{Src: tunOutport, Dst: of.Sub(symtab.OutportField, 0, 16)},
			set(of.Sub(symtab.FlagsField, controller.FlagFromTunnelBit, 1), 1),
			resubmit(controller.TableLocalOutput))
	}
}

// tunnelTo returns the actions that send the packet, with logical egress
// key out, to chassis ch.
func (b *builder) tunnelTo(dp, out uint32, tun uint32) []of.Action {
	return []of.Action{
		set(tunID, uint64(dp)),
		set(tunMeta, uint64(out)),
		of.Move{Src: of.Sub(symtab.InportField, 0, 15), Dst: tunInport},
		of.Output{Port: tun},
	}
}

// remote sends output to p through the tunnel to chassis ch.
func (b *builder) remote(p *Port, ch string) {
	if ch == "" || ch == b.in.Chassis {
		return
	}
	tun, ok := b.in.Tunnels[ch]
	if !ok || tun == 0 {
		return // no tunnel (yet) to its chassis
	}
	m := match(fv{symtab.DatapathField, uint64(p.Datapath)}, fv{symtab.OutportField, uint64(p.Key)})
	b.add(controller.TableRemoteOutput, prioPort, m, b.tunnelTo(p.Datapath, p.Key, tun)...)
}

// physOut adds the local delivery flows of a port with OpenFlow port ofp:
// zones, the loopback drop and output (with VLAN tag push when vlan != 0).
func (b *builder) physOut(p *Port, ofp uint32, vlan uint16) {
	dpPort := func() of.Match {
		return match(fv{symtab.DatapathField, uint64(p.Datapath)}, fv{symtab.OutportField, uint64(p.Key)})
	}
	acts := append([]of.Action{set(ctZone, b.zone(p.Name))}, b.dpZones(p.Datapath)...)
	b.add(controller.TableLocalOutput, prioPort, dpPort(), append(acts, resubmit(controller.TableCheckLoopback))...)
	lb := match(fv{symtab.DatapathField, uint64(p.Datapath)}, fv{symtab.InportField, uint64(p.Key)}, fv{symtab.OutportField, uint64(p.Key)})
	lb.Set(symtab.FlagsField, bits.Zero, bits.From64(1<<symtab.FlagLoopback))
	b.add(controller.TableCheckLoopback, prioPort, lb, of.Drop{})
	out := func(port uint32) []of.Action {
		if vlan == 0 {
			return []of.Action{of.Output{Port: port}}
		}
		return []of.Action{of.PushVLAN{EthType: 0x8100}, set(of.Whole(of.VLANTCI), vlanTCI(vlan)), of.Output{Port: port}, of.PopVLAN{}}
	}
	// A flow whose outport is its inport reached here only with
	// flags.loopback: OpenFlow needs in_port to send it back.
	m := dpPort()
	m.Set(of.InPort, bits.From64(uint64(ofp)), bits.Ones(32))
	b.add(controller.TableLogToPhy, prioHigh, m, out(of.PortInPort)...)
	b.add(controller.TableLogToPhy, prioPort, dpPort(), out(ofp)...)
}

func (b *builder) port(p *Port) {
	dpPort := func() of.Match {
		return match(fv{symtab.DatapathField, uint64(p.Datapath)}, fv{symtab.OutportField, uint64(p.Key)})
	}
	if ofp, ok := b.in.Local(p); ok {
		b.physOut(p, ofp, 0)
		return
	}
	if ofp, ok := b.in.LocalnetPort(p); ok {
		b.physOut(p, ofp, p.Tag)
		return
	}
	if peer, ok := b.in.crosses(p, b.byName); ok {
		b.add(controller.TableLocalOutput, prioPort, dpPort(),
			append(b.dpZones(p.Datapath), resubmit(controller.TableCheckLoopback))...)
		// Crossing into the peer datapath: a fresh logical context.
		acts := []of.Action{of.CTClear{}, set(flags, 0), set(dnatZone, 0), set(snatZone, 0), set(ctZone, 0)}
		for r := 0; r < 10; r++ {
			acts = append(acts, set(of.Whole(of.Reg(r)), 0))
		}
		acts = append(acts, b.dpZones(peer.Datapath)...)
		// in_port = 0 (restored when the clone ends): the peer's pipeline may
		// send the packet back out of the port it came in on (a gateway
		// router answering a remote chassis through the same tunnel), and
		// OVS never outputs to the input port.
		acts = append(acts, set(of.Whole(of.InPort), 0))
		acts = append(acts, set(metadata, uint64(peer.Datapath)), set(inport, uint64(peer.Key)),
			set(outport, 0), of.Resubmit{InPort: 0, Table: int(controller.TableLogIngress)})
		b.add(controller.TableLogToPhy, prioPort, dpPort(), of.Clone{Actions: acts})
		return
	}
	switch p.Type {
	case TypeVIF:
		if p.Chassis == b.in.Chassis {
			return // ours without an interface yet: dropped
		}
		b.remote(p, p.Chassis)
	case TypeL3Gateway:
		b.remote(p, p.GatewayChassis)
	case TypeChassisRedirect:
		if p.Chassis != b.in.Chassis {
			b.remote(p, p.Chassis)
			return
		}
		dist, ok := b.byName[p.DistributedPort]
		if !ok || dist.Datapath != p.Datapath {
			return
		}
		// Active here: continue as the distributed port.
		acts := append([]of.Action{set(outport, uint64(dist.Key))}, b.dpZones(p.Datapath)...)
		b.add(controller.TableLocalOutput, prioPort, dpPort(), append(acts, resubmit(controller.TableCheckLoopback))...)
	}
}

// multicast expands a group: every other chassis with a member once
// (TableRemoteOutput), then each local member (TableLocalOutput). Packets
// from a tunnel are not delivered to patch and localnet members (the sending
// chassis did that), only to VIFs and to l3gateway ports of this gateway
// chassis (which no other chassis can cross).
func (b *builder) multicast(g *MulticastGroup) {
	var remote []string
	seen := map[string]bool{}
	addRemote := func(ch string) {
		if ch != "" && ch != b.in.Chassis && !seen[ch] {
			if tun := b.in.Tunnels[ch]; tun != 0 {
				seen[ch] = true
				remote = append(remote, ch)
			}
		}
	}
	var localVIF, localOnce, localGW []*Port
	for _, name := range g.Ports {
		p, ok := b.byName[name]
		if !ok || p.Datapath != g.Datapath {
			continue
		}
		if _, ok := b.in.Local(p); ok {
			localVIF = append(localVIF, p)
			continue
		}
		if _, ok := b.in.LocalnetPort(p); ok {
			localOnce = append(localOnce, p)
			continue
		}
		if _, ok := b.in.crosses(p, b.byName); ok {
			if p.Type == TypeL3Gateway {
				localGW = append(localGW, p)
			} else {
				localOnce = append(localOnce, p)
			}
			continue
		}
		switch p.Type {
		case TypeVIF:
			addRemote(p.Chassis)
		case TypeL3Gateway:
			addRemote(p.GatewayChassis)
		}
	}
	slices.Sort(remote)
	sortPorts := func(ps []*Port) { slices.SortFunc(ps, func(x, y *Port) int { return cmp.Compare(x.Key, y.Key) }) }
	sortPorts(localVIF)
	sortPorts(localOnce)
	sortPorts(localGW)
	m := func() of.Match {
		return match(fv{symtab.DatapathField, uint64(g.Datapath)}, fv{symtab.OutportField, uint64(g.Key)})
	}

	if len(remote) > 0 {
		var acts []of.Action
		for _, ch := range remote {
			acts = append(acts, b.tunnelTo(g.Datapath, g.Key, b.in.Tunnels[ch])...)
		}
		acts = append(acts, resubmit(controller.TableLocalOutput))
		b.add(controller.TableRemoteOutput, prioPort, m(), acts...)
	}
	deliver := func(groups ...[]*Port) []of.Action {
		var acts []of.Action
		for _, ps := range groups {
			for _, p := range ps {
				acts = append(acts, set(outport, uint64(p.Key)))
				if p.Type == TypeVIF || p.Type == TypeLocalnet {
					acts = append(acts, set(ctZone, b.zone(p.Name)))
				}
				acts = append(acts, resubmit(controller.TableCheckLoopback))
			}
		}
		if len(acts) == 0 {
			return nil
		}
		acts = append(b.dpZones(g.Datapath), acts...)
		return append(acts, set(outport, uint64(g.Key)))
	}
	all := deliver(localVIF, localOnce, localGW)
	if len(all) == 0 {
		return
	}
	b.add(controller.TableLocalOutput, prioPort, m(), all...)
	if len(localOnce) > 0 {
		// Received from a tunnel: the sender already crossed the patch
		// ports and reached the physical network.
		mt := m()
		mt.Set(symtab.FlagsField, bits.From64(1<<controller.FlagFromTunnelBit), bits.From64(1<<controller.FlagFromTunnelBit))
		acts := deliver(localVIF, localGW)
		if len(acts) == 0 {
			acts = []of.Action{of.Drop{}}
		}
		b.add(controller.TableLocalOutput, prioHigh, mt, acts...)
	}
}

func (b *builder) macBinding(mb MACBinding) {
	ipMatch := func(m *of.Match) bool {
		switch {
		case mb.IP.Is4():
			v := mb.IP.As4()
			m.Set(of.Reg0, bits.From64(uint64(v[0])<<24|uint64(v[1])<<16|uint64(v[2])<<8|uint64(v[3])), bits.Ones(32))
		case mb.IP.Is6():
			a := mb.IP.As16()
			var v bits.U128
			for _, x := range a {
				v = v.Lsh(8).Or(bits.From64(uint64(x)))
			}
			m.Set(of.XXReg0, v, bits.Ones(128))
		default:
			return false
		}
		return true
	}
	// get_arp / get_nd: outport and IP → eth.dst.
	m := match(fv{symtab.DatapathField, uint64(mb.Datapath)}, fv{symtab.OutportField, uint64(mb.Port)})
	if !ipMatch(&m) {
		return
	}
	b.add(controller.TableMACBinding, prioPort, m, set(of.Whole(of.EthDst), mb.MAC))
	// lookup_arp / lookup_nd: inport, IP and eth.src known?
	hit := set(of.Sub(symtab.FlagsField, controller.FlagLookupMACBit, 1), 1)
	m = match(fv{symtab.DatapathField, uint64(mb.Datapath)}, fv{symtab.InportField, uint64(mb.Port)}, fv{of.EthSrc, mb.MAC})
	ipMatch(&m)
	b.add(controller.TableLookupMAC, prioPort, m, hit)
	// lookup_arp_ip / lookup_nd_ip: inport and IP known?
	m = match(fv{symtab.DatapathField, uint64(mb.Datapath)}, fv{symtab.InportField, uint64(mb.Port)})
	ipMatch(&m)
	b.add(controller.TableLookupMACIP, prioPort, m, hit)
}

func (b *builder) fdb(f FDB) {
	b.add(controller.TableGetFDB, prioPort, match(fv{symtab.DatapathField, uint64(f.Datapath)}, fv{of.EthDst, f.MAC}),
		set(outport, uint64(f.Port)))
	b.add(controller.TableLookupFDB, prioPort,
		match(fv{symtab.DatapathField, uint64(f.Datapath)}, fv{symtab.InportField, uint64(f.Port)}, fv{of.EthSrc, f.MAC}),
		set(of.Sub(symtab.FlagsField, controller.FlagLookupFDBBit, 1), 1))
}

// defaults: the lowest-priority flow of each physical table.
func (b *builder) defaults() {
	b.add(controller.TableClassify, prioDefault, of.Match{}, of.Drop{})
	b.add(controller.TableRemoteOutput, prioDefault, of.Match{}, resubmit(controller.TableLocalOutput))
	b.add(controller.TableLocalOutput, prioDefault, of.Match{}, of.Drop{})
	clear := make([]of.Action, 0, 11)
	for r := 0; r < 10; r++ {
		clear = append(clear, set(of.Whole(of.Reg(r)), 0))
	}
	clear = append(clear, resubmit(controller.TableLogEgress))
	b.add(controller.TableCheckLoopback, prioDefault, of.Match{}, clear...)
	// Loopback allowed: flags.loopback set skips the per-port drop.
	b.add(controller.TableLogToPhy, prioDefault, of.Match{}, of.Drop{})
	for _, t := range []uint8{controller.TableMACBinding, controller.TableGetFDB, controller.TableLookupFDB,
		controller.TableLookupMAC, controller.TableLookupMACIP,
		controller.TableLBHairpin, controller.TableLBHairpinReply, controller.TableCTSNATHairpin,
		controller.TableLBAffinity} {
		b.add(t, prioDefault, of.Match{}) // miss: the action saw the zeroed result
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// AssignZones gives every name in ports a conntrack zone in 1..65535,
// keeping the zones in prev for names that are still present and giving new
// names the lowest free zones in sorted name order. It returns an error if
// the zones run out.
func AssignZones(ports []string, prev map[string]uint16) (map[string]uint16, error) {
	out := make(map[string]uint16, len(ports))
	used := map[uint16]bool{}
	names := slices.Clone(ports)
	slices.Sort(names)
	names = slices.Compact(names)
	for _, n := range names {
		if z, ok := prev[n]; ok && z != 0 && !used[z] {
			out[n] = z
			used[z] = true
		}
	}
	next := uint16(1)
	for _, n := range names {
		if _, ok := out[n]; ok {
			continue
		}
		for used[next] {
			if next == 65535 {
				return nil, fmt.Errorf("conntrack zones exhausted at port %q (%d ports)", n, len(names))
			}
			next++
		}
		out[n] = next
		used[next] = true
	}
	return out, nil
}
