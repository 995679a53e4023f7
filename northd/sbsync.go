package northd

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// SB table and column names northd writes.
const (
	tDatapath  = "Datapath_Binding"
	tPort      = "Port_Binding"
	tMC        = "Multicast_Group"
	tFlow      = "Logical_Flow"
	tDPGroup   = "Logical_DP_Group"
	tPortGroup = "Port_Group"
	tAddrSet   = "Address_Set"
	tSBGlobal  = "SB_Global"
	tLB        = "Load_Balancer"
	tHAGroup   = "HA_Chassis_Group"
	tHAChassis = "HA_Chassis"

	// ExtChassisName is the HA_Chassis external_ids key naming its chassis
	// (kept while no Chassis row of that name exists).
	ExtChassisName = "chassis-name"

	// Datapath_Binding external_ids.
	ExtLogicalSwitch = "logical-switch" // NB Logical_Switch UUID (ownership and identity)
	ExtLogicalRouter = "logical-router" // NB Logical_Router UUID
	ExtName          = "name"           // NB Logical_Switch name

	// MaxDatapathKey is the largest datapath tunnel key (OVN's max_tunid
	// for Geneve with 24-bit VNIs, leaving room for VXLAN-compatible keys).
	MaxDatapathKey = 16711680
	// MaxPortKey is the largest logical port tunnel key (15 bits; keys with
	// bit 15 set are multicast groups).
	MaxPortKey = 32767
)

// Rows read from the SB by the shell, used to (re)build the mirror.

// SBDatapath is a Datapath_Binding row.
type SBDatapath struct {
	UUID        string
	TunnelKey   int
	ExternalIDs map[string]string
}

// SBPort is a Port_Binding row (the columns northd owns).
type SBPort struct {
	UUID         string
	Datapath     string // SB uuid
	LogicalPort  string
	TunnelKey    int
	Type         string
	MAC          []string
	Options      map[string]string
	PortSecurity []string
	ParentPort   *string
	Tag          *int
	NATAddresses []string
	HAGroup      string // HA_Chassis_Group uuid or ""
}

// SBHAGroup is an HA_Chassis_Group row with its HA_Chassis rows.
type SBHAGroup struct {
	UUID    string
	Name    string
	Chassis []SBHAChassis
}

// SBHAChassis is an HA_Chassis row.
type SBHAChassis struct {
	UUID        string
	Chassis     string // Chassis uuid or ""
	Priority    int
	ExternalIDs map[string]string
}

// SBMulticast is a Multicast_Group row.
type SBMulticast struct {
	UUID      string
	Datapath  string
	Name      string
	TunnelKey int
	Ports     []string // Port_Binding uuids
}

// SBFlow is a Logical_Flow row.
type SBFlow struct {
	UUID            string
	LogicalDatapath string // SB uuid or ""
	LogicalDPGroup  string // SB uuid or ""
	Pipeline        string
	TableID         int
	Priority        int
	Match, Actions  string
	ExternalIDs     map[string]string
}

// SBGroup is a Logical_DP_Group row.
type SBGroup struct {
	UUID      string
	Datapaths []string
}

// SBNamedSet is a Port_Group (ports) or Address_Set (addresses) row.
type SBNamedSet struct {
	UUID  string
	Name  string
	Items []string
}

// SBGlobal is the SB_Global row.
type SBGlobal struct {
	UUID    string
	NbCfg   int
	Options map[string]string
}

// SBLB is a Load_Balancer row.
type SBLB struct {
	UUID          string
	Name          string
	Vips          map[string]string
	Protocol      string   // "" when unset
	Datapaths     []string // SB datapath uuids
	DatapathGroup string   // SB uuid or "" (OVN 23.03 writes this instead of datapaths)
	Options       map[string]string
	ExternalIDs   map[string]string
}

// SBRows is everything northd reads back from the SB.
type SBRows struct {
	LBs         []SBLB
	Datapaths   []SBDatapath
	Ports       []SBPort
	Multicast   []SBMulticast
	Flows       []SBFlow
	Groups      []SBGroup
	PortGroups  []SBNamedSet
	AddressSets []SBNamedSet
	HAGroups    []SBHAGroup
	Global      *SBGlobal
}

// mirror rows.
type mDatapath struct {
	router bool
	uuid   string
	key    int
	name   string
}

type mPort struct {
	uuid string
	dp   string // NB switch uuid
	key  int
	spec PortBindingSpec
}

type mMC struct {
	uuid  string
	key   int
	ports []string // port names
}

type mFlow struct {
	uuid   string
	dp     string // NB switch uuid when on one datapath
	group  *mGroup
	source string
	refKey string
	refVal string
}

type mGroup struct {
	uuid string
	set  string   // sorted NB switch uuids joined by ","
	dps  []string // NB switch uuids
	refs int      // flows and load balancers using the group
}

type mHAGroup struct {
	uuid    string
	members map[string]*mHAChassis // chassis name →
}

type mHAChassis struct {
	uuid     string
	chassis  string // Chassis uuid or ""
	priority int
}

type mSet struct {
	uuid  string
	items []string
}

type mLB struct {
	uuid  string
	spec  LBSpec
	group *mGroup // its datapath_group
	// stale: the row's columns are not what northd writes (e.g. a
	// datapath_group or a datapath northd does not know): rewrite it.
	stale bool
}

