package run

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/govn/govn/controller"
	"github.com/govn/govn/controller/binding"
	"github.com/govn/govn/controller/ofctrl"
	"github.com/govn/govn/controller/ovs"
	"github.com/govn/govn/controller/physical"
	"github.com/govn/govn/controller/translate"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/sbdb"
)

// Controller is one running govn controller.
type Controller struct {
	o   Options
	log *zap.Logger

	vs     *ovs.VSwitch
	ext    *extIDsReader
	cfg    ovs.Config
	sb     *ovsdbclient.Client
	spec   monitorSpec
	names  *ovsdbclient.Client // Port_Bindings of local iface-ids
	nameSp []string
	of     *ovs.OpenFlow
	tr     *translate.Translator
	zones  map[string]uint16
	zonesR bool // zones recovered from the installed flows

	chassisUUID string
	wake        chan struct{}
	m           *metrics
	h           *health
	metricsAddr net.Addr
	ready       chan struct{} // closed after the first successful install
	readyOnce   bool
	ackedCfg    int
	lastErrs    map[string]bool
	sbCfg       *atomic.Int64 // SB_Global.nb_cfg of the main client's last handled event
	namesCfg    *atomic.Int64 // the same for the names client
	runs        atomic.Int64
	keep        atomic.Bool
	flowMods    atomic.Int64

	// Skipping work when nothing it depends on changed:
	lflowGen   atomic.Uint64 // bumped by SB changes that affect translation
	forceSync  atomic.Bool   // the periodic resync: always Sync
	fullReq    atomic.Uint64 // ForceRecompute requests: drop the caches, recompute everything
	fullDone   uint64        // fullReq value the last completed full recompute served
	lastTrGen  uint64
	lastTrSig  trSig
	lastOut    *translate.Output
	lastPhys   []ofctrl.Flow
	lastSynced bool
	dpGen      atomic.Uint64                // bumped by Datapath_Binding / Logical_DP_Group changes
	lfRows     map[string]*sbdb.LogicalFlow // the rows translated last, by UUID
	lfDPGen    uint64
	lfClient   *ovsdbclient.Client
	flowBuf    []ofctrl.Flow // the desired flows of the last sync
	portsBuf   []physical.Port
	ports      portIndex                         // the Port_Binding maps of the snapshots
	mcNames    map[*sbdb.MulticastGroup][]string // member names of unchanged Multicast_Group rows

	// Packet-ins (put_arp, arp{}, icmp4_error{}, ...): see pinctrl.go.
	mgmtSock string
	pin      *pinctrlRunner
	keys     keyResolver
}

// translationTables are the southbound tables whose changes can change the
// logical flows' translation.
var translationTables = map[string]bool{
	sbdb.LogicalFlowTable: true, sbdb.PortBindingTable: true, sbdb.MulticastGroupTable: true,
	sbdb.AddressSetTable: true, sbdb.PortGroupTable: true, sbdb.DatapathBindingTable: true,
	sbdb.LogicalDPGroupTable: true,
	// (SB_Global too: see ackIfCaughtUp.)
	sbdb.SBGlobalTable: true,
}

// FlowMods is the number of flow additions, modifications and deletions
// this controller has applied to the bridge.
func (c *Controller) FlowMods() int64 { return c.flowMods.Load() }

// KeepOnExit makes the coming exit keep the registration (a restart).
func (c *Controller) KeepOnExit() { c.keep.Store(true) }

// ForceRecompute makes the next run drop the translation caches and
// recompute every logical and physical flow, then sync OpenFlow (which
// changes nothing if nothing changed). SIGHUP calls it. The run counts in
// govn_controller_recompute_total{type="full"}.
func (c *Controller) ForceRecompute() {
	c.fullReq.Add(1)
	c.poke()
}

