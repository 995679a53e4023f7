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
	TypeVIF   = ""      // a VM/container interface, bound by iface-id
	TypePatch = "patch" // connects two logical datapaths on every chassis
)

// Port is a logical port (Port_Binding) of a datapath this chassis may need.
type Port struct {
	Name     string // logical_port
	Datapath uint32 // Datapath_Binding.tunnel_key
	Key      uint32 // Port_Binding.tunnel_key
	Type     string // TypeVIF, TypePatch; others are ignored
	Peer     string // TypePatch: the peer logical port's name
	Chassis  string // name of the chassis the port is bound to; "" if unbound
}

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

// LocalDatapaths returns the datapaths this chassis needs: those with a VIF
// bound here, and every datapath reachable from those through patch ports.
func LocalDatapaths(in *Input) map[uint32]bool {
	byName := make(map[string]*Port, len(in.Ports))
	for i := range in.Ports {
		byName[in.Ports[i].Name] = &in.Ports[i]
	}
	local := map[uint32]bool{}
	var queue []uint32
	for i := range in.Ports {
		p := &in.Ports[i]
		if _, ok := in.Local(p); ok && !local[p.Datapath] {
			local[p.Datapath] = true
			queue = append(queue, p.Datapath)
		}
	}
	patches := map[uint32][]*Port{}
	for i := range in.Ports {
		if p := &in.Ports[i]; p.Type == TypePatch {
			patches[p.Datapath] = append(patches[p.Datapath], p)
		}
	}
	for len(queue) > 0 {
		dp := queue[0]
		queue = queue[1:]
		for _, p := range patches[dp] {
			if peer, ok := byName[p.Peer]; ok && !local[peer.Datapath] {
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
	b.defaults()
	slices.SortFunc(b.flows, func(x, y of.Flow) int {
		if c := cmp.Or(cmp.Compare(x.Table, y.Table), cmp.Compare(y.Priority, x.Priority)); c != 0 {
			return c
		}
		return cmp.Compare(x.Match.String(), y.Match.String())
	})
	return b.flows
}

type builder struct {
	in     *Input
	local  map[uint32]bool
	byName map[string]*Port
	flows  []of.Flow
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

// classify: table 0 for local VIFs and tunnels.
func (b *builder) classify() {
	for i := range b.in.Ports {
		p := &b.in.Ports[i]
		ofp, ok := b.in.Local(p)
		if !ok {
			continue
		}
		b.add(controller.TableClassify, prioPort, match(fv{of.InPort, uint64(ofp)}),
			set(metadata, uint64(p.Datapath)),
			set(inport, uint64(p.Key)),
			set(ctZone, b.zone(p.Name)),
			resubmit(controller.TableLogIngress))
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

func (b *builder) port(p *Port) {
	dpPort := func() of.Match {
		return match(fv{symtab.DatapathField, uint64(p.Datapath)}, fv{symtab.OutportField, uint64(p.Key)})
	}
	if ofp, ok := b.in.Local(p); ok {
		// Local output: load the outport's zone, check loopback.
		b.add(controller.TableLocalOutput, prioPort, dpPort(),
			set(ctZone, b.zone(p.Name)), resubmit(controller.TableCheckLoopback))
		lb := match(fv{symtab.DatapathField, uint64(p.Datapath)}, fv{symtab.InportField, uint64(p.Key)}, fv{symtab.OutportField, uint64(p.Key)})
		lb.Set(symtab.FlagsField, bits.Zero, bits.From64(1<<symtab.FlagLoopback))
		b.add(controller.TableCheckLoopback, prioPort, lb, of.Drop{})
		// A flow whose outport is its inport reached here only with
		// flags.loopback: OpenFlow needs in_port to send it back.
		m := dpPort()
		m.Set(of.InPort, bits.From64(uint64(ofp)), bits.Ones(32))
		b.add(controller.TableLogToPhy, prioHigh, m, of.Output{Port: of.PortInPort})
		b.add(controller.TableLogToPhy, prioPort, dpPort(), of.Output{Port: ofp})
		return
	}
	switch p.Type {
	case TypeVIF:
		if p.Chassis == "" || p.Chassis == b.in.Chassis {
			return // unbound, or ours without an interface yet: dropped
		}
		tun, ok := b.in.Tunnels[p.Chassis]
		if !ok || tun == 0 {
			return // no tunnel (yet) to its chassis
		}
		b.add(controller.TableRemoteOutput, prioPort, dpPort(), b.tunnelTo(p.Datapath, p.Key, tun)...)
	case TypePatch:
		peer, ok := b.byName[p.Peer]
		if !ok || peer.Type != TypePatch {
			return
		}
		b.add(controller.TableLocalOutput, prioPort, dpPort(), resubmit(controller.TableCheckLoopback))
		// Crossing into the peer datapath: a fresh logical context.
		acts := []of.Action{of.CTClear{}, set(flags, 0), set(dnatZone, 0), set(snatZone, 0), set(ctZone, 0)}
		for r := 0; r < 10; r++ {
			acts = append(acts, set(of.Whole(of.Reg(r)), 0))
		}
		acts = append(acts, set(metadata, uint64(peer.Datapath)), set(inport, uint64(peer.Key)),
			set(outport, 0), of.Resubmit{InPort: 0, Table: int(controller.TableLogIngress)})
		b.add(controller.TableLogToPhy, prioPort, dpPort(), of.Clone{Actions: acts})
	}
}

// multicast expands a group: every other chassis with a member once
// (TableRemoteOutput), then each local member (TableLocalOutput).
func (b *builder) multicast(g *MulticastGroup) {
	var remote []string
	seen := map[string]bool{}
	var localVIF, localPatch []*Port
	for _, name := range g.Ports {
		p, ok := b.byName[name]
		if !ok || p.Datapath != g.Datapath {
			continue
		}
		if _, ok := b.in.Local(p); ok {
			localVIF = append(localVIF, p)
			continue
		}
		switch p.Type {
		case TypePatch:
			if peer, ok := b.byName[p.Peer]; ok && peer.Type == TypePatch {
				localPatch = append(localPatch, p)
			}
		case TypeVIF:
			if p.Chassis != "" && p.Chassis != b.in.Chassis && !seen[p.Chassis] {
				if tun := b.in.Tunnels[p.Chassis]; tun != 0 {
					seen[p.Chassis] = true
					remote = append(remote, p.Chassis)
				}
			}
		}
	}
	slices.Sort(remote)
	sortPorts := func(ps []*Port) { slices.SortFunc(ps, func(x, y *Port) int { return cmp.Compare(x.Key, y.Key) }) }
	sortPorts(localVIF)
	sortPorts(localPatch)
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
	deliver := func(ps []*Port, withZone bool) []of.Action {
		var acts []of.Action
		for _, p := range ps {
			acts = append(acts, set(outport, uint64(p.Key)))
			if withZone {
				acts = append(acts, set(ctZone, b.zone(p.Name)))
			}
			acts = append(acts, resubmit(controller.TableCheckLoopback))
		}
		if len(acts) > 0 {
			acts = append(acts, set(outport, uint64(g.Key)))
		}
		return acts
	}
	all := append(deliver(localVIF, true), deliver(localPatch, false)...)
	if len(all) == 0 {
		return
	}
	b.add(controller.TableLocalOutput, prioPort, m(), all...)
	if len(localPatch) > 0 {
		// Received from a tunnel: the sender already crossed the patch ports.
		mt := m()
		mt.Set(symtab.FlagsField, bits.From64(1<<controller.FlagFromTunnelBit), bits.From64(1<<controller.FlagFromTunnelBit))
		acts := deliver(localVIF, true)
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
		controller.TableLookupMAC, controller.TableLookupMACIP} {
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