// SBState is northd's mirror of the southbound rows it owns. It is built
// from the SB at start (Load), then kept up to date by Sync, which diffs the
// engine's desired state against it and returns one transaction. Sync
// updates the mirror as if the transaction succeeded; the caller applies
// the inserted rows' UUIDs with Txn.Commit, or, if the transaction failed,
// reloads the mirror from the SB and marks the engine for a full sync.
type SBState struct {
	dps        map[string]*mDatapath // NB switch uuid →
	dpKeys     map[int]bool
	dpHint     int
	ports      map[string]*mPort            // logical_port →
	portsByDP  map[string]map[string]*mPort // NB switch uuid → name →
	portKeys   map[string]map[int]bool      // NB switch uuid → used keys
	portHint   map[string]int
	mcs        map[string]map[string]*mMC // NB switch uuid → name →
	flows      map[flowKey]*mFlow
	groups     map[string]*mGroup // set → group
	pgs        map[string]*mSet
	ases       map[string]*mSet
	lbs        map[string]*mLB      // NB Load_Balancer uuid →
	haGroups   map[string]*mHAGroup // name →
	global     *SBGlobal
	orphans    []orphan // rows to delete on the next sync
	needGlobal bool
	// full: the next Sync compares everything (after Load), not only the
	// engine's changes.
	full bool
}

type orphan struct{ table, uuid string }

// NewSBState returns an empty mirror (an empty SB).
func NewSBState() *SBState {
	return &SBState{
		dps: map[string]*mDatapath{}, dpKeys: map[int]bool{},
		ports: map[string]*mPort{}, portsByDP: map[string]map[string]*mPort{},
		portKeys: map[string]map[int]bool{}, portHint: map[string]int{},
		mcs: map[string]map[string]*mMC{}, flows: map[flowKey]*mFlow{},
		groups: map[string]*mGroup{}, pgs: map[string]*mSet{}, ases: map[string]*mSet{}, haGroups: map[string]*mHAGroup{},
		lbs: map[string]*mLB{}, needGlobal: true, full: true,
	}
}

