package ovs

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/govn/govn/controller/ovs/vswitchd"
)

// Owner tags (convention 6): rows we create carry these external_ids, and we
// only ever modify or delete rows that carry them.
const (
	OwnerKey      = "govn-owner"
	OwnerValue    = "govn-controller"
	TunnelPeerKey = "govn-chassis" // on a tunnel Port: the remote chassis name
	IfaceIDKey    = "iface-id"     // on an Interface: the logical port name
)

// VSwitch is a libovsdb client of the local Open_vSwitch database, monitoring
// the Open_vSwitch, Bridge, Port and Interface tables.
type VSwitch struct {
	c       client.Client
	log     *zap.Logger
	changes chan struct{}

	// gen counts cache changes; snapshots are reused while it stays.
	gen      atomic.Uint64
	snapMu   sync.Mutex
	snap     *snapshot
	snapG    uint64
	rebuilds atomic.Uint64 // snapshots built (tests)
}

// Connect connects to the Open_vSwitch database at endpoint (e.g.
// "unix:/var/run/openvswitch/db.sock") and waits for the initial monitor
// contents. It reconnects by itself if the connection drops.
func Connect(ctx context.Context, endpoint string, log *zap.Logger) (*VSwitch, error) {
	if log == nil {
		log = zap.NewNop()
	}
	dbModel, err := vswitchd.FullDatabaseModel()
	if err != nil {
		return nil, err
	}
	lr := newLogr(log.Named("libovsdb"))
	bo := backoff.NewExponentialBackOff()
	bo.MaxInterval = 2 * time.Second
	bo.MaxElapsedTime = 0
	c, err := client.NewOVSDBClient(dbModel,
		client.WithEndpoint(endpoint),
		client.WithLogger(&lr),
		client.WithReconnect(5*time.Second, bo))
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connect to Open_vSwitch database %s: %w", endpoint, err)
	}
	v := &VSwitch{c: c, log: log, changes: make(chan struct{}, 1)}
	notify := func() {
		v.gen.Add(1)
		select {
		case v.changes <- struct{}{}:
		default:
		}
	}
	c.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(string, model.Model) { notify() },
		UpdateFunc: func(string, model.Model, model.Model) { notify() },
		DeleteFunc: func(string, model.Model) { notify() },
	})
	if _, err := c.Monitor(ctx, c.NewMonitor(monitoredColumns()...)); err != nil {
		c.Close()
		return nil, fmt.Errorf("monitor Open_vSwitch database %s: %w", endpoint, err)
	}
	return v, nil
}

// Close disconnects.
func (v *VSwitch) Close() { v.c.Close() }

// Changes receives a value (coalesced) after any change to the monitored
// tables, including the ofport assignments ovs-vswitchd makes.
func (v *VSwitch) Changes() <-chan struct{} { return v.changes }

// monitoredColumns are the columns this client reads or writes: only
// those are monitored. ovs-vswitchd rewrites others all the time
// (Interface statistics every few seconds, link_state, mtu, status, ...);
// monitoring them woke the controller for nothing and kept their data in the
// cache.
func monitoredColumns() []client.MonitorOption {
	root, br, port, iface := &vswitchd.OpenvSwitch{}, &vswitchd.Bridge{}, &vswitchd.Port{}, &vswitchd.Interface{}
	return []client.MonitorOption{
		client.WithTable(root, &root.Bridges, &root.ExternalIDs),
		client.WithTable(br, &br.Name, &br.Ports, &br.FailMode, &br.DatapathType, &br.OtherConfig, &br.ExternalIDs),
		client.WithTable(port, &port.Name, &port.Interfaces, &port.ExternalIDs),
		client.WithTable(iface, &iface.Name, &iface.Type, &iface.Options, &iface.Ofport, &iface.ExternalIDs),
	}
}

// Config parses the chassis configuration from Open_vSwitch.external_ids.
func (v *VSwitch) Config(ctx context.Context) (Config, error) {
	st, err := v.snapshot(ctx)
	if err != nil {
		return Config{}, err
	}
	if st.root == nil {
		return Config{}, errNoRoot(st.roots)
	}
	return ParseConfig(st.root.ExternalIDs)
}

func errNoRoot(n int) error {
	return fmt.Errorf("Open_vSwitch table has %d rows, want 1 (run ovs-vsctl init?)", n)
}

