package run

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/govn/govn/controller/binding"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/sbdb"
)

// snapshot is a read-only view of the southbound cache (the models are
// shared with the cache and must not be modified).
type snapshot struct {
	global      *sbdb.SBGlobal
	lfs         map[string]model.Model   // Logical_Flow rows (*sbdb.LogicalFlow); nil if not read
	ackCfg      int                      // nb_cfg that may be acknowledged once this snapshot is installed (-1: none)
	namesCfg    int                      // the names client's SB_Global.nb_cfg (-1: none)
	chassis     map[string]*sbdb.Chassis // by UUID
	chassisByNm map[string]*sbdb.Chassis
	private     map[string]*sbdb.ChassisPrivate // by name
	encaps      map[string]*sbdb.Encap
	datapaths   map[string]*sbdb.DatapathBinding
	dpGroups    map[string]*sbdb.LogicalDPGroup
	ports       map[string]*sbdb.PortBinding
	portsByName map[string]*sbdb.PortBinding
	groups      map[string]*sbdb.MulticastGroup
	macBindings map[string]*sbdb.MACBinding
	fdbs        map[string]*sbdb.FDB
	addressSets map[string][]string
	portGroups  map[string][]string
	haGroups    map[string]*sbdb.HAChassisGroup
	haChassis   map[string]*sbdb.HAChassis
	gwChassis   map[string]*sbdb.GatewayChassis
	lbs         map[string]*sbdb.LoadBalancer
	px          *portIndex // owner of ports and portsByName
}

func rows[T any](c *ovsdbclient.Client, table string) map[string]*T {
	out := map[string]*T{}
	tc := c.Cache().Table(table)
	if tc == nil {
		return out
	}
	for uuid, m := range tc.RowsShallow() {
		if t, ok := m.(*T); ok {
			out[uuid] = t
		}
	}
	return out
}

// portIndex keeps the Port_Binding maps of the main client between runs
// and updates them from the cache by model pointer (libovsdb replaces a
// row's model on every update), instead of building two maps of every
// port on each run. The maps belong to the current snapshot: rows merged
// in from the names client (extra) are taken out again first.
type portIndex struct {
	client *ovsdbclient.Client
	byUUID map[string]*sbdb.PortBinding
	byName map[string]*sbdb.PortBinding
	extra  []*sbdb.PortBinding
}

func (x *portIndex) update(c *ovsdbclient.Client) {
	if x.client != c || x.byUUID == nil {
		*x = portIndex{client: c, byUUID: map[string]*sbdb.PortBinding{}, byName: map[string]*sbdb.PortBinding{}}
	}
	for _, pb := range x.extra {
		x.remove(pb)
	}
	x.extra = x.extra[:0]
	var raw map[string]model.Model
	if tc := c.Cache().Table(sbdb.PortBindingTable); tc != nil {
		raw = tc.RowsShallow()
	}
	n := 0
	for uuid, m := range raw {
		pb, ok := m.(*sbdb.PortBinding)
		if !ok || pb == nil {
			continue
		}
		n++
		old, ok := x.byUUID[uuid]
		if ok && old == pb {
			continue
		}
		if ok {
			x.remove(old)
		}
		x.byUUID[uuid] = pb
		x.byName[pb.LogicalPort] = pb
	}
	if len(x.byUUID) > n { // rows that are gone
		for uuid, pb := range x.byUUID {
			if m, ok := raw[uuid].(*sbdb.PortBinding); !ok || m != pb {
				x.remove(pb)
			}
		}
	}
}

func (x *portIndex) remove(pb *sbdb.PortBinding) {
	if x.byUUID[pb.UUID] == pb {
		delete(x.byUUID, pb.UUID)
	}
	if x.byName[pb.LogicalPort] == pb {
		delete(x.byName, pb.LogicalPort)
	}
}