// LoadSB builds the mirror from SB rows. Rows northd does not recognise as
// its own current output (datapaths of no logical switch, duplicates,
// flows of unknown stages) are remembered and deleted by the next Sync.
// Tunnel keys of existing datapaths and ports are kept.
func LoadSB(r *SBRows) *SBState {
	s := NewSBState()
	s.global = r.Global
	bySB := map[string]string{}   // SB dp uuid → NB switch uuid
	routerDP := map[string]bool{} // NB uuid → is a router
	for _, d := range r.Datapaths {
		nb := d.ExternalIDs[ExtLogicalSwitch]
		isRouter := false
		if nb == "" {
			nb, isRouter = d.ExternalIDs[ExtLogicalRouter], true
		}
		if nb == "" || s.dps[nb] != nil {
			s.orphans = append(s.orphans, orphan{tDatapath, d.UUID})
			continue
		}
		s.dps[nb] = &mDatapath{router: isRouter, uuid: d.UUID, key: d.TunnelKey, name: d.ExternalIDs[ExtName]}
		routerDP[nb] = isRouter
		s.dpKeys[d.TunnelKey] = true
		if d.TunnelKey > s.dpHint {
			s.dpHint = d.TunnelKey
		}
		bySB[d.UUID] = nb
	}
	haBySB := map[string]string{} // SB group uuid → name
	for _, g := range r.HAGroups {
		if s.haGroups[g.Name] != nil {
			s.orphans = append(s.orphans, orphan{tHAGroup, g.UUID})
			continue
		}
		mg := &mHAGroup{uuid: g.UUID, members: map[string]*mHAChassis{}}
		for _, c := range g.Chassis {
			name := c.ExternalIDs[ExtChassisName]
			if name == "" || mg.members[name] != nil {
				// Not northd's: dropped from the group by the next
				// update of its ha_chassis.
				mg.members["\x00"+c.UUID] = &mHAChassis{uuid: c.UUID}
				continue
			}
			mg.members[name] = &mHAChassis{uuid: c.UUID, chassis: c.Chassis, priority: c.Priority}
		}
		s.haGroups[g.Name] = mg
		haBySB[g.UUID] = g.Name
	}
	portBySB := map[string]string{}
	for _, p := range r.Ports {
		nb := bySB[p.Datapath]
		if nb == "" || s.ports[p.LogicalPort] != nil {
			s.orphans = append(s.orphans, orphan{tPort, p.UUID})
			continue
		}
		mp := &mPort{uuid: p.UUID, dp: nb, key: p.TunnelKey, spec: PortBindingSpec{Switch: nb, Name: p.LogicalPort,
			Type: p.Type, MAC: p.MAC, Options: p.Options, PortSecurity: p.PortSecurity, ParentPort: p.ParentPort, Tag: p.Tag,
			NATAddresses: p.NATAddresses, HAGroup: haBySB[p.HAGroup]}}
		if p.HAGroup != "" && mp.spec.HAGroup == "" {
			mp.spec.HAGroup = "\x00" + p.HAGroup // an unknown group: rewritten by the next sync
		}
		s.addPort(mp)
		portBySB[p.UUID] = p.LogicalPort
	}
	for _, m := range r.Multicast {
		nb := bySB[m.Datapath]
		if nb == "" || s.mcs[nb][m.Name] != nil {
			s.orphans = append(s.orphans, orphan{tMC, m.UUID})
			continue
		}
		mm := &mMC{uuid: m.UUID, key: m.TunnelKey}
		for _, p := range m.Ports {
			if n := portBySB[p]; n != "" {
				mm.ports = append(mm.ports, n)
			}
		}
		sort.Strings(mm.ports)
		if s.mcs[nb] == nil {
			s.mcs[nb] = map[string]*mMC{}
		}
		s.mcs[nb][m.Name] = mm
	}
	groupByUUID := map[string]*mGroup{}
	for _, g := range r.Groups {
		var dps []string
		for _, d := range g.Datapaths {
			if nb := bySB[d]; nb != "" {
				dps = append(dps, nb)
			}
		}
		sort.Strings(dps)
		set := strings.Join(dps, ",")
		mg := &mGroup{uuid: g.UUID, set: set, dps: dps}
		groupByUUID[g.UUID] = mg
		if s.groups[set] == nil && len(dps) > 0 {
			s.groups[set] = mg
		}
	}
	for _, f := range r.Flows {
		kind := SwitchDatapath
		switch {
		case f.LogicalDatapath != "":
			if routerDP[bySB[f.LogicalDatapath]] {
				kind = RouterDatapath
			}
		case f.LogicalDPGroup != "":
			if g := groupByUUID[f.LogicalDPGroup]; g != nil && len(g.dps) > 0 && routerDP[g.dps[0]] {
				kind = RouterDatapath
			}
		}
		p := Ingress
		if f.Pipeline == "egress" {
			p = Egress
		}
		stage, ok := StageAt(kind, p, f.TableID)
		var mf *mFlow
		if ok && f.Priority >= 0 && f.Priority <= 65535 {
			mf = &mFlow{uuid: f.UUID, source: f.ExternalIDs[ExtSource]}
			for _, k := range []string{RefACL, RefLSP, RefLRP, RefRoute, RefLB, RefNAT} {
				if v, ok := f.ExternalIDs[k]; ok {
					mf.refKey, mf.refVal = k, v
				}
			}
			if f.ExternalIDs[ExtStageName] != stage.Name() {
				mf.source = "" // forces an external_ids update
			}
			switch {
			case f.LogicalDatapath != "" && bySB[f.LogicalDatapath] != "":
				mf.dp = bySB[f.LogicalDatapath]
			case f.LogicalDPGroup != "" && groupByUUID[f.LogicalDPGroup] != nil && groupByUUID[f.LogicalDPGroup].set != "":
				// A duplicate group (same set as s.groups[set]) keeps
				// its flows until Sync re-points them.
				mf.group = groupByUUID[f.LogicalDPGroup]
			default:
				mf = nil
			}
		}
		k := flowKey{stage, uint16(f.Priority), f.Match, f.Actions}
		if mf == nil || s.flows[k] != nil {
			s.orphans = append(s.orphans, orphan{tFlow, f.UUID})
			continue
		}
		if mf.group != nil {
			mf.group.refs++
		}
		s.flows[k] = mf
	}
	for _, pg := range r.PortGroups {
		s.pgs[pg.Name] = &mSet{uuid: pg.UUID, items: sortedCopy(pg.Items)}
	}
	for _, as := range r.AddressSets {
		s.ases[as.Name] = &mSet{uuid: as.UUID, items: sortedCopy(as.Items)}
	}
	for _, l := range r.LBs {
		id := l.ExternalIDs[ExtLBID]
		if id == "" || s.lbs[id] != nil {
			s.orphans = append(s.orphans, orphan{tLB, l.UUID})
			continue
		}
		m := &mLB{uuid: l.UUID, spec: LBSpec{Name: l.Name, Vips: l.Vips, Protocol: l.Protocol, Options: l.Options},
			stale: len(l.Datapaths) > 0 || len(l.ExternalIDs) != 1}
		if g := groupByUUID[l.DatapathGroup]; g != nil && g.set != "" {
			m.group = g
			g.refs++
			m.spec.Switches = g.dps
		} else {
			m.stale = true
		}
		s.lbs[id] = m
	}
	return s
}

func sortedCopy(ss []string) []string {
	out := append([]string(nil), ss...)
	sort.Strings(out)
	return out
}

func (s *SBState) addPort(mp *mPort) {
	s.ports[mp.spec.Name] = mp
	if s.portsByDP[mp.dp] == nil {
		s.portsByDP[mp.dp] = map[string]*mPort{}
		s.portKeys[mp.dp] = map[int]bool{}
	}
	s.portsByDP[mp.dp][mp.spec.Name] = mp
	s.portKeys[mp.dp][mp.key] = true
	if mp.key > s.portHint[mp.dp] {
		s.portHint[mp.dp] = mp.key
	}
}

func (s *SBState) removePort(mp *mPort) {
	delete(s.ports, mp.spec.Name)
	delete(s.portsByDP[mp.dp], mp.spec.Name)
	delete(s.portKeys[mp.dp], mp.key)
}