// New prepares a controller; Run starts it.
func New(o Options) *Controller {
	if o.Log == nil {
		o.Log = zap.NewNop()
	}
	if o.OVS == "" {
		o.OVS = DefaultOVS()
	}
	if o.Resync == 0 {
		o.Resync = 30 * time.Second
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	return &Controller{
		o: o, log: o.Log, tr: translate.New(), zones: map[string]uint16{},
		wake: make(chan struct{}, 1), m: newMetrics(), h: &health{}, ready: make(chan struct{}),
		ackedCfg: -1, lastErrs: map[string]bool{},
	}
}

// Ready is closed once flows have been installed for the first time.
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// MetricsAddr is the address /metrics is served on (nil if disabled or not
// started yet).
func (c *Controller) MetricsAddr() net.Addr { return c.metricsAddr }

// ChassisUUID is our Chassis row's UUID once registered.
func (c *Controller) ChassisUUID() string { return c.chassisUUID }

func (c *Controller) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Run runs the controller until ctx ends. On the way out it removes the
// chassis registration and releases its ports unless Options.KeepOnExit.
func (c *Controller) Run(ctx context.Context) error {
	tuneGC()
	if c.o.MetricsAddr != "" {
		a, err := serveMetrics(ctx, c.o.MetricsAddr, c.m, c.h, c.log)
		if err != nil {
			return fmt.Errorf("--metrics-addr %s: %w", c.o.MetricsAddr, err)
		}
		c.metricsAddr = a
		c.log.Info("serving metrics and health", zap.Stringer("addr", a))
	}
	vs, err := ovs.Connect(ctx, c.o.OVS, c.log.Named("vswitch"))
	if err != nil {
		return err
	}
	c.vs = vs
	defer vs.Close()
	ext, err := newExtIDsReader(ctx, c.o.OVS)
	if err != nil {
		return err
	}
	c.ext = ext
	defer ext.close()
	defer c.stopPinctrl()
	defer func() {
		if c.sb != nil {
			c.sb.Close()
		}
		if c.names != nil {
			c.names.Close()
		}
	}()

	resync := time.NewTicker(c.o.Resync)
	defer resync.Stop()
	var retry <-chan time.Time
	backoff := 100 * time.Millisecond
	c.poke()
	for {
		select {
		case <-ctx.Done():
			return c.shutdown()
		case <-c.wake:
		case <-vs.Changes():
		case <-resync.C:
			c.forceSync.Store(true)
		case <-retry:
		}
		retry = nil
		err := c.reconcile(ctx)
		if ctx.Err() != nil {
			return c.shutdown()
		}
		c.h.set(err)
		if err != nil {
			c.log.Warn("reconcile failed; retrying", zap.Error(err), zap.Duration("in", backoff))
			retry = time.After(backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
	}
}

// errPending means the reconcile made a change whose effect must be seen
// before going on (the loop was woken again).
var errPending = errors.New("pending")

func (c *Controller) reconcile(ctx context.Context) error {
	c.runs.Add(1)
	start := time.Now()
	fullReq := c.fullReq.Load()
	full := fullReq != c.fullDone
	if full {
		// Until a full run completes, every attempt starts from scratch.
		c.tr = translate.New()
		c.lfRows, c.lastOut, c.lastPhys, c.lastSynced = nil, nil, nil, false
		c.mcNames, c.ports = nil, portIndex{}
		c.forceSync.Store(true)
	}
	ext, err := c.vsConfig(ctx)
	if err != nil {
		return err
	}
	cfg, err := mergeConfig(ext, &c.o)
	if err != nil {
		return fmt.Errorf("chassis configuration: %w", err)
	}
	if c.sb != nil && !slices.Equal(cfg.Remotes, c.cfg.Remotes) {
		c.log.Info("southbound remote changed; reconnecting", zap.Strings("remotes", cfg.Remotes))
		c.sb.Close()
		c.sb = nil
		if c.names != nil {
			c.names.Close()
			c.names, c.nameSp = nil, nil
		}
	}
	if c.cfg.Bridge != cfg.Bridge || c.of == nil {
		dir, err := (&Options{RunDir: c.o.RunDir, OVS: c.o.OVS, Bridge: cfg.Bridge}).runDir()
		if err != nil {
			return err
		}
		c.mgmtSock = filepath.Join(dir, cfg.Bridge+".mgmt")
		of, err := ovs.NewOpenFlow(c.mgmtSock, ofctrl.DefaultOwner, c.log.Named("openflow"))
		if err != nil {
			return err
		}
		if c.of != nil {
			c.of.Close()
		}
		of.SetMetrics(c.m.openflow)
		of.SetTLVMaps(ofctrl.TLVMap{Class: controller.GeneveOptionClass, Type: controller.GeneveOptionType,
			Len: controller.GeneveOptionLen, Field: "tun_metadata0"})
		c.of, c.zonesR = of, false
	}
	c.cfg = cfg
	if changed, err := c.vs.EnsureBridge(ctx, cfg); err != nil {
		return err
	} else if changed {
		c.of.Invalidate()
	}
	vifs, err := c.vs.VIFs(ctx, cfg.Bridge)
	if err != nil {
		return err
	}
	ifaces := map[string]bool{}
	ofports := map[string]uint32{}
	for _, v := range vifs {
		ready := v.OFPort > 0
		ifaces[v.IfaceID] = ifaces[v.IfaceID] || ready
		if ready {
			if _, dup := ofports[v.IfaceID]; !dup {
				ofports[v.IfaceID] = uint32(v.OFPort)
			}
		}
	}

	if c.sb == nil {
		if err := c.connect(ctx, monitorSpec{all: !c.o.Conditional}); err != nil {
			return err
		}
	}
	if names := sortedUnique(keys(ifaces)); c.o.Conditional && (c.names == nil || !slices.Equal(names, c.nameSp)) {
		if c.names != nil {
			c.names.Close()
			c.names = nil
		}
		nc, cfg, err := connectNames(ctx, c.cfg.Remotes, names, c.log.Named("sb-ports"), c.sbEvent)
		if err != nil {
			return fmt.Errorf("southbound %v: %w", c.cfg.Remotes, err)
		}
		c.names, c.nameSp, c.namesCfg = nc, names, cfg
		c.lflowGen.Add(1) // its rows may not have been announced by events
	}
	if !c.sb.Connected() || (c.names != nil && !c.names.Connected()) {
		return errors.New("southbound database disconnected (reconnecting); flows left as they are")
	}
	c.ensurePinctrl(ctx, c.mgmtSock, cfg.Remotes)
	var steps []zap.Field // step timings, logged at debug level with the install
	lap := func(name string) { steps = append(steps, zap.Duration(name, time.Since(start))) }
	lap("prepare")
	c.awaitNames(ctx)
	lap("await-names")
	// How far each client's events have been handled, before trGen (an
	// SB_Global event bumps lflowGen before it is recorded).
	ev := evCfgs{main: c.sbCfg.Load(), names: -1}
	if c.names != nil {
		ev.names = c.namesCfg.Load()
	}
	trGen := c.lflowGen.Load() // before the snapshot: later changes redo the work
	// The logical flows are read only when a southbound change may have
	// changed them; otherwise the translator holds them already.
	snap := takeSnapshot(c.sb, trGen != c.lastTrGen || c.lastOut == nil || c.lfRows == nil, &c.ports)
	snap.mergeNamed(c.names)
	lap("snapshot")
	if err := c.registerChassis(ctx, snap); err != nil {
		if errors.Is(err, errPending) {
			return nil
		}
		return err
	}
	me := snap.chassisByNm[cfg.SystemID]

	// Bindings.
	bin := &binding.Input{Chassis: cfg.SystemID, Hostname: c.o.Hostname, Ifaces: ifaces, LiveChassis: map[string]bool{}}
	for name := range snap.chassisByNm {
		bin.LiveChassis[name] = true
	}
	gateways := snap.gatewayChassis(bin.LiveChassis)
	for _, pb := range snap.ports {
		// Decide only looks at gateway ports, and at VIF ports that have
		// a local interface or are bound here.
		switch pb.Type {
		case binding.TypeL3Gateway, binding.TypeChassisRedirect:
		case "":
			if _, ok := ifaces[pb.LogicalPort]; !ok && (pb.Chassis == nil || *pb.Chassis != me.UUID) {
				continue
			}
		default:
			continue
		}
		p := binding.Port{UUID: pb.UUID, LogicalPort: pb.LogicalPort, Type: pb.Type, Up: pb.Up != nil && *pb.Up}
		if pb.Chassis != nil {
			if ch, ok := snap.chassis[*pb.Chassis]; ok {
				p.Chassis = ch.Name
			}
		}
		if pb.RequestedChassis != nil {
			if ch, ok := snap.chassis[*pb.RequestedChassis]; ok {
				p.RequestedChassis = ch.Name
			}
		} else if rc := pb.Options["requested-chassis"]; rc != "" {
			p.RequestedChassis = rc
		}
		p.GatewayChassis = gateways[pb.LogicalPort]
		bin.Ports = append(bin.Ports, p)
	}
	dec := binding.Decide(bin)
	for _, cf := range dec.Conflicts {
		if !c.lastErrs["conflict/"+cf.LogicalPort] {
			c.log.Warn("port binding conflict", zap.String("port", cf.LogicalPort), zap.String("holder", cf.Holder),
				zap.String("resolution", cf.String()))
			c.lastErrs["conflict/"+cf.LogicalPort] = true
			c.m.conflicts.Inc()
		}
	}
	lap("snapshot+binding")
	if err := c.applyBindings(ctx, dec, me.UUID); err != nil {
		return err
	}

	// Tunnels to every other chassis with a Geneve encap.
	var tunnels []ovs.Tunnel
	for _, ch := range snap.chassis {
		if ch.Name == cfg.SystemID {
			continue
		}
		for _, eu := range ch.Encaps {
			e, ok := snap.encaps[eu]
			if !ok || e.Type != sbdb.EncapTypeGeneve {
				continue
			}
			ip, ok := parseIP(e.IP)
			if !ok {
				continue
			}
			tunnels = append(tunnels, ovs.Tunnel{Chassis: ch.Name, RemoteIP: ip})
			break
		}
	}
	if _, err := c.vs.ReconcileTunnels(ctx, cfg.Bridge, tunnels); err != nil {
		return err
	}
	lap("claims")
	tunPorts, err := c.vs.TunnelPorts(ctx, cfg.Bridge)
	if err != nil {
		return err
	}

	// Physical view: ports with the chassis they are (being) bound to.
	in := &physical.Input{Chassis: cfg.SystemID, VIFs: ofports, Tunnels: map[string]uint32{}}
	for ch, p := range tunPorts {
		in.Tunnels[ch] = uint32(p)
	}
	dpKey := func(uuid string) (uint32, bool) {
		dp, ok := snap.datapaths[uuid]
		if !ok {
			return 0, false
		}
		return uint32(dp.TunnelKey), true
	}
	// (in lives for this run only: its port list reuses the last run's.)
	in.Ports = slices.Grow(c.portsBuf[:0], len(snap.ports))
	defer func() { c.portsBuf = in.Ports[:0] }()
	for _, pb := range snap.ports {
		dk, ok := dpKey(pb.Datapath)
		if !ok {
			continue
		}
		p := physical.Port{Name: pb.LogicalPort, Datapath: dk, Key: uint32(pb.TunnelKey), Type: pb.Type, Peer: pb.Options["peer"]}
		switch pb.Type {
		case physical.TypeLocalnet:
			if pb.Tag != nil && *pb.Tag > 0 && *pb.Tag < 4096 {
				p.Tag = uint16(*pb.Tag)
			}
		case physical.TypeL3Gateway:
			p.GatewayChassis = gateways[pb.LogicalPort]
		case physical.TypeChassisRedirect:
			p.DistributedPort = pb.Options["distributed-port"]
			// The active gateway, as every chassis computes it (the
			// Port_Binding's chassis column follows it).
			p.Chassis = gateways[pb.LogicalPort]
			in.Ports = append(in.Ports, p)
			continue
		}
		switch {
		case dec.Bound[pb.LogicalPort]:
			p.Chassis = cfg.SystemID
		case pb.Chassis != nil:
			if ch, ok := snap.chassis[*pb.Chassis]; ok && ch.Name != cfg.SystemID {
				p.Chassis = ch.Name
			}
		}
		in.Ports = append(in.Ports, p)
	}
	local := physical.LocalDatapaths(in)
	// Localnet ports of the local datapaths whose network is mapped here:
	// a patch-port pair to the provider bridge each.
	var patches []ovs.LocalnetPatch
	for _, p := range in.Ports {
		if p.Type != physical.TypeLocalnet || !local[p.Datapath] {
			continue
		}
		pb := snap.portsByName[p.Name]
		if br := cfg.BridgeMappings[pb.Options["network_name"]]; br != "" && pb.Options["network_name"] != "" {
			patches = append(patches, ovs.LocalnetPatch{LogicalPort: p.Name, Bridge: br})
		}
	}
	lnPorts, missing, lnChanged, err := c.vs.ReconcileLocalnet(ctx, cfg.Bridge, patches)
	if err != nil {
		return err
	}
	if lnChanged {
		return nil // ovs-vswitchd assigns the ofports; its change wakes us
	}
	for _, lp := range missing {
		if k := "localnet-bridge/" + lp; !c.lastErrs[k] {
			c.lastErrs[k] = true
			c.log.Warn("provider bridge of a localnet port does not exist", zap.String("port", lp),
				zap.String("network", snap.portsByName[lp].Options["network_name"]))
		}
	}
	in.Localnet = map[string]uint32{}
	for lp, ofp := range lnPorts {
		in.Localnet[lp] = uint32(ofp)
	}
	km := &keyMaps{dps: map[uint32]string{}, ports: make(map[[2]uint32]string, len(in.Ports))}
	for uuid, dp := range snap.datapaths {
		if k := uint32(dp.TunnelKey); local[k] {
			km.dps[k] = uuid
		}
	}
	for _, p := range in.Ports {
		if local[p.Datapath] {
			km.ports[[2]uint32{p.Datapath, p.Key}] = p.Name
		}
	}
	c.keys.v.Store(km)

	// Conditional monitoring: follow the local datapaths.
	if c.o.Conditional {
		want := c.wantSpec(snap, local, me.UUID)
		if !want.equal(c.spec) {
			c.log.Info("changing southbound monitor conditions", zap.Stringer("from", c.spec), zap.Stringer("to", want))
			c.m.monitorChanges.Inc()
			c.sb.Close()
			c.sb = nil
			if err := c.connect(ctx, want); err != nil {
				return err
			}
			c.poke()
			return nil
		}
	}

	// Zones: keep the ones installed flows use (restart), give new ports
	// new ones.
	if !c.zonesR {
		byKey := map[uint32]string{}
		for uuid, dp := range snap.datapaths {
			byKey[uint32(dp.TunnelKey)] = uuid
		}
		of := map[string]uint32{}
		maps.Copy(of, ofports)
		maps.Copy(of, in.Localnet)
		if err := c.recoverZones(ctx, of, byKey); err != nil {
			return err
		}
		c.zonesR = true
	}
	var localNames []string
	for _, p := range in.Ports {
		_, vif := in.Local(&p)
		_, ln := in.LocalnetPort(&p)
		if vif || ln {
			localNames = append(localNames, p.Name)
		}
	}
	// Every local datapath has a DNAT and a SNAT zone, named like OVN's
	// (<datapath UUID>_dnat, _snat) in the same zone space as the ports.
	for k := range local {
		if uuid, ok := km.dps[k]; ok {
			localNames = append(localNames, uuid+dnatSuffix, uuid+snatSuffix)
		}
	}
	zones, err := physical.AssignZones(localNames, c.zones)
	if err != nil {
		return err
	}
	c.zones, in.Zones = zones, zones
	in.DPZones = map[uint32]physical.DPZones{}
	for k, uuid := range km.dps {
		in.DPZones[k] = physical.DPZones{DNAT: zones[uuid+dnatSuffix], SNAT: zones[uuid+snatSuffix]}
	}
	in.LoadBalancers = c.loadBalancers(snap, local, dpKey)

	// Member name lists are kept between runs (by row model) and reused
	// while they come out the same.
	mcNames := make(map[*sbdb.MulticastGroup][]string, len(c.mcNames))
	defer func() { c.mcNames = mcNames }()
	for _, g := range snap.groups {
		dk, ok := dpKey(g.Datapath)
		if !ok || !local[dk] {
			continue
		}
		mg := physical.MulticastGroup{Datapath: dk, Key: uint32(g.TunnelKey), Name: g.Name}
		mg.Ports = c.mcNames[g]
		n, fresh := 0, false
		for _, pu := range g.Ports {
			pb, ok := snap.ports[pu]
			switch {
			case !ok:
				continue
			case fresh:
				mg.Ports = append(mg.Ports, pb.LogicalPort)
			case n < len(mg.Ports) && mg.Ports[n] == pb.LogicalPort:
			default:
				// Differs from the last run's list: continue in a new one.
				mg.Ports = append(slices.Clip(mg.Ports[:n]), pb.LogicalPort)
				fresh = true
			}
			n++
		}
		mg.Ports = mg.Ports[:n]
		mcNames[g] = mg.Ports // (shared between runs: read only)
		in.Groups = append(in.Groups, mg)
	}
	for _, mb := range snap.macBindings {
		dk, ok := dpKey(mb.Datapath)
		pb, pok := snap.portsByName[mb.LogicalPort]
		if pok {
			_, pok = dpKey(pb.Datapath) // (a port of in.Ports)
		}
		ip, iok := parseIP(mb.IP)
		mac, mok := parseMAC(mb.MAC)
		if ok && pok && iok && mok && local[dk] {
			in.MACBindings = append(in.MACBindings, physical.MACBinding{Datapath: dk, Port: uint32(pb.TunnelKey), IP: ip, MAC: mac})
		}
	}

	for _, f := range snap.fdbs {
		mac, ok := parseMAC(f.MAC)
		if ok && local[uint32(f.DpKey)] {
			in.FDBs = append(in.FDBs, physical.FDB{Datapath: uint32(f.DpKey), Port: uint32(f.PortKey), MAC: mac})
		}
	}

	// Logical flows of the local datapaths.
	env := &translate.Env{Datapaths: map[uint32]*translate.Datapath{}, AddressSets: snap.addressSets,
		PortGroups: snap.portGroups, Resident: dec.Bound, RemoteVIFs: make(map[string]bool, len(snap.ports))}
	for _, pb := range snap.ports {
		if pb.Type == "" && pb.ParentPort == nil && !dec.Bound[pb.LogicalPort] {
			env.RemoteVIFs[pb.LogicalPort] = true
		}
	}
	for _, dp := range snap.datapaths {
		k := uint32(dp.TunnelKey)
		if !local[k] {
			continue
		}
		_, router := dp.ExternalIDs["logical-router"]
		env.Datapaths[k] = &translate.Datapath{Key: k, Router: router, Ports: map[string]uint32{}}
	}
	for _, p := range in.Ports {
		if d, ok := env.Datapaths[p.Datapath]; ok {
			d.Ports[p.Name] = p.Key
		}
	}
	for _, g := range in.Groups {
		if d, ok := env.Datapaths[g.Datapath]; ok {
			d.Ports[g.Name] = g.Key
		}
	}
	lap("physical-input")
	// Translate only if something it depends on changed.
	out := c.lastOut
	retranslated := false
	if sig := (trSig{local: local, bound: dec.Bound, remote: env.RemoteVIFs}); out == nil || trGen != c.lastTrGen || !sig.equal(c.lastTrSig) {
		retranslated = true
		if snap.lfs != nil {
			out = c.translate(snap, env, dpKey)
		} else {
			out = c.tr.Update(nil, nil, env) // only the local view changed
		}
		c.lastOut, c.lastTrGen, c.lastTrSig = out, trGen, sig
		c.reportErrors(out.Errors)
	}
	lap("translate")
	phys := physical.Flows(in)
	physText := make([]ofctrl.Flow, len(phys))
	for i := range phys {
		physText[i] = translate.OFText(&phys[i])
	}
	if !retranslated && c.lastSynced && slices.Equal(physText, c.lastPhys) && !c.forceSync.Load() {
		// Nothing to install: the desired flows are the ones synced last
		// (and nothing was translated afresh).
		return c.ackIfCaughtUp(ctx, snap, ev, false)
	}
	c.forceSync.Store(false)
	// (Sync keeps no reference to the slice: one buffer serves every run.)
	flows := append(c.flowBuf[:0], physText...)
	flows = append(flows, out.Flows...)
	c.flowBuf = flows
	computed := time.Now()
	c.m.computeSeconds.Observe(computed.Sub(start).Seconds())
	c.m.logicalFlows.Set(float64(out.Compiled + out.Reused))
	c.m.lflowErrors.Set(float64(len(out.Errors)))
	c.m.desiredFlows.Set(float64(len(flows)))
	c.m.localPorts.Set(float64(len(dec.Bound)))
	c.m.localDatapaths.Set(float64(len(local)))

	c.lastSynced = false
	res, err := c.of.Sync(ctx, flows, out.Groups)
	if err != nil {
		return fmt.Errorf("install flows: %w", err)
	}
	c.lastSynced, c.lastPhys = true, physText
	c.m.installSeconds.Observe(time.Since(computed).Seconds())
	kind := "incremental"
	if full {
		kind = "full"
		c.fullDone = fullReq
	}
	c.m.recomputes.WithLabelValues(kind).Inc()
	c.m.lastRecompute.WithLabelValues(kind).Set(time.Since(start).Seconds())
	c.flowMods.Add(int64(len(res.Diff.AddFlows) + len(res.Diff.ModFlows) + len(res.Diff.ReplFlows) + len(res.Diff.DelFlows)))
	for _, r := range res.Rejected {
		c.log.Warn("OVS rejected a flow", zap.Error(r))
	}
	if !res.Diff.Empty() {
		c.log.Debug("flows installed", append(steps, zap.Stringer("diff", res.Diff), zap.Int("flows", len(flows)),
			zap.Duration("compute", computed.Sub(start)), zap.Duration("install", time.Since(computed)),
			zap.Int("compiled", out.Compiled), zap.Int("reused", out.Reused))...)
	}
	if !c.readyOnce {
		c.readyOnce = true
		close(c.ready)
		c.log.Info("flows installed", zap.Int("flows", len(flows)), zap.Int("groups", len(out.Groups)),
			zap.Int("logical_flows", out.Compiled+out.Reused), zap.Int("lflow_errors", len(out.Errors)),
			zap.Int("local_datapaths", len(local)), zap.Int("local_ports", len(dec.Bound)),
			zap.Duration("compute", computed.Sub(start)), zap.Duration("install", time.Since(computed)))
	}
	if out.Compiled >= bigChange {
		releaseMemory()
	}
	// Flows for everything in snap are installed: acknowledge its nb_cfg.
	return c.ackIfCaughtUp(ctx, snap, ev, retranslated && snap.lfs != nil)
}

// evCfgs are the SB_Global.nb_cfg values the two clients' events had
// delivered when a run started (-1: none).
type evCfgs struct{ main, names int64 }

// ackIfCaughtUp acknowledges the snapshot's nb_cfg. A run that read the
// logical flows from the cache and translated them (fresh) installed
// everything its snapshot holds. Otherwise it skipped that work because
// lflowGen had not changed, trusting that every change in the cache was
// announced by an event; libovsdb hands events out after applying an
// update, so the cache may hold an update whose events were still queued.
// Such a run acknowledges the nb_cfg only if the events of the updates that
// set it had been handled before it read lflowGen; else it leaves the ack
// to the run those events start (poked here too, in case they were all
// handled meanwhile).
func (c *Controller) ackIfCaughtUp(ctx context.Context, snap *snapshot, ev evCfgs, fresh bool) error {
	if snap.ackCfg < 0 {
		return nil
	}
	if !fresh && ((snap.global != nil && int64(snap.global.NbCfg) > ev.main) || (c.names != nil && int64(snap.namesCfg) > ev.names)) {
		c.log.Debug("nb_cfg acknowledgement left to the next run: its events were still queued", zap.Int("nb_cfg", snap.ackCfg),
			zap.Int64("main_events", ev.main), zap.Int64("names_events", ev.names))
		c.poke()
		return nil
	}
	return c.ackNbCfg(ctx, snap, snap.ackCfg)
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func (c *Controller) connect(ctx context.Context, spec monitorSpec) error {
	sb, cfg, err := connectSB(ctx, c.cfg.Remotes, spec, c.log.Named("sb"), c.sbEvent)
	if err != nil {
		return fmt.Errorf("southbound %v: %w", c.cfg.Remotes, err)
	}
	c.sb, c.spec, c.sbCfg = sb, spec, cfg
	c.lflowGen.Add(1)
	return nil
}

func (c *Controller) sbEvent(table, op string) {
	c.m.sbEvents.WithLabelValues(table, op).Inc()
	if translationTables[table] {
		c.lflowGen.Add(1)
	}
	if table == sbdb.DatapathBindingTable || table == sbdb.LogicalDPGroupTable {
		c.dpGen.Add(1)
	}
	c.poke()
}

// translate turns the snapshot's logical flows into OpenFlow,
// incrementally: libovsdb replaces a row's model on every update, so an
// unchanged model pointer is an unchanged row, and only the rows whose
// model changed (or that disappeared) are handed to the translator, which
// also re-examines the translations whose dependencies differ from the
// previous run's env. A change of the datapath or datapath group tables
// converts every row again (the translator ignores the unchanged ones).
func (c *Controller) translate(snap *snapshot, env *translate.Env, dpKey func(string) (uint32, bool)) *translate.Output {
	lfs := snap.lfs
	all := false
	if g := c.dpGen.Load(); g != c.lfDPGen || c.lfRows == nil || c.lfClient != c.sb {
		all = c.lfRows != nil && c.lfClient == c.sb // same rows, other datapath keys
		if c.lfRows == nil {
			c.lfRows = make(map[string]*sbdb.LogicalFlow, len(lfs))
		}
		c.lfDPGen, c.lfClient = g, c.sb
	}
	var changed []translate.Flow
	rows := 0
	for uuid, m := range lfs {
		lf, ok := m.(*sbdb.LogicalFlow)
		if !ok || lf == nil {
			continue
		}
		rows++
		if old, ok := c.lfRows[uuid]; ok && old == lf && !all {
			continue
		}
		c.lfRows[uuid] = lf
		f := translate.Flow{UUID: lf.UUID, Table: lf.TableID, Priority: lf.Priority, Match: lf.Match, Actions: lf.Actions}
		if lf.Pipeline == sbdb.LogicalFlowPipelineEgress {
			f.Pipeline = controller.Egress
		}
		if lf.LogicalDatapath != nil {
			if k, ok := dpKey(*lf.LogicalDatapath); ok {
				f.Datapaths = append(f.Datapaths, k)
			}
		}
		if lf.LogicalDpGroup != nil {
			if g, ok := snap.dpGroups[*lf.LogicalDpGroup]; ok {
				for _, d := range g.Datapaths {
					if k, ok := dpKey(d); ok {
						f.Datapaths = append(f.Datapaths, k)
					}
				}
			}
		}
		slices.Sort(f.Datapaths)
		changed = append(changed, f)
	}
	var deleted []string
	if len(c.lfRows) > rows { // rows that are gone
		for uuid := range c.lfRows {
			if m, ok := lfs[uuid].(*sbdb.LogicalFlow); !ok || m == nil {
				deleted = append(deleted, uuid)
				delete(c.lfRows, uuid)
			}
		}
	}
	return c.tr.Update(changed, deleted, env)
}

// trSig is what translation depends on besides the southbound tables: the
// local datapaths, the ports bound here and the remote VIFs.
type trSig struct {
	local  map[uint32]bool
	bound  map[string]bool
	remote map[string]bool
}

func (s trSig) equal(o trSig) bool {
	return maps.Equal(s.local, o.local) && maps.Equal(s.bound, o.bound) && maps.Equal(s.remote, o.remote)
}

// wantSpec is the monitor spec for the current view.
func (c *Controller) wantSpec(snap *snapshot, local map[uint32]bool, me string) monitorSpec {
	s := monitorSpec{chassis: me}
	dpUUID := map[string]bool{}
	for uuid, dp := range snap.datapaths {
		if local[uint32(dp.TunnelKey)] {
			s.datapaths = append(s.datapaths, uuid)
			s.dpKeys = append(s.dpKeys, dp.TunnelKey)
			dpUUID[uuid] = true
		}
	}
	for uuid, g := range snap.dpGroups {
		for _, d := range g.Datapaths {
			if dpUUID[d] {
				s.dpGroups = append(s.dpGroups, uuid)
				break
			}
		}
	}
	var names []string
	for _, pb := range snap.ports {
		if pb.Type == physical.TypePatch && dpUUID[pb.Datapath] && pb.Options["peer"] != "" {
			names = append(names, pb.Options["peer"])
		}
	}
	slices.Sort(s.dpKeys)
	s.datapaths = sortedUnique(s.datapaths)
	s.dpGroups = sortedUnique(s.dpGroups)
	s.ports = sortedUnique(names)
	return s
}

func (c *Controller) reportErrors(errs []translate.Error) {
	now := map[string]bool{}
	for _, e := range errs {
		k := e.UUID + "/" + e.Err.Error()
		now[k] = true
		if !c.lastErrs[k] {
			c.log.Warn("logical flow skipped", zap.Error(e))
		}
	}
	for k := range c.lastErrs {
		if len(k) > 9 && k[:9] == "conflict/" {
			now[k] = true
		}
	}
	c.lastErrs = now
}

func (c *Controller) vsConfig(ctx context.Context) (map[string]string, error) {
	return c.ext.read(ctx)
}

// registerChassis makes our Chassis (with its Encap) and Chassis_Private
// rows match the configuration. errPending means it wrote and the cache
// will catch up.
func (c *Controller) registerChassis(ctx context.Context, snap *snapshot) error {
	cfg := c.cfg
	want := sbdb.Encap{Type: sbdb.EncapTypeGeneve, IP: cfg.EncapIP.String(), ChassisName: cfg.SystemID,
		Options: map[string]string{"csum": "true"}}
	otherConfig := map[string]string{"datapath-type": cfg.DatapathType, "govn-controller": "true"}
	if len(cfg.BridgeMappings) > 0 {
		otherConfig["ovn-bridge-mappings"] = bridgeMappings(cfg.BridgeMappings)
	}
	ch := snap.chassisByNm[cfg.SystemID]
	var ops []ovsdb.Operation
	var err error
	if ch == nil {
		nc := &sbdb.Chassis{UUID: ovsdbclient.NamedUUID(), Name: cfg.SystemID, Hostname: c.o.Hostname, OtherConfig: otherConfig}
		e := want
		if ops, err = sbdb.CreateChassisOps(c.sb, ops, nc, &e); err != nil {
			return err
		}
		cp := &sbdb.ChassisPrivate{Name: cfg.SystemID, Chassis: &nc.UUID}
		if old, ok := snap.private[cfg.SystemID]; ok {
			old2 := *old
			old2.Chassis = &nc.UUID
			ops, err = ovsdbclient.UpdateOps(c.sb, ops, &old2, &old2.Chassis)
		} else {
			ops, err = ovsdbclient.CreateOps(c.sb, ops, cp)
		}
		if err != nil {
			return err
		}
		if _, err := c.sb.Transact(ctx, ops...); err != nil {
			return fmt.Errorf("register chassis %s: %w", cfg.SystemID, err)
		}
		c.log.Info("registered chassis", zap.String("chassis", cfg.SystemID), zap.String("encap_ip", want.IP))
		c.poke()
		return errPending
	}
	c.chassisUUID = ch.UUID
	// Encap as configured?
	encOK := len(ch.Encaps) == 1
	if encOK {
		e, ok := snap.encaps[ch.Encaps[0]]
		encOK = ok && e.Type == want.Type && e.IP == want.IP && e.ChassisName == want.ChassisName
	}
	upd := *ch
	var fields []any
	if !encOK {
		e := want
		ovsdbclient.EnsureUUID(&e.UUID)
		if ops, err = ovsdbclient.CreateOps(c.sb, ops, &e); err != nil {
			return err
		}
		upd.Encaps = []string{e.UUID}
		fields = append(fields, &upd.Encaps)
	}
	if ch.Hostname != c.o.Hostname {
		upd.Hostname = c.o.Hostname
		fields = append(fields, &upd.Hostname)
	}
	for k, v := range otherConfig {
		if ch.OtherConfig[k] != v {
			upd.OtherConfig = otherConfig
			fields = append(fields, &upd.OtherConfig)
			break
		}
	}
	if len(fields) > 0 {
		if ops, err = ovsdbclient.UpdateOps(c.sb, ops, &upd, fields...); err != nil {
			return err
		}
	}
	cp, ok := snap.private[cfg.SystemID]
	switch {
	case !ok:
		ops, err = ovsdbclient.CreateOps(c.sb, ops, &sbdb.ChassisPrivate{Name: cfg.SystemID, Chassis: &ch.UUID})
	case cp.Chassis == nil || *cp.Chassis != ch.UUID:
		u := *cp
		u.Chassis = &ch.UUID
		ops, err = ovsdbclient.UpdateOps(c.sb, ops, &u, &u.Chassis)
	}
	if err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	if _, err := c.sb.Transact(ctx, ops...); err != nil {
		return fmt.Errorf("update chassis %s: %w", cfg.SystemID, err)
	}
	c.log.Info("updated chassis registration", zap.String("chassis", cfg.SystemID))
	c.poke()
	return errPending
}

func (c *Controller) applyBindings(ctx context.Context, dec *binding.Result, me string) error {
	if len(dec.Decisions) == 0 {
		return nil
	}
	var ops []ovsdb.Operation
	t, f := true, false
	for _, d := range dec.Decisions {
		pb := &sbdb.PortBinding{UUID: d.Port.UUID}
		var err error
		switch d.Action {
		case binding.Claim:
			pb.Chassis, pb.Up = &me, &t
			ops, err = ovsdbclient.UpdateOps(c.sb, ops, pb, &pb.Chassis, &pb.Up)
			if d.Port.Chassis != "" {
				c.log.Info("claiming port from another chassis", zap.String("port", d.Port.LogicalPort), zap.String("from", d.Port.Chassis))
			} else {
				c.log.Info("claiming port", zap.String("port", d.Port.LogicalPort))
			}
		case binding.SetUp:
			pb.Up = &t
			ops, err = ovsdbclient.UpdateOps(c.sb, ops, pb, &pb.Up)
		case binding.Release:
			pb.Chassis, pb.Up = nil, &f
			ops, err = ovsdbclient.UpdateOps(c.sb, ops, pb, &pb.Chassis, &pb.Up)
			c.log.Info("releasing port", zap.String("port", d.Port.LogicalPort))
		}
		if err != nil {
			return err
		}
		c.m.claims.WithLabelValues(d.Action.String()).Inc()
	}
	if _, err := c.sb.Transact(ctx, ops...); err != nil {
		return fmt.Errorf("port bindings: %w", err)
	}
	return nil
}

func (c *Controller) ackNbCfg(ctx context.Context, snap *snapshot, nbCfg int) error {
	cp, ok := snap.private[c.cfg.SystemID]
	if !ok || (cp.NbCfg == nbCfg && c.ackedCfg == nbCfg) {
		return nil
	}
	if cp.NbCfg == nbCfg {
		c.ackedCfg = nbCfg
		return nil
	}
	u := *cp
	u.NbCfg, u.NbCfgTimestamp = nbCfg, int(time.Now().UnixMilli())
	ops, err := ovsdbclient.UpdateOps(c.sb, nil, &u, &u.NbCfg, &u.NbCfgTimestamp)
	if err != nil {
		return err
	}
	if _, err := c.sb.Transact(ctx, ops...); err != nil {
		return fmt.Errorf("acknowledge nb_cfg %d: %w", nbCfg, err)
	}
	c.ackedCfg = nbCfg
	c.m.nbCfg.Set(float64(nbCfg))
	return nil
}

func zoneLoad(reg string) *regexp.Regexp {
	return regexp.MustCompile(`(?:set_field:0x([0-9a-f]+)/0xffff->reg` + reg + `|load:0x([0-9a-f]+)->NXM_NX_REG` + reg + `\[0\.\.15\])`)
}

var (
	zoneAction     = zoneLoad("13")
	dnatZoneAction = zoneLoad("11")
	snatZoneAction = zoneLoad("12")
	inPortMatch    = regexp.MustCompile(`(?:^|,)in_port=(\d+)(?:,|$)`)
	metadataMatch  = regexp.MustCompile(`(?:^|,)metadata=0x([0-9a-f]+)(?:,|$)`)
)

// Zone names of a datapath's DNAT and SNAT zones: <datapath UUID> + suffix.
const (
	dnatSuffix = "_dnat"
	snatSuffix = "_snat"
)

func zoneValue(re *regexp.Regexp, actions string) (uint16, bool) {
	m := re.FindStringSubmatch(actions)
	if m == nil {
		return 0, false
	}
	z, err := strconv.ParseUint(m[1]+m[2], 16, 16)
	return uint16(z), err == nil && z != 0
}

// loadBalancers parses the SB Load_Balancer rows that apply to local
// datapaths; invalid entries are logged once and counted.
func (c *Controller) loadBalancers(snap *snapshot, local map[uint32]bool, dpKey func(string) (uint32, bool)) []physical.LoadBalancer {
	var out []physical.LoadBalancer
	nErr := 0
	for _, uuid := range slices.Sorted(maps.Keys(snap.lbs)) {
		lb := snap.lbs[uuid]
		var dps []uint32
		isLocal := false
		add := func(d string) {
			if k, ok := dpKey(d); ok {
				dps = append(dps, k)
				isLocal = isLocal || local[k]
			}
		}
		for _, d := range lb.Datapaths {
			add(d)
		}
		if lb.DatapathGroup != nil {
			if g, ok := snap.dpGroups[*lb.DatapathGroup]; ok {
				for _, d := range g.Datapaths {
					add(d)
				}
			}
		}
		if !isLocal {
			continue
		}
		proto := ""
		if lb.Protocol != nil {
			proto = string(*lb.Protocol)
		}
		p, errs := physical.ParseLoadBalancer(lb.Name, dps, lb.Vips, proto, lb.Options)
		for _, e := range errs {
			nErr++
			if k := "lb/" + uuid + "/" + e.Error(); !c.lastErrs[k] {
				c.lastErrs[k] = true
				c.log.Warn("load balancer entry skipped", zap.String("uuid", uuid), zap.Error(e))
			}
		}
		out = append(out, p)
	}
	c.m.lbErrors.Set(float64(nErr))
	return out
}

// recoverZones reads the conntrack zones of local ports from the installed
// table-0 flows, and the DNAT/SNAT zones of datapaths from the
// local-output flows, so that a restarted controller keeps them.
func (c *Controller) recoverZones(ctx context.Context, ofports map[string]uint32, dpUUID map[uint32]string) error {
	st, err := c.of.ReadInstalled(ctx)
	if err != nil {
		return fmt.Errorf("read installed flows: %w", err)
	}
	byPort := map[uint32]string{}
	for name, p := range ofports {
		byPort[p] = name
	}
	for _, f := range st.Flows {
		if f.Table == controller.TableLocalOutput {
			mm := metadataMatch.FindStringSubmatch(f.Match)
			if mm == nil {
				continue
			}
			k, err := strconv.ParseUint(mm[1], 16, 32)
			uuid, ok := dpUUID[uint32(k)]
			if err != nil || !ok {
				continue
			}
			if z, ok := zoneValue(dnatZoneAction, f.Actions); ok {
				c.zones[uuid+dnatSuffix] = z
			}
			if z, ok := zoneValue(snatZoneAction, f.Actions); ok {
				c.zones[uuid+snatSuffix] = z
			}
			continue
		}
		if f.Table != controller.TableClassify {
			continue
		}
		pm := inPortMatch.FindStringSubmatch(f.Match)
		zm := zoneAction.FindStringSubmatch(f.Actions)
		if pm == nil || zm == nil {
			continue
		}
		p, _ := strconv.ParseUint(pm[1], 10, 32)
		name, ok := byPort[uint32(p)]
		if !ok {
			continue
		}
		hex := zm[1] + zm[2]
		z, err := strconv.ParseUint(hex, 16, 16)
		if err == nil && z != 0 {
			c.zones[name] = uint16(z)
		}
	}
	if len(c.zones) > 0 {
		c.log.Info("recovered conntrack zones from installed flows", zap.Int("ports", len(c.zones)))
	}
	return nil
}

// shutdown removes our registration unless KeepOnExit.
func (c *Controller) shutdown() error {
	if c.o.KeepOnExit || c.keep.Load() || c.cfg.SystemID == "" || len(c.cfg.Remotes) == 0 {
		c.log.Info("exiting; chassis registration and flows kept")
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c.sb == nil || !c.sb.Connected() {
		// Interrupted while changing monitor conditions: a client that
		// sees our registration and our ports is enough.
		if c.sb != nil {
			c.sb.Close()
			c.sb = nil
		}
		if err := c.connect(ctx, monitorSpec{chassis: c.chassisUUID}); err != nil {
			return fmt.Errorf("unregister chassis %s: %w", c.cfg.SystemID, err)
		}
	}
	snap := takeSnapshot(c.sb, false, nil)
	var ops []ovsdb.Operation
	var err error
	ch := snap.chassisByNm[c.cfg.SystemID]
	if ch != nil {
		f := false
		for _, pb := range snap.ports {
			if pb.Chassis != nil && *pb.Chassis == ch.UUID {
				u := &sbdb.PortBinding{UUID: pb.UUID, Up: &f}
				if ops, err = ovsdbclient.UpdateOps(c.sb, ops, u, &u.Chassis, &u.Up); err != nil {
					return err
				}
			}
		}
		if ops, err = ovsdbclient.DeleteOps(c.sb, ops, &sbdb.Chassis{UUID: ch.UUID}); err != nil {
			return err
		}
	}
	if cp, ok := snap.private[c.cfg.SystemID]; ok {
		if ops, err = ovsdbclient.DeleteOps(c.sb, ops, &sbdb.ChassisPrivate{UUID: cp.UUID}); err != nil {
			return err
		}
	}
	if _, err := c.sb.Transact(ctx, ops...); err != nil {
		return fmt.Errorf("unregister chassis %s: %w", c.cfg.SystemID, err)
	}
	c.log.Info("exiting; chassis unregistered and ports released", zap.String("chassis", c.cfg.SystemID))
	return nil
}