// takeSnapshot reads the cache; the Logical_Flow table only withLFs (it is
// the largest, and only translation reads it). With px, the Port_Binding
// maps are px's, updated (see portIndex).
func takeSnapshot(c *ovsdbclient.Client, withLFs bool, px *portIndex) *snapshot {
	// SB_Global first: libovsdb applies each update to all tables under one
	// lock, so every table read after it includes at least the update that
	// set this nb_cfg; acknowledging it after installing the flows of this
	// snapshot is therefore never premature.
	var global *sbdb.SBGlobal
	for _, g := range rows[sbdb.SBGlobal](c, sbdb.SBGlobalTable) {
		global = g
	}
	// Logical_Flow next, before the rows flows refer to (ports, groups):
	// a flow is then never newer than the port it names (a port without its
	// flows yet is harmless; a flow naming a port not seen yet is an error).
	var lfs map[string]model.Model
	if tc := c.Cache().Table(sbdb.LogicalFlowTable); tc != nil && withLFs {
		lfs = tc.RowsShallow()
	}
	if px == nil {
		px = &portIndex{}
	}
	px.update(c)
	s := &snapshot{
		lfs:         lfs,
		global:      global,
		ackCfg:      -1,
		chassis:     rows[sbdb.Chassis](c, sbdb.ChassisTable),
		encaps:      rows[sbdb.Encap](c, sbdb.EncapTable),
		datapaths:   rows[sbdb.DatapathBinding](c, sbdb.DatapathBindingTable),
		dpGroups:    rows[sbdb.LogicalDPGroup](c, sbdb.LogicalDPGroupTable),
		ports:       px.byUUID,
		portsByName: px.byName,
		px:          px,
		groups:      rows[sbdb.MulticastGroup](c, sbdb.MulticastGroupTable),
		macBindings: rows[sbdb.MACBinding](c, sbdb.MACBindingTable),
		fdbs:        rows[sbdb.FDB](c, sbdb.FDBTable),
		addressSets: map[string][]string{},
		portGroups:  map[string][]string{},
		haGroups:    rows[sbdb.HAChassisGroup](c, sbdb.HAChassisGroupTable),
		haChassis:   rows[sbdb.HAChassis](c, sbdb.HAChassisTable),
		gwChassis:   rows[sbdb.GatewayChassis](c, sbdb.GatewayChassisTable),
		lbs:         rows[sbdb.LoadBalancer](c, sbdb.LoadBalancerTable),
	}
	if global != nil {
		s.ackCfg = global.NbCfg
	}
	s.chassisByNm = make(map[string]*sbdb.Chassis, len(s.chassis))
	for _, ch := range s.chassis {
		s.chassisByNm[ch.Name] = ch
	}
	s.private = map[string]*sbdb.ChassisPrivate{}
	for _, p := range rows[sbdb.ChassisPrivate](c, sbdb.ChassisPrivateTable) {
		s.private[p.Name] = p
	}
	for _, a := range rows[sbdb.AddressSet](c, sbdb.AddressSetTable) {
		s.addressSets[a.Name] = a.Addresses
	}
	for _, g := range rows[sbdb.PortGroup](c, sbdb.PortGroupTable) {
		s.portGroups[g.Name] = g.Ports
	}
	return s
}

// monitorSpec is what the conditional monitor asks for: every row of the
// small tables, and the rows of the per-datapath tables that belong to the
// local datapaths (plus the Port_Bindings needed to find them).
type monitorSpec struct {
	all       bool     // no conditions: monitor everything
	chassis   string   // our Chassis UUID ("" before registration)
	datapaths []string // local Datapath_Binding UUIDs
	dpKeys    []int    // their tunnel keys (FDB refers to datapaths by key)
	dpGroups  []string // Logical_DP_Groups containing a local datapath
	ports     []string // logical port names: local iface-ids and patch peers
}

func (m monitorSpec) equal(o monitorSpec) bool {
	return m.all == o.all && m.chassis == o.chassis && slices.Equal(m.datapaths, o.datapaths) && slices.Equal(m.dpKeys, o.dpKeys) &&
		slices.Equal(m.dpGroups, o.dpGroups) && slices.Equal(m.ports, o.ports)
}

func (m monitorSpec) String() string {
	if m.all {
		return "all"
	}
	ch := m.chassis
	if ch == "" {
		ch = "unregistered"
	}
	return fmt.Sprintf("chassis %s, %d datapaths, %d datapath groups, %d ports by name", ch, len(m.datapaths), len(m.dpGroups), len(m.ports))
}

// noRow is a UUID no row has: a condition on it matches nothing.
const noRow = "00000000-0000-0000-0000-000000000000"

// lfColumns are the Logical_Flow columns the controller reads (of lf):
// external_ids and tags, a large share of each row, are not monitored.
func lfColumns(lf *sbdb.LogicalFlow) []any {
	return []any{&lf.Actions, &lf.ControllerMeter, &lf.LogicalDatapath, &lf.LogicalDpGroup, &lf.Match,
		&lf.Pipeline, &lf.Priority, &lf.TableID}
}