// GlobalUUID is the SB_Global row the mirror was built with ("" if none or
// being inserted).
func (s *SBState) GlobalUUID() string {
	if s.global == nil || isPlaceholder(s.global.UUID) {
		return ""
	}
	return s.global.UUID
}

// NumFlows is the number of Logical_Flow rows in the mirror.
func (s *SBState) NumFlows() int { return len(s.flows) }

// DatapathKey returns the tunnel key of a switch's datapath.
func (s *SBState) DatapathKey(nbSwitch string) (int, bool) {
	d := s.dps[nbSwitch]
	if d == nil {
		return 0, false
	}
	return d.key, true
}

// PortKey returns the tunnel key of a logical port.
func (s *SBState) PortKey(name string) (int, bool) {
	p := s.ports[name]
	if p == nil {
		return 0, false
	}
	return p.key, true
}

// GlobalOptions are the SB_Global options northd maintains.
func GlobalOptions(svcMonitorMAC string) map[string]string {
	o := map[string]string{"max_tunid": strconv.Itoa(MaxDatapathKey)}
	if svcMonitorMAC != "" {
		o["svc_monitor_mac"] = svcMonitorMAC
	}
	return o
}

// Txn is one southbound transaction built by Sync.
type Txn struct {
	Ops []ovsdb.Operation
	// fix records, for each insert, where to store the row's real UUID.
	fix []fixup
	// Counts of changed rows, for logs.
	FlowsAdded, FlowsDeleted, FlowsUpdated int
}

type fixup struct {
	op  int
	set func(uuid string)
}

// Commit stores the UUIDs the server assigned to inserted rows. Call it
// with the results of a successful transaction of t.Ops.
func (t *Txn) Commit(results []ovsdb.OperationResult) error {
	for _, f := range t.fix {
		if f.op >= len(results) {
			return fmt.Errorf("transaction returned %d results for %d operations", len(results), len(t.Ops))
		}
		f.set(results[f.op].UUID.GoUUID)
	}
	return nil
}

type txb struct {
	t     *Txn
	named int
}

// placeholderPrefix starts the named UUIDs of rows inserted by a pending
// transaction (real UUIDs are hex).
const placeholderPrefix = "row"

func isPlaceholder(uuid string) bool { return strings.HasPrefix(uuid, placeholderPrefix) }

func (b *txb) insert(table string, row ovsdb.Row, set func(string)) string {
	b.named++
	name := placeholderPrefix + strconv.Itoa(b.named)
	b.t.Ops = append(b.t.Ops, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: table, Row: row, UUIDName: name})
	b.t.fix = append(b.t.fix, fixup{len(b.t.Ops) - 1, set})
	return name
}

func whereUUID(uuid string) []ovsdb.Condition {
	return []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: uuid}}}
}

func (b *txb) update(table, uuid string, row ovsdb.Row) {
	b.t.Ops = append(b.t.Ops, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: table, Row: row, Where: whereUUID(uuid)})
}

func (b *txb) delete(table, uuid string) {
	b.t.Ops = append(b.t.Ops, ovsdb.Operation{Op: ovsdb.OperationDelete, Table: table, Where: whereUUID(uuid)})
}

func strMap(m map[string]string) ovsdb.OvsMap {
	g := make(map[any]any, len(m))
	for k, v := range m {
		g[k] = v
	}
	return ovsdb.OvsMap{GoMap: g}
}

func strSet(ss []string) ovsdb.OvsSet {
	g := make([]any, len(ss))
	for i, s := range ss {
		g[i] = s
	}
	return ovsdb.OvsSet{GoSet: g}
}

func uuidSet(ids ...string) ovsdb.OvsSet {
	g := make([]any, 0, len(ids))
	for _, id := range ids {
		if id != "" {
			g = append(g, ovsdb.UUID{GoUUID: id})
		}
	}
	return ovsdb.OvsSet{GoSet: g}
}

func optString(p *string) ovsdb.OvsSet {
	if p == nil {
		return ovsdb.OvsSet{GoSet: []any{}}
	}
	return ovsdb.OvsSet{GoSet: []any{*p}}
}

func optInt(p *int) ovsdb.OvsSet {
	if p == nil {
		return ovsdb.OvsSet{GoSet: []any{}}
	}
	return ovsdb.OvsSet{GoSet: []any{*p}}
}

// SyncOptions are the global values written with each sync.
type SyncOptions struct {
	NbCfg         int
	SvcMonitorMAC string
	// Chassis maps SB Chassis names to their row UUIDs (HA_Chassis.chassis).
	Chassis map[string]string
}