func (v *VSwitch) transact(ctx context.Context, ops []ovsdb.Operation) error {
	// ovsdb-server sends a transaction's monitor updates before its reply
	// and libovsdb applies them to the cache in order, so the cache shows
	// our change when Transact returns; the change events that bump gen
	// are delivered asynchronously, though: drop the snapshot so that the
	// next read sees our own write.
	defer v.dropSnapshot()
	res, err := v.c.Transact(ctx, ops...)
	if err != nil {
		return err
	}
	if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		return err
	}
	return nil
}

// create returns insert operations for models of different tables.
func (v *VSwitch) create(models ...model.Model) ([]ovsdb.Operation, error) {
	var ops []ovsdb.Operation
	for _, m := range models {
		op, err := v.c.Create(m)
		if err != nil {
			return nil, err
		}
		ops = append(ops, op...)
	}
	return ops, nil
}

// EnsureBridge makes sure the integration bridge exists with fail_mode=secure,
// the configured datapath type and other_config:disable-in-band=true, in one
// transaction. An existing bridge is corrected in place (its other keys are
// kept). It reports whether it changed anything.
func (v *VSwitch) EnsureBridge(ctx context.Context, cfg Config) (bool, error) {
	if err := checkBridgeName(cfg.Bridge); err != nil {
		return false, err
	}
	secure := vswitchd.BridgeFailModeSecure
	st, err := v.snapshot(ctx)
	if err != nil {
		return false, err
	}
	cur := st.bridges[cfg.Bridge]
	if cur == nil {
		if st.root == nil {
			return false, errNoRoot(st.roots)
		}
		root := &vswitchd.OpenvSwitch{UUID: st.root.UUID}
		iface := &vswitchd.Interface{UUID: "gviface", Name: cfg.Bridge, Type: "internal"}
		port := &vswitchd.Port{UUID: "gvport", Name: cfg.Bridge, Interfaces: []string{iface.UUID}}
		nb := &vswitchd.Bridge{
			UUID:         "gvbridge",
			Name:         cfg.Bridge,
			FailMode:     &secure,
			DatapathType: cfg.DatapathType,
			OtherConfig:  map[string]string{"disable-in-band": "true"},
			ExternalIDs:  map[string]string{OwnerKey: OwnerValue},
			Ports:        []string{port.UUID},
		}
		ops, err := v.create(iface, port, nb)
		if err != nil {
			return false, err
		}
		mut, err := v.c.Where(root).Mutate(root, model.Mutation{
			Field: &root.Bridges, Mutator: ovsdb.MutateOperationInsert, Value: []string{nb.UUID},
		})
		if err != nil {
			return false, err
		}
		if err := v.transact(ctx, append(ops, mut...)); err != nil {
			return false, fmt.Errorf("create bridge %s: %w", cfg.Bridge, err)
		}
		v.log.Info("created integration bridge", zap.String("bridge", cfg.Bridge), zap.String("datapath_type", cfg.DatapathType))
		return true, nil
	}
	br := &vswitchd.Bridge{UUID: cur.UUID, FailMode: cur.FailMode, DatapathType: cur.DatapathType, OtherConfig: cur.OtherConfig}
	var fields []any
	if br.FailMode == nil || *br.FailMode != secure {
		br.FailMode = &secure
		fields = append(fields, &br.FailMode)
	}
	if br.DatapathType != cfg.DatapathType {
		br.DatapathType = cfg.DatapathType
		fields = append(fields, &br.DatapathType)
	}
	if br.OtherConfig["disable-in-band"] != "true" {
		oc := map[string]string{}
		for k, val := range br.OtherConfig {
			oc[k] = val
		}
		oc["disable-in-band"] = "true"
		br.OtherConfig = oc
		fields = append(fields, &br.OtherConfig)
	}
	if len(fields) == 0 {
		return false, nil
	}
	ops, err := v.c.Where(br).Update(br, fields...)
	if err != nil {
		return false, err
	}
	if err := v.transact(ctx, ops); err != nil {
		return false, fmt.Errorf("update bridge %s: %w", cfg.Bridge, err)
	}
	v.log.Info("corrected integration bridge settings", zap.String("bridge", cfg.Bridge))
	return true, nil
}

// Tunnel is a Geneve tunnel port to a remote chassis.
type Tunnel struct {
	Chassis  string     // remote chassis name (its system-id)
	RemoteIP netip.Addr // remote encap IP
	// Read back from the database (ignored in desired tunnels):
	Port   string // port/interface name, e.g. "ovn-ch2xyz-0"
	OFPort int    // 0 while unassigned, -1 if OVS failed to create it
}

func tunnelOptions(t Tunnel) map[string]string {
	return map[string]string{"remote_ip": t.RemoteIP.String(), "key": "flow", "csum": "true"}
}