// monitorOptions turns the spec into libovsdb monitor options.
func (m monitorSpec) monitorOptions() []client.MonitorOption {
	always := []client.MonitorOption{
		client.WithTable(&sbdb.SBGlobal{}),
		client.WithTable(&sbdb.Chassis{}),
		client.WithTable(&sbdb.ChassisPrivate{}),
		client.WithTable(&sbdb.Encap{}),
		client.WithTable(&sbdb.DatapathBinding{}),
		client.WithTable(&sbdb.LogicalDPGroup{}),
		client.WithTable(&sbdb.AddressSet{}),
		client.WithTable(&sbdb.PortGroup{}),
		client.WithTable(&sbdb.HAChassisGroup{}),
		client.WithTable(&sbdb.HAChassis{}),
		client.WithTable(&sbdb.GatewayChassis{}),
	}
	if m.all {
		lfAll := &sbdb.LogicalFlow{}
		return append(always,
			client.WithTable(&sbdb.LoadBalancer{}),
			client.WithTable(&sbdb.PortBinding{}),
			client.WithTable(lfAll, lfColumns(lfAll)...),
			client.WithTable(&sbdb.MulticastGroup{}),
			client.WithTable(&sbdb.MACBinding{}),
			client.WithTable(&sbdb.FDB{}))
	}
	pb := &sbdb.PortBinding{}
	var pbConds []model.Condition
	for _, dp := range m.datapaths {
		pbConds = append(pbConds, model.Condition{Field: &pb.Datapath, Function: ovsdb.ConditionEqual, Value: dp})
	}
	if m.chassis != "" {
		ch := m.chassis
		pbConds = append(pbConds, model.Condition{Field: &pb.Chassis, Function: ovsdb.ConditionEqual, Value: &ch})
	}
	for _, p := range m.ports {
		pbConds = append(pbConds, model.Condition{Field: &pb.LogicalPort, Function: ovsdb.ConditionEqual, Value: p})
	}
	// Gateway ports of every datapath: they decide which datapaths are
	// local (an l3gateway or chassisredirect port of this chassis) and
	// localnet ports are few.
	for _, t := range []string{"l3gateway", "chassisredirect", "localnet"} {
		pbConds = append(pbConds, model.Condition{Field: &pb.Type, Function: ovsdb.ConditionEqual, Value: t})
	}
	lf := &sbdb.LogicalFlow{}
	var lfConds []model.Condition
	for _, dp := range m.datapaths {
		dp := dp
		lfConds = append(lfConds, model.Condition{Field: &lf.LogicalDatapath, Function: ovsdb.ConditionEqual, Value: &dp})
	}
	for _, g := range m.dpGroups {
		g := g
		lfConds = append(lfConds, model.Condition{Field: &lf.LogicalDpGroup, Function: ovsdb.ConditionEqual, Value: &g})
	}
	if len(lfConds) == 0 {
		lfConds = append(lfConds, model.Condition{Field: &lf.UUID, Function: ovsdb.ConditionEqual, Value: noRow})
	}
	mg := &sbdb.MulticastGroup{}
	mb := &sbdb.MACBinding{}
	var mgConds, mbConds []model.Condition
	for _, dp := range m.datapaths {
		mgConds = append(mgConds, model.Condition{Field: &mg.Datapath, Function: ovsdb.ConditionEqual, Value: dp})
		mbConds = append(mbConds, model.Condition{Field: &mb.Datapath, Function: ovsdb.ConditionEqual, Value: dp})
	}
	if len(mgConds) == 0 {
		mgConds = append(mgConds, model.Condition{Field: &mg.UUID, Function: ovsdb.ConditionEqual, Value: noRow})
		mbConds = append(mbConds, model.Condition{Field: &mb.UUID, Function: ovsdb.ConditionEqual, Value: noRow})
	}
	fdb := &sbdb.FDB{}
	var fdbConds []model.Condition
	for _, k := range m.dpKeys {
		fdbConds = append(fdbConds, model.Condition{Field: &fdb.DpKey, Function: ovsdb.ConditionEqual, Value: k})
	}
	if len(fdbConds) == 0 {
		fdbConds = append(fdbConds, model.Condition{Field: &fdb.UUID, Function: ovsdb.ConditionEqual, Value: noRow})
	}
	lb := &sbdb.LoadBalancer{}
	var lbConds []model.Condition
	for _, dp := range m.datapaths {
		lbConds = append(lbConds, model.Condition{Field: &lb.Datapaths, Function: ovsdb.ConditionIncludes, Value: []string{dp}})
	}
	for _, g := range m.dpGroups {
		g := g
		lbConds = append(lbConds, model.Condition{Field: &lb.DatapathGroup, Function: ovsdb.ConditionEqual, Value: &g})
	}
	if len(lbConds) == 0 {
		lbConds = append(lbConds, model.Condition{Field: &lb.UUID, Function: ovsdb.ConditionEqual, Value: noRow})
	}
	return append(always,
		client.WithConditionalTable(lb, lbConds),
		client.WithConditionalTable(fdb, fdbConds),
		client.WithConditionalTable(pb, pbConds),
		client.WithConditionalTable(lf, lfConds, lfColumns(lf)...),
		client.WithConditionalTable(mg, mgConds),
		client.WithConditionalTable(mb, mbConds))
}