// Sync diffs the engine's changes since the last Sync against the mirror
// and returns the transaction that makes the SB match. The mirror is
// updated as if the transaction succeeds. An empty Txn (no Ops) means the
// SB is already up to date.
func (s *SBState) Sync(e *Engine, o SyncOptions) (*Txn, error) {
	b := &txb{t: &Txn{}}
	fullLB := false
	for _, or := range s.orphans {
		b.delete(or.table, or.uuid)
	}
	s.orphans = nil

	if s.full {
		for id := range s.dps {
			e.changedSwitches[id] = true
		}
		for id := range e.sw {
			e.changedSwitches[id] = true
		}
		for k := range s.flows {
			e.changedKeys[k] = struct{}{}
		}
		for k := range e.desired {
			e.changedKeys[k] = struct{}{}
		}
		s.full = false
		fullLB = true
	}
	haWant := s.syncHAGroups(b, e, o.Chassis)
	changed := make([]string, 0, len(e.changedSwitches))
	for id := range e.changedSwitches {
		changed = append(changed, id)
	}
	sort.Strings(changed)
	// Datapaths, ports and multicast groups of changed switches. A port
	// that moved between switches is deleted and re-inserted in this one
	// transaction (OVSDB checks unique indexes at commit). On error the
	// mirror is half updated: the caller reloads it (LoadSB).
	for _, id := range changed {
		if err := s.syncSwitch(b, e, id); err != nil {
			return nil, err
		}
	}
	s.deleteHAGroups(b, haWant)
	keys := make([]flowKey, 0, len(e.changedKeys))
	for k := range e.changedKeys {
		keys = append(keys, k)
	}
	for _, k := range keys {
		s.syncFlow(b, e, k)
	}
	if e.lbChanged || fullLB {
		s.syncLBs(b, e)
	}
	// Groups no flow or load balancer references any more are
	// garbage-collected by the server (Logical_DP_Group is not a root
	// table).
	for set, g := range s.groups {
		if g.refs <= 0 {
			delete(s.groups, set)
		}
	}
	if e.globalChanged || s.needGlobal {
		s.syncSets(b, e)
	}
	s.syncGlobal(b, o)
	e.changedSwitches = map[string]bool{}
	e.changedKeys = map[flowKey]struct{}{}
	e.globalChanged = false
	e.lbChanged = false
	s.needGlobal = false
	return b.t, nil
}

func (s *SBState) allocDatapathKey() (int, error) {
	for i := 0; i < MaxDatapathKey; i++ {
		k := (s.dpHint+i)%MaxDatapathKey + 1
		if !s.dpKeys[k] {
			s.dpHint = k
			s.dpKeys[k] = true
			return k, nil
		}
	}
	return 0, fmt.Errorf("all %d datapath tunnel keys are in use", MaxDatapathKey)
}

func (s *SBState) allocPortKey(dp string) (int, error) {
	used := s.portKeys[dp]
	if used == nil {
		used = map[int]bool{}
		s.portKeys[dp] = used
	}
	for i := 0; i < MaxPortKey; i++ {
		k := (s.portHint[dp]+i)%MaxPortKey + 1
		if !used[k] {
			s.portHint[dp] = k
			used[k] = true
			return k, nil
		}
	}
	return 0, fmt.Errorf("all %d port tunnel keys of the datapath are in use", MaxPortKey)
}

func (s *SBState) syncSwitch(b *txb, e *Engine, id string) error {
	cur := s.dps[id]
	out := e.sw[id]
	if out == nil {
		if cur == nil {
			return nil
		}
		for _, p := range s.portsByDP[id] {
			b.delete(tPort, p.uuid)
			s.removePort(p)
		}
		for _, m := range s.mcs[id] {
			b.delete(tMC, m.uuid)
		}
		b.delete(tDatapath, cur.uuid)
		delete(s.mcs, id)
		delete(s.portsByDP, id)
		delete(s.portKeys, id)
		delete(s.portHint, id)
		delete(s.dpKeys, cur.key)
		delete(s.dps, id)
		s.needGlobal = true
		return nil
	}
	if cur == nil {
		key := out.requestedKey
		if key == 0 || s.dpKeys[key] {
			var err error
			if key, err = s.allocDatapathKey(); err != nil {
				return err
			}
		} else {
			s.dpKeys[key] = true
		}
		cur = &mDatapath{router: out.router, key: key, name: out.name}
		s.dps[id] = cur
		cur.uuid = b.insert(tDatapath, ovsdb.Row{
			"tunnel_key":   key,
			"external_ids": dpExternalIDs(out, id),
		}, func(u string) { cur.uuid = u })
		s.needGlobal = true
	} else if k := out.requestedKey; k != 0 && k != cur.key && !s.dpKeys[k] {
		// A requested key the datapath does not have yet (and that is
		// free): move to it.
		delete(s.dpKeys, cur.key)
		s.dpKeys[k] = true
		cur.key, cur.name = k, out.name
		b.update(tDatapath, cur.uuid, ovsdb.Row{"tunnel_key": k,
			"external_ids": dpExternalIDs(out, id)})
		s.needGlobal = true
	} else if cur.name != out.name || cur.router != out.router {
		cur.name, cur.router = out.name, out.router
		b.update(tDatapath, cur.uuid, ovsdb.Row{"external_ids": dpExternalIDs(out, id)})
		s.needGlobal = true
	}

	// Ports.
	want := make(map[string]*PortBindingSpec, len(out.ports))
	for _, p := range out.ports {
		want[p.Name] = p
	}
	for name, mp := range s.portsByDP[id] {
		if want[name] == nil {
			b.delete(tPort, mp.uuid)
			s.removePort(mp)
		}
	}
	for _, p := range out.ports {
		mp := s.ports[p.Name]
		if mp != nil && mp.dp != id {
			// Moved from another switch: a new binding in this datapath.
			b.delete(tPort, mp.uuid)
			s.removePort(mp)
			mp = nil
		}
		if mp == nil {
			key := p.RequestedKey
			if key == 0 || s.portKeys[id][key] {
				var err error
				if key, err = s.allocPortKey(id); err != nil {
					return err
				}
			}
			np := &mPort{dp: id, key: key, spec: *p}
			row := s.portRow(p)
			row["datapath"] = ovsdb.UUID{GoUUID: cur.uuid}
			row["tunnel_key"] = key
			row["logical_port"] = p.Name
			np.uuid = b.insert(tPort, row, func(u string) { np.uuid = u })
			s.addPort(np)
			continue
		}
		row := ovsdb.Row{}
		if k := p.RequestedKey; k != 0 && k != mp.key && !s.portKeys[id][k] {
			delete(s.portKeys[id], mp.key)
			s.portKeys[id][k] = true
			mp.key = k
			row["tunnel_key"] = k
		}
		if !samePort(&mp.spec, p) {
			mp.spec = *p
			for c, v := range s.portRow(p) {
				row[c] = v
			}
		}
		if len(row) > 0 {
			b.update(tPort, mp.uuid, row)
		}
	}

	// Multicast groups.
	if s.mcs[id] == nil {
		s.mcs[id] = map[string]*mMC{}
	}
	wantMC := map[string]*MulticastSpec{}
	for _, m := range out.mcs {
		wantMC[m.Name] = m
	}
	for name, mm := range s.mcs[id] {
		if wantMC[name] == nil {
			b.delete(tMC, mm.uuid)
			delete(s.mcs[id], name)
		}
	}
	for _, m := range out.mcs {
		mm := s.mcs[id][m.Name]
		ports := make([]string, 0, len(m.Ports))
		for _, pn := range m.Ports {
			if mp := s.ports[pn]; mp != nil {
				ports = append(ports, mp.uuid)
			}
		}
		if mm == nil {
			nm := &mMC{key: m.Key, ports: m.Ports}
			nm.uuid = b.insert(tMC, ovsdb.Row{
				"datapath": ovsdb.UUID{GoUUID: cur.uuid}, "name": m.Name, "tunnel_key": m.Key, "ports": uuidSet(ports...),
			}, func(u string) { nm.uuid = u })
			s.mcs[id][m.Name] = nm
			continue
		}
		if mm.key != m.Key || !sameStrings(mm.ports, m.Ports) || portsRecreated(s, m.Ports) {
			mm.key, mm.ports = m.Key, m.Ports
			b.update(tMC, mm.uuid, ovsdb.Row{"tunnel_key": m.Key, "ports": uuidSet(ports...)})
		}
	}
	return nil
}