// Tunnels returns our tunnel ports on bridge, sorted by chassis.
func (v *VSwitch) Tunnels(ctx context.Context, bridge string) ([]Tunnel, error) {
	st, err := v.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	ports, err := st.bridgePorts(bridge)
	if err != nil {
		return nil, err
	}
	var out []Tunnel
	for _, p := range ports {
		ch := p.ExternalIDs[TunnelPeerKey]
		if p.ExternalIDs[OwnerKey] != OwnerValue || ch == "" {
			continue
		}
		t := Tunnel{Chassis: ch, Port: p.Name}
		for _, iu := range p.Interfaces {
			if i, ok := st.ifaces[iu]; ok {
				t.RemoteIP, _ = netip.ParseAddr(i.Options["remote_ip"])
				if i.Ofport != nil {
					t.OFPort = *i.Ofport
				}
			}
		}
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Chassis < out[j].Chassis })
	return out, nil
}

// TunnelPorts maps remote chassis names to the OpenFlow port numbers of our
// tunnel ports on bridge (only ports OVS has assigned a number to).
func (v *VSwitch) TunnelPorts(ctx context.Context, bridge string) (map[string]int, error) {
	ts, err := v.Tunnels(ctx, bridge)
	if err != nil {
		return nil, err
	}
	m := map[string]int{}
	for _, t := range ts {
		if t.OFPort > 0 {
			m[t.Chassis] = t.OFPort
		}
	}
	return m, nil
}

// snapshot is a read-only view of the monitored tables made of the cache's
// own rows: libovsdb replaces a row's model on every update and never
// changes one in place, so building it copies no row (listing the tables
// through the client API cloned every row by a JSON round trip, on every
// controller run). Nothing may modify the rows or maps of a snapshot:
// changes are made on copies.
type snapshot struct {
	root    *vswitchd.OpenvSwitch          // nil unless exactly one row
	roots   int                            // number of Open_vSwitch rows
	bridges map[string]*vswitchd.Bridge    // by name
	ports   map[string]*vswitchd.Port      // by UUID
	ifaces  map[string]*vswitchd.Interface // by UUID
	names   map[string]bool                // every port and interface name
}