// eventHandler calls events for every cache change, and records in cfg
// the SB_Global.nb_cfg of the last SB_Global change handled (-1: none),
// after calling events for it. libovsdb applies an update to its cache and
// then hands out its events on another goroutine, one by one: cfg tells how
// far the events have caught up with the cache (see ackIfCaughtUp).
func eventHandler(events func(table, op string), cfg *atomic.Int64) cache.EventHandler {
	global := func(table string, m model.Model) {
		if table != sbdb.SBGlobalTable {
			return
		}
		if g, ok := m.(*sbdb.SBGlobal); ok && g != nil {
			cfg.Store(int64(g.NbCfg))
		} else {
			cfg.Store(-1)
		}
	}
	return &cache.EventHandlerFuncs{
		AddFunc: func(table string, m model.Model) {
			events(table, "add")
			global(table, m)
		},
		UpdateFunc: func(table string, _, m model.Model) {
			events(table, "update")
			global(table, m)
		},
		DeleteFunc: func(table string, _ model.Model) {
			events(table, "delete")
			global(table, nil)
		},
	}
}

// startCfg sets cfg from the cache unless an event did: the events of the
// initial monitor reply may be handed out before the handler is
// registered. (The caller's next run re-reads everything.)
func startCfg(c *ovsdbclient.Client, cfg *atomic.Int64) {
	for _, g := range rows[sbdb.SBGlobal](c, sbdb.SBGlobalTable) {
		cfg.CompareAndSwap(-1, int64(g.NbCfg))
	}
}

// connectSB connects a southbound client with spec and registers events
// as the handler of every cache change; cfg follows its SB_Global events.
func connectSB(ctx context.Context, remotes []string, spec monitorSpec, log *zap.Logger, events func(table, op string)) (*ovsdbclient.Client, *atomic.Int64, error) {
	cfg := &atomic.Int64{}
	cfg.Store(-1)
	// Rows are found by UUID or schema index only: the standard client
	// indexes (Logical_Flow by logical_datapath, ...) would cost memory.
	c, err := sbdb.NewClient(ctx, remotes, ovsdbclient.WithLogger(log), ovsdbclient.WithMonitor(spec.monitorOptions()...),
		ovsdbclient.WithInactivityProbe(0), ovsdbclient.WithoutDefaultIndexes())
	if err != nil {
		return nil, nil, err
	}
	c.Cache().AddEventHandler(eventHandler(events, cfg))
	startCfg(c, cfg)
	return c, cfg, nil
}

// parseMAC parses an Ethernet address into 48 bits.
func parseMAC(s string) (uint64, bool) {
	parts := strings.Split(s, ":")
	if len(parts) != 6 {
		return 0, false
	}
	var v uint64
	for _, p := range parts {
		b, err := strconv.ParseUint(p, 16, 8)
		if err != nil {
			return 0, false
		}
		v = v<<8 | b
	}
	return v, true
}

func parseIP(s string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(s)
	return a, err == nil
}

func sortedUnique(s []string) []string {
	s = slices.Clone(s)
	slices.SortFunc(s, cmp.Compare[string])
	return slices.Compact(s)
}

// connectNames connects the small second southbound client that monitors
// the Port_Bindings named by local interfaces (external_ids:iface-id), so
// that a port can be claimed before its datapath is local. Its conditions
// change whenever an interface is plugged or unplugged; keeping them out of
// the main client means that costs a reconnect of a few rows, not a
// re-download of the local datapaths' logical flows.
func connectNames(ctx context.Context, remotes []string, names []string, log *zap.Logger, events func(table, op string)) (*ovsdbclient.Client, *atomic.Int64, error) {
	cfg := &atomic.Int64{}
	cfg.Store(-1)
	pb := &sbdb.PortBinding{}
	var conds []model.Condition
	for _, n := range names {
		conds = append(conds, model.Condition{Field: &pb.LogicalPort, Function: ovsdb.ConditionEqual, Value: n})
	}
	if len(conds) == 0 {
		conds = append(conds, model.Condition{Field: &pb.UUID, Function: ovsdb.ConditionEqual, Value: noRow})
	}
	// Not leader-only: this client is replaced whenever the set of local
	// interfaces changes, and libovsdb v0.8.1 never stops the goroutine
	// that watches a leader-only client's _Server database, so every
	// replaced client (its caches included, ~1 MB at 10k ports) would stay
	// reachable for the life of the process. A follower's view of a few
	// Port_Binding rows is as good as the leader's here (ovn-controller is
	// not leader-only either).
	c, err := sbdb.NewClient(ctx, remotes, ovsdbclient.WithLogger(log), ovsdbclient.WithoutDefaultIndexes(),
		ovsdbclient.WithLeaderOnly(false),
		ovsdbclient.WithMonitor(client.WithTable(&sbdb.SBGlobal{}), client.WithConditionalTable(pb, conds)))
	if err != nil {
		return nil, nil, err
	}
	c.Cache().AddEventHandler(eventHandler(events, cfg))
	startCfg(c, cfg)
	return c, cfg, nil
}