// portsRecreated reports whether any of the named ports is being inserted
// in this transaction (its uuid is still a placeholder): the group's weak
// reference to the old row is gone, so the group must be rewritten.
func portsRecreated(s *SBState, names []string) bool {
	for _, n := range names {
		if mp := s.ports[n]; mp != nil && isPlaceholder(mp.uuid) {
			return true
		}
	}
	return false
}

func (s *SBState) portRow(p *PortBindingSpec) ovsdb.Row {
	ha := ""
	if g := s.haGroups[p.HAGroup]; g != nil && p.HAGroup != "" {
		ha = g.uuid
	}
	return ovsdb.Row{
		"type":             p.Type,
		"mac":              strSet(p.MAC),
		"options":          strMap(p.Options),
		"port_security":    strSet(p.PortSecurity),
		"parent_port":      optString(p.ParentPort),
		"tag":              optInt(p.Tag),
		"nat_addresses":    strSet(p.NATAddresses),
		"ha_chassis_group": uuidSet(ha),
	}
}

func samePort(a, b *PortBindingSpec) bool {
	if a.Type != b.Type || !sameStrings(a.MAC, b.MAC) || !sameStrings(a.PortSecurity, b.PortSecurity) ||
		!sameStrings(a.NATAddresses, b.NATAddresses) || a.HAGroup != b.HAGroup {
		return false
	}
	if (a.ParentPort == nil) != (b.ParentPort == nil) || (a.ParentPort != nil && *a.ParentPort != *b.ParentPort) {
		return false
	}
	if (a.Tag == nil) != (b.Tag == nil) || (a.Tag != nil && *a.Tag != *b.Tag) {
		return false
	}
	if len(a.Options) != len(b.Options) {
		return false
	}
	for k, v := range a.Options {
		if bv, ok := b.Options[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

func flowExt(f *Flow) map[string]string {
	m := map[string]string{ExtStageName: f.Stage.Name(), ExtSource: f.Source}
	if f.RefKey != "" {
		m[f.RefKey] = f.RefVal
	}
	return m
}

func (s *SBState) group(b *txb, dps []string) *mGroup {
	set := strings.Join(dps, ",")
	if g := s.groups[set]; g != nil {
		return g
	}
	g := &mGroup{set: set, dps: append([]string(nil), dps...)}
	ids := make([]string, 0, len(dps))
	for _, d := range dps {
		ids = append(ids, s.dps[d].uuid)
	}
	g.uuid = b.insert(tDPGroup, ovsdb.Row{"datapaths": uuidSet(ids...)}, func(u string) { g.uuid = u })
	s.groups[set] = g
	return g
}

func (s *SBState) syncFlow(b *txb, e *Engine, k flowKey) {
	d := e.desired[k]
	cur := s.flows[k]
	if d == nil {
		if cur != nil {
			b.delete(tFlow, cur.uuid)
			if cur.group != nil {
				cur.group.refs--
			}
			delete(s.flows, k)
			b.t.FlowsDeleted++
		}
		return
	}
	// Where the flow applies.
	var dp string
	var g *mGroup
	if len(d.dps) == 1 {
		dp = d.dps[0]
	} else {
		g = s.group(b, d.dps)
	}
	dpCol := func() (ovsdb.OvsSet, ovsdb.OvsSet) {
		if g != nil {
			return uuidSet(), uuidSet(g.uuid)
		}
		return uuidSet(s.dps[dp].uuid), uuidSet()
	}
	if cur == nil {
		ldp, lgrp := dpCol()
		nf := &mFlow{dp: dp, group: g, source: d.flow.Source, refKey: d.flow.RefKey, refVal: d.flow.RefVal}
		if g != nil {
			g.refs++
		}
		nf.uuid = b.insert(tFlow, ovsdb.Row{
			"logical_datapath": ldp,
			"logical_dp_group": lgrp,
			"pipeline":         k.stage.Pipeline().String(),
			"table_id":         k.stage.Table(),
			"priority":         int(k.priority),
			"match":            k.match,
			"actions":          k.actions,
			"external_ids":     strMap(flowExt(&d.flow)),
		}, func(u string) { nf.uuid = u })
		s.flows[k] = nf
		b.t.FlowsAdded++
		return
	}
	row := ovsdb.Row{}
	if cur.dp != dp || cur.group != g {
		ldp, lgrp := dpCol()
		row["logical_datapath"], row["logical_dp_group"] = ldp, lgrp
		if cur.group != nil {
			cur.group.refs--
		}
		if g != nil {
			g.refs++
		}
		cur.dp, cur.group = dp, g
	}
	if cur.source != d.flow.Source || cur.refKey != d.flow.RefKey || cur.refVal != d.flow.RefVal {
		row["external_ids"] = strMap(flowExt(&d.flow))
		cur.source, cur.refKey, cur.refVal = d.flow.Source, d.flow.RefKey, d.flow.RefVal
	}
	if len(row) > 0 {
		b.update(tFlow, cur.uuid, row)
		b.t.FlowsUpdated++
	}
}

// syncSets writes Port_Group ("<pg>" with all its ports and, as OVN 23.03
// does for ovn-controller, "<datapath key>_<pg>" with the ports on each
// switch) and Address_Set rows.
func (s *SBState) syncSets(b *txb, e *Engine) {
	pgs := map[string][]string{}
	for name, per := range e.PortGroups {
		var all []string
		for sw, ports := range per {
			all = append(all, ports...)
			if d := s.dps[sw]; d != nil {
				pgs[strconv.Itoa(d.key)+"_"+name] = ports
			}
		}
		sort.Strings(all)
		pgs[name] = all
	}
	syncNamed(b, tPortGroup, "ports", s.pgs, pgs)
	syncNamed(b, tAddrSet, "addresses", s.ases, e.AddressSets)
}

func syncNamed(b *txb, table, col string, cur map[string]*mSet, want map[string][]string) {
	for name, m := range cur {
		if _, ok := want[name]; !ok {
			b.delete(table, m.uuid)
			delete(cur, name)
		}
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		items := want[name]
		m := cur[name]
		if m == nil {
			nm := &mSet{items: items}
			nm.uuid = b.insert(table, ovsdb.Row{"name": name, col: strSet(items)}, func(u string) { nm.uuid = u })
			cur[name] = nm
			continue
		}
		if !sameStrings(m.items, items) {
			m.items = items
			b.update(table, m.uuid, ovsdb.Row{col: strSet(items)})
		}
	}
}

func (s *SBState) syncGlobal(b *txb, o SyncOptions) {
	opts := GlobalOptions(o.SvcMonitorMAC)
	if s.global == nil {
		g := &SBGlobal{NbCfg: o.NbCfg, Options: opts}
		s.global = g
		g.UUID = b.insert(tSBGlobal, ovsdb.Row{"nb_cfg": o.NbCfg, "options": strMap(opts)}, func(u string) { g.UUID = u })
		return
	}
	row := ovsdb.Row{}
	if s.global.NbCfg != o.NbCfg {
		row["nb_cfg"] = o.NbCfg
		s.global.NbCfg = o.NbCfg
	}
	merged := map[string]string{}
	for k, v := range s.global.Options {
		merged[k] = v
	}
	changed := false
	for k, v := range opts {
		if merged[k] != v {
			merged[k] = v
			changed = true
		}
	}
	if changed {
		row["options"] = strMap(merged)
		s.global.Options = merged
	}
	if len(row) > 0 {
		b.update(tSBGlobal, s.global.UUID, row)
	}
}

// dpExternalIDs are a datapath's external_ids: its NB row (logical-switch
// or logical-router) and name.
func dpExternalIDs(out *switchOut, id string) ovsdb.OvsMap {
	k := ExtLogicalSwitch
	if out.router {
		k = ExtLogicalRouter
	}
	return strMap(map[string]string{k: id, ExtName: out.name})
}

// syncLBs writes the SB Load_Balancer rows: one per NB load balancer used
// by a switch, with the switches in datapath_group as OVN 23.03 (a
// Logical_DP_Group shared with flows on the same switches; a switch's
// deletion moves the row to another group in the same transaction).
func (s *SBState) syncLBs(b *txb, e *Engine) {
	for id, m := range s.lbs {
		if e.LBs[id] == nil {
			b.delete(tLB, m.uuid)
			if m.group != nil {
				m.group.refs--
			}
			delete(s.lbs, id)
		}
	}
	ids := make([]string, 0, len(e.LBs))
	for id := range e.LBs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		want := e.LBs[id]
		m := s.lbs[id]
		if m != nil && !m.stale && sameLB(&m.spec, want) {
			continue
		}
		if m != nil && m.group != nil {
			m.group.refs--
		}
		var g *mGroup
		if len(want.Switches) > 0 {
			g = s.group(b, want.Switches)
			g.refs++
		}
		grp := uuidSet()
		if g != nil {
			grp = uuidSet(g.uuid)
		}
		row := ovsdb.Row{
			"name":           want.Name,
			"vips":           strMap(want.Vips),
			"protocol":       optString(nil),
			"datapaths":      uuidSet(),
			"datapath_group": grp,
			"options":        strMap(want.Options),
			"external_ids":   strMap(map[string]string{ExtLBID: id}),
		}
		if want.Protocol != "" {
			row["protocol"] = optString(&want.Protocol)
		}
		if m == nil {
			nm := &mLB{spec: *want, group: g}
			nm.uuid = b.insert(tLB, row, func(u string) { nm.uuid = u })
			s.lbs[id] = nm
			continue
		}
		m.spec, m.stale, m.group = *want, false, g
		b.update(tLB, m.uuid, row)
	}
}

func sameLB(a, b *LBSpec) bool {
	return a.Name == b.Name && a.Protocol == b.Protocol && sameStrings(a.Switches, b.Switches) &&
		sameMap(a.Vips, b.Vips) && sameMap(a.Options, b.Options)
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// syncHAGroups makes the SB HA_Chassis_Group rows (and their HA_Chassis)
// match the routers' distributed gateway ports; HA_Chassis.chassis points
// at the Chassis row of that name when one exists. Groups are few, so all
// are compared every sync (a chassis appearing fills in its references).
// It returns the wanted group names; deleteHAGroups removes the others.
func (s *SBState) syncHAGroups(b *txb, e *Engine, chassis map[string]string) map[string]bool {
	want := map[string]*HAGroupSpec{}
	for _, out := range e.sw {
		for _, g := range out.haGroups {
			if want[g.Name] == nil {
				want[g.Name] = g
			}
		}
	}
	names := make([]string, 0, len(want))
	for n := range want {
		names = append(names, n)
	}
	sort.Strings(names)
	wanted := make(map[string]bool, len(want))
	for _, name := range names {
		wanted[name] = true
		g := want[name]
		cur := s.haGroups[name]
		if cur == nil {
			cur = &mHAGroup{members: map[string]*mHAChassis{}}
			s.haGroups[name] = cur
			var ids []string
			for _, c := range g.Chassis {
				m := &mHAChassis{chassis: chassis[c.Chassis], priority: c.Priority}
				m.uuid = b.insert(tHAChassis, haChassisRow(c, m.chassis), func(u string) { m.uuid = u })
				cur.members[c.Chassis] = m
				ids = append(ids, m.uuid)
			}
			cur.uuid = b.insert(tHAGroup, ovsdb.Row{"name": name, "ha_chassis": uuidSet(ids...)}, func(u string) { cur.uuid = u })
			continue
		}
		members := map[string]*mHAChassis{}
		changed := len(cur.members) != len(g.Chassis)
		for _, c := range g.Chassis {
			m := cur.members[c.Chassis]
			ch := chassis[c.Chassis]
			if m == nil {
				m = &mHAChassis{chassis: ch, priority: c.Priority}
				m.uuid = b.insert(tHAChassis, haChassisRow(c, ch), func(u string) { m.uuid = u })
				changed = true
			} else if m.chassis != ch || m.priority != c.Priority {
				m.chassis, m.priority = ch, c.Priority
				b.update(tHAChassis, m.uuid, haChassisRow(c, ch))
			}
			members[c.Chassis] = m
		}
		if changed {
			ids := make([]string, 0, len(members))
			for _, c := range g.Chassis {
				ids = append(ids, members[c.Chassis].uuid)
			}
			// HA_Chassis rows left out are garbage-collected (not root).
			b.update(tHAGroup, cur.uuid, ovsdb.Row{"ha_chassis": uuidSet(ids...)})
		}
		cur.members = members
	}
	return wanted
}

func (s *SBState) deleteHAGroups(b *txb, wanted map[string]bool) {
	for name, g := range s.haGroups {
		if !wanted[name] {
			b.delete(tHAGroup, g.uuid)
			delete(s.haGroups, name)
		}
	}
}

func haChassisRow(c HAChassisSpec, chassisUUID string) ovsdb.Row {
	return ovsdb.Row{"chassis": uuidSet(chassisUUID), "priority": c.Priority,
		"external_ids": strMap(map[string]string{ExtChassisName: c.Chassis})}
}