// bridgePorts returns the ports of the named bridge (ErrNoBridge if it does
// not exist).
func (s *snapshot) bridgePorts(bridge string) ([]*vswitchd.Port, error) {
	br := s.bridges[bridge]
	if br == nil {
		return nil, fmt.Errorf("bridge %s: %w", bridge, ErrNoBridge)
	}
	out := make([]*vswitchd.Port, 0, len(br.Ports))
	for _, u := range br.Ports {
		if p := s.ports[u]; p != nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// snapshot returns the current view. It is rebuilt only after the database
// changed.
func (v *VSwitch) snapshot(ctx context.Context) (*snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v.snapMu.Lock()
	defer v.snapMu.Unlock()
	g := v.gen.Load() // before reading: a later change forces a rebuild
	if v.snap != nil && v.snapG == g {
		return v.snap, nil
	}
	st, err := v.readSnapshot()
	if err != nil {
		return nil, err
	}
	v.snap, v.snapG = st, g
	v.rebuilds.Add(1)
	return st, nil
}

// bridge returns the named bridge's row as cached (read-only; nil if there
// is none).
func (v *VSwitch) bridge(ctx context.Context, name string) (*vswitchd.Bridge, error) {
	st, err := v.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return st.bridges[name], nil
}

func (v *VSwitch) dropSnapshot() {
	v.snapMu.Lock()
	v.snap = nil
	v.snapMu.Unlock()
}

// cacheRows returns the cache's rows of one table, by UUID.
func cacheRows[T any](c client.Client, table string) (map[string]*T, error) {
	tc := c.Cache()
	if tc == nil {
		return nil, errors.New("Open_vSwitch database cache not ready")
	}
	rc := tc.Table(table)
	if rc == nil {
		return nil, fmt.Errorf("table %s is not monitored", table)
	}
	rows := rc.RowsShallow()
	out := make(map[string]*T, len(rows))
	for u, m := range rows {
		if r, ok := m.(*T); ok {
			out[u] = r
		}
	}
	return out, nil
}

func (v *VSwitch) readSnapshot() (*snapshot, error) {
	roots, err := cacheRows[vswitchd.OpenvSwitch](v.c, vswitchd.OpenvSwitchTable)
	if err != nil {
		return nil, err
	}
	brs, err := cacheRows[vswitchd.Bridge](v.c, vswitchd.BridgeTable)
	if err != nil {
		return nil, err
	}
	ports, err := cacheRows[vswitchd.Port](v.c, vswitchd.PortTable)
	if err != nil {
		return nil, err
	}
	ifaces, err := cacheRows[vswitchd.Interface](v.c, vswitchd.InterfaceTable)
	if err != nil {
		return nil, err
	}
	st := &snapshot{roots: len(roots), bridges: make(map[string]*vswitchd.Bridge, len(brs)), ports: ports, ifaces: ifaces,
		names: make(map[string]bool, len(ports)+len(ifaces))}
	for _, r := range roots {
		if len(roots) == 1 {
			st.root = r
		}
	}
	for _, b := range brs {
		st.bridges[b.Name] = b
	}
	for _, p := range ports {
		st.names[p.Name] = true
	}
	for _, i := range ifaces {
		st.names[i.Name] = true
	}
	return st, nil
}

// TunnelPortName is the port name for a tunnel to chassis with collision
// index n: "ovn-" + the first 6 bytes of the chassis name + "-" + n.
func TunnelPortName(chassis string, n int) string {
	p := chassis
	if len(p) > 6 {
		p = p[:6]
	}
	return "ovn-" + p + "-" + strconv.Itoa(n)
}

// ReconcileTunnels makes our Geneve tunnel ports on bridge exactly the
// desired ones (type=geneve, options remote_ip, key=flow, csum=true), in one
// transaction: missing ports are created, changed remote IPs updated, ports
// to chassis no longer desired removed. Ports without our owner tag are
// never touched. It reports whether it changed anything.
func (v *VSwitch) ReconcileTunnels(ctx context.Context, bridge string, desired []Tunnel) (bool, error) {
	want := map[string]Tunnel{}
	for _, t := range desired {
		switch {
		case t.Chassis == "" || strings.ContainsAny(t.Chassis, " ,"):
			return false, fmt.Errorf("tunnel: invalid chassis name %q", t.Chassis)
		case !t.RemoteIP.IsValid():
			return false, fmt.Errorf("tunnel to %s: no remote IP", t.Chassis)
		}
		if old, ok := want[t.Chassis]; ok && old.RemoteIP != t.RemoteIP {
			return false, fmt.Errorf("tunnel to %s: two remote IPs %s and %s", t.Chassis, old.RemoteIP, t.RemoteIP)
		}
		want[t.Chassis] = t
	}
	st, err := v.snapshot(ctx)
	if err != nil {
		return false, err
	}
	ports, err := st.bridgePorts(bridge)
	if err != nil {
		return false, err
	}
	var ops []ovsdb.Operation
	var delPorts []string
	have := map[string]bool{}
	for _, p := range ports {
		ch := p.ExternalIDs[TunnelPeerKey]
		if p.ExternalIDs[OwnerKey] != OwnerValue || ch == "" {
			continue
		}
		t, ok := want[ch]
		if !ok || have[ch] || len(p.Interfaces) != 1 {
			delPorts = append(delPorts, p.UUID)
			continue
		}
		have[ch] = true
		cur, ok := st.ifaces[p.Interfaces[0]]
		if !ok {
			return false, fmt.Errorf("port %s: interface %s not in cache", p.Name, p.Interfaces[0])
		}
		opts := tunnelOptions(t)
		if cur.Type != EncapGeneve || !equalMaps(cur.Options, opts) {
			iface := &vswitchd.Interface{UUID: cur.UUID, Type: EncapGeneve, Options: opts}
			op, err := v.c.Where(iface).Update(iface, &iface.Type, &iface.Options)
			if err != nil {
				return false, err
			}
			ops = append(ops, op...)
		}
	}
	var newPorts []string
	chassis := make([]string, 0, len(want))
	for ch := range want {
		chassis = append(chassis, ch)
	}
	sort.Strings(chassis)
	taken := map[string]bool{} // names given to new ports here
	for i, ch := range chassis {
		if have[ch] {
			continue
		}
		t := want[ch]
		name := ""
		for n := 0; ; n++ {
			name = TunnelPortName(ch, n)
			if !st.names[name] && !taken[name] {
				break
			}
		}
		taken[name] = true
		iface := &vswitchd.Interface{UUID: fmt.Sprintf("gvtuni%d", i), Name: name, Type: EncapGeneve, Options: tunnelOptions(t)}
		port := &vswitchd.Port{
			UUID: fmt.Sprintf("gvtunp%d", i), Name: name, Interfaces: []string{iface.UUID},
			ExternalIDs: map[string]string{OwnerKey: OwnerValue, TunnelPeerKey: ch},
		}
		op, err := v.create(iface, port)
		if err != nil {
			return false, err
		}
		ops = append(ops, op...)
		newPorts = append(newPorts, port.UUID)
	}
	br := &vswitchd.Bridge{UUID: st.bridges[bridge].UUID}
	if len(newPorts) > 0 {
		op, err := v.c.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationInsert, Value: newPorts})
		if err != nil {
			return false, err
		}
		ops = append(ops, op...)
	}
	if len(delPorts) > 0 {
		op, err := v.c.Where(br).Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationDelete, Value: delPorts})
		if err != nil {
			return false, err
		}
		ops = append(ops, op...)
	}
	if len(ops) == 0 {
		return false, nil
	}
	if err := v.transact(ctx, ops); err != nil {
		return false, fmt.Errorf("reconcile tunnels on %s: %w", bridge, err)
	}
	v.log.Info("reconciled tunnel ports", zap.String("bridge", bridge),
		zap.Int("added", len(newPorts)), zap.Int("removed", len(delPorts)))
	return true, nil
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// VIF is an interface on the integration bridge bound to a logical port by
// external_ids:iface-id.
type VIF struct {
	IfaceID string // logical port name
	Name    string // interface name
	OFPort  int    // 0 while unassigned, -1 if OVS failed to open it
	MAC     string // external_ids:attached-mac, if set
}