// mergeNamed adds the Port_Bindings the names client sees to s (the main
// client's rows win: they are at least as fresh for local datapaths). The
// two clients are two connections that may be at different points in the
// database's history: s.ackCfg becomes the smaller of their nb_cfg values,
// each read before its client's other rows, so that acknowledging it is
// safe for the combined view.
func (s *snapshot) mergeNamed(c *ovsdbclient.Client) {
	if c == nil {
		return
	}
	s.namesCfg = -1
	for _, g := range rows[sbdb.SBGlobal](c, sbdb.SBGlobalTable) {
		s.namesCfg = g.NbCfg
		if g.NbCfg < s.ackCfg {
			s.ackCfg = g.NbCfg
		}
	}
	for uuid, pb := range rows[sbdb.PortBinding](c, sbdb.PortBindingTable) {
		if _, ok := s.ports[uuid]; ok {
			continue
		}
		if _, ok := s.portsByName[pb.LogicalPort]; ok {
			continue
		}
		s.ports[uuid] = pb
		s.portsByName[pb.LogicalPort] = pb
		s.px.extra = append(s.px.extra, pb)
	}
}

// gatewayChassis returns, by logical port, the chassis each gateway port
// belongs on: an l3gateway port's options:l3gateway-chassis, and a
// chassisredirect port's active gateway (binding.ActiveGateway over its
// HA_Chassis_Group, or its Gateway_Chassis rows) among the live chassis.
func (s *snapshot) gatewayChassis(live map[string]bool) map[string]string {
	out := map[string]string{}
	name := func(uuid *string) string {
		if uuid == nil {
			return ""
		}
		if ch, ok := s.chassis[*uuid]; ok {
			return ch.Name
		}
		return ""
	}
	for _, pb := range s.ports {
		switch pb.Type {
		case binding.TypeL3Gateway:
			out[pb.LogicalPort] = pb.Options["l3gateway-chassis"]
		case binding.TypeChassisRedirect:
			var members []binding.HAChassis
			if pb.HaChassisGroup != nil {
				if g, ok := s.haGroups[*pb.HaChassisGroup]; ok {
					for _, hu := range g.HaChassis {
						if h, ok := s.haChassis[hu]; ok {
							members = append(members, binding.HAChassis{Chassis: name(h.Chassis), Priority: h.Priority})
						}
					}
				}
			} else {
				for _, gu := range pb.GatewayChassis {
					if g, ok := s.gwChassis[gu]; ok {
						members = append(members, binding.HAChassis{Chassis: name(g.Chassis), Priority: g.Priority})
					}
				}
			}
			out[pb.LogicalPort] = binding.ActiveGateway(members, live)
		}
	}
	return out
}

// namesLag bounds how long a run waits for the names client to catch up.
const namesLag = 20 * time.Millisecond

// awaitNames waits (briefly) until the two southbound clients have seen
// the same nb_cfg. Both get a transaction's update from the server within
// moments of each other (the names client, with a few rows, usually
// first); a run that starts in between could not acknowledge the nb_cfg
// (the smaller one of the two counts) and would need a second run after
// the other update, doubling --wait=hv latency.
func (c *Controller) awaitNames(ctx context.Context) {
	if c.names == nil {
		return
	}
	cfg := func(cl *ovsdbclient.Client) int {
		n := -1
		for _, g := range rows[sbdb.SBGlobal](cl, sbdb.SBGlobalTable) {
			n = g.NbCfg
		}
		return n
	}
	for deadline := time.Now().Add(namesLag); cfg(c.names) != cfg(c.sb) && time.Now().Before(deadline) && ctx.Err() == nil; {
		time.Sleep(time.Millisecond)
	}
}