// VIFs returns the interfaces on bridge with an iface-id, sorted by iface-id.
func (v *VSwitch) VIFs(ctx context.Context, bridge string) ([]VIF, error) {
	st, err := v.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	ports, err := st.bridgePorts(bridge)
	if err != nil {
		return nil, err
	}
	var out []VIF
	for _, p := range ports {
		for _, iu := range p.Interfaces {
			i, ok := st.ifaces[iu]
			if !ok || i.ExternalIDs[IfaceIDKey] == "" {
				continue
			}
			vif := VIF{IfaceID: i.ExternalIDs[IfaceIDKey], Name: i.Name, MAC: i.ExternalIDs["attached-mac"]}
			if i.Ofport != nil {
				vif.OFPort = *i.Ofport
			}
			out = append(out, vif)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].IfaceID < out[j].IfaceID || out[i].IfaceID == out[j].IfaceID && out[i].Name < out[j].Name
	})
	return out, nil
}

// ErrNoBridge is returned when the integration bridge is missing.
var ErrNoBridge = errors.New("integration bridge missing")

// InstalledKey is set to "true" on a VIF's Interface external_ids once its
// flows are installed (OVN's "ovn-installed": CNI plugins wait for it).
const InstalledKey = "ovn-installed"

// MarkVIFInstalled sets (installed) or removes external_ids:ovn-installed on
// the interface, touching no other key. It reports whether it changed
// anything.
func (v *VSwitch) MarkVIFInstalled(ctx context.Context, iface string, installed bool) (bool, error) {
	st, err := v.snapshot(ctx)
	if err != nil {
		return false, err
	}
	var i *vswitchd.Interface
	for _, r := range st.ifaces {
		if r.Name == iface {
			i = &vswitchd.Interface{UUID: r.UUID, ExternalIDs: r.ExternalIDs}
			break
		}
	}
	if i == nil {
		return false, fmt.Errorf("interface %s not found", iface)
	}
	has := i.ExternalIDs[InstalledKey] == "true"
	if has == installed {
		return false, nil
	}
	var mut model.Mutation
	if installed {
		// Delete any other value first, then insert (a map insert does not
		// overwrite an existing key).
		del, err := v.c.Where(i).Mutate(i, model.Mutation{Field: &i.ExternalIDs, Mutator: ovsdb.MutateOperationDelete, Value: []string{InstalledKey}})
		if err != nil {
			return false, err
		}
		mut = model.Mutation{Field: &i.ExternalIDs, Mutator: ovsdb.MutateOperationInsert, Value: map[string]string{InstalledKey: "true"}}
		ins, err := v.c.Where(i).Mutate(i, mut)
		if err != nil {
			return false, err
		}
		return true, v.transact(ctx, append(del, ins...))
	}
	mut = model.Mutation{Field: &i.ExternalIDs, Mutator: ovsdb.MutateOperationDelete, Value: []string{InstalledKey}}
	ops, err := v.c.Where(i).Mutate(i, mut)
	if err != nil {
		return false, err
	}
	return true, v.transact(ctx, ops)
}
