// Package run is northd's I/O shell: it connects to the northbound and
// southbound databases with libovsdb, feeds northbound changes to the pure
// engine (package northd), commits the southbound diff in one transaction
// per round, and propagates nb_cfg → sb_cfg → hv_cfg and Port_Binding.up →
// Logical_Switch_Port.up.
package run

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
	"github.com/govn/govn/northd"
	"github.com/govn/govn/sbdb"
)

// Config configures a northd.
type Config struct {
	NB, SB      []string // OVSDB remotes
	MetricsAddr string   // "" disables the metrics server (/metrics, /debug/pprof/)
	Logger      *zap.Logger
	// Registry receives the metrics (a new registry if nil).
	Registry *prometheus.Registry
	// OnRound, if set, is called after every round (tests, benchmarks).
	OnRound func(RoundStats)
	// ReconcileInterval: every interval northd re-reads the SB rows it owns
	// and fully compares them with the desired state, repairing changes
	// others made (e.g. ovn-sbctl lflow deletes); 0 disables.
	ReconcileInterval time.Duration
}

// RoundStats describes one processing round.
type RoundStats struct {
	Engine      northd.RunStats
	Ops         int
	Flows       int // desired logical flows
	NbCfg       int
	Compute     time.Duration
	Transaction time.Duration
	Total       time.Duration
}

// Northd is a running northd.
type Northd struct {
	cfg Config
	log *zap.Logger
	nb  *ovsdbclient.Client
	sb  *ovsdbclient.Client
	m   *metrics

	nbStore *northd.NB
	engine  *northd.Engine
	sbState *northd.SBState

	wake      chan struct{}
	recompute chan struct{}

	// previous cache pointers per NB table (libovsdb replaces the model
	// pointer on every update, so pointer identity detects changes).
	seen map[string]map[string]model.Model

	badSeen map[string]bool
	sbCfg   int
	hvCfg   int
	pbSeen  map[string]model.Model
	upDirty bool            // check every port's "up" (after a reset)
	upCheck map[string]bool // logical ports whose "up" to check

	mu      sync.Mutex
	metrics *http.Server
}

type metrics struct {
	recomputes   *prometheus.CounterVec
	computeSec   prometheus.Histogram
	txnSec       prometheus.Histogram
	roundSec     prometheus.Histogram
	lflows       prometheus.Gauge
	badRows      prometheus.Gauge
	badRowsTotal prometheus.Counter
	flowErrors   prometheus.Gauge
	txnErrors    prometheus.Counter
	lastCompute  *prometheus.GaugeVec
}

func newMetrics(reg *prometheus.Registry) *metrics {
	buckets := prometheus.ExponentialBuckets(0.0005, 2, 16)
	m := &metrics{
		recomputes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "govn_northd_recompute_total",
			Help: "Engine runs, by type: full (every switch) or incremental (changed switches only)."}, []string{"type"}),
		computeSec: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "govn_northd_recompute_duration_seconds",
			Help: "Time to compute the desired southbound state (engine run + diff).", Buckets: buckets}),
		txnSec: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "govn_northd_sb_transaction_duration_seconds",
			Help: "Southbound transaction round-trip time.", Buckets: buckets}),
		roundSec: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "govn_northd_round_duration_seconds",
			Help: "Whole processing round: read NB, compute, commit SB, update NB.", Buckets: buckets}),
		lflows:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "govn_northd_logical_flows", Help: "Logical_Flow rows northd maintains."}),
		badRows: prometheus.NewGauge(prometheus.GaugeOpts{Name: "govn_northd_nb_bad_rows", Help: "Northbound rows currently skipped because they are invalid."}),
		badRowsTotal: prometheus.NewCounter(prometheus.CounterOpts{Name: "govn_northd_nb_bad_rows_total",
			Help: "Invalid northbound rows reported (each distinct row and reason once)."}),
		flowErrors: prometheus.NewGauge(prometheus.GaugeOpts{Name: "govn_northd_generated_flow_errors",
			Help: "Generated logical flows the lflow parser rejected and northd did not write (northd bugs)."}),
		txnErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "govn_northd_sb_transaction_errors_total",
			Help: "Failed southbound transactions (each followed by a reload and full resync)."}),
	}
	m.lastCompute = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "govn_northd_last_recompute_seconds",
		Help: "Duration of the latest engine run (+ diff), by type."}, []string{"type"})
	reg.MustRegister(m.lastCompute, m.recomputes, m.computeSec, m.txnSec, m.roundSec, m.lflows, m.badRows, m.badRowsTotal, m.flowErrors, m.txnErrors)
	return m
}

// bigTxn is the operation count above which a round returns freed memory
// to the OS right away.
const bigTxn = 5000

// nbTables are the northbound tables northd reads.
var nbTables = []string{nbdb.LogicalSwitchTable, nbdb.LogicalSwitchPortTable, nbdb.ACLTable, nbdb.PortGroupTable, nbdb.AddressSetTable,
	nbdb.LogicalRouterTable, nbdb.LogicalRouterPortTable, nbdb.LogicalRouterStaticRouteTable,
	nbdb.LoadBalancerTable, nbdb.LoadBalancerGroupTable,
	nbdb.NATTable, nbdb.GatewayChassisTable, nbdb.HAChassisGroupTable, nbdb.HAChassisTable}

// Start connects to both databases, starts the metrics server and returns
// a Northd ready to Run.
func Start(ctx context.Context, cfg Config) (*Northd, error) {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	}
	n := &Northd{cfg: cfg, log: log, m: newMetrics(reg), wake: make(chan struct{}, 1), recompute: make(chan struct{}, 1),
		seen: map[string]map[string]model.Model{}, badSeen: map[string]bool{}, pbSeen: map[string]model.Model{}, upCheck: map[string]bool{},
		sbCfg: -1, hvCfg: -1}
	if cfg.MetricsAddr != "" {
		l, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("metrics address %q: %w", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		n.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = n.metrics.Serve(l) }()
		log.Info("metrics", zap.String("addr", l.Addr().String()))
	}
	var err error
	n.nb, err = nbdb.NewClient(ctx, cfg.NB, ovsdbclient.WithLogger(log),
		ovsdbclient.WithTables(append([]string{nbdb.NBGlobalTable}, nbTables...)...))
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("northbound: %w", err)
	}
	pb := &sbdb.PortBinding{}
	cp := &sbdb.ChassisPrivate{}
	ch := &sbdb.Chassis{}
	n.sb, err = sbdb.NewClient(ctx, cfg.SB, ovsdbclient.WithLogger(log), ovsdbclient.WithMonitor(
		client.WithTable(pb, &pb.LogicalPort, &pb.Up, &pb.Chassis, &pb.Type),
		client.WithTable(cp, &cp.Name, &cp.NbCfg),
		client.WithTable(ch, &ch.Name),
		client.WithTable(&sbdb.SBGlobal{}),
	))
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("southbound: %w", err)
	}
	wakeUp := &cache.EventHandlerFuncs{
		AddFunc:    func(string, model.Model) { n.poke() },
		UpdateFunc: func(string, model.Model, model.Model) { n.poke() },
		DeleteFunc: func(string, model.Model) { n.poke() },
	}
	n.nb.Cache().AddEventHandler(wakeUp)
	n.sb.Cache().AddEventHandler(wakeUp)
	return n, nil
}

func (n *Northd) poke() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Recompute asks for a full recompute (every switch) on the next round,
// like ovn-appctl inc-engine/recompute.
func (n *Northd) Recompute() {
	select {
	case n.recompute <- struct{}{}:
	default:
	}
}

// Close disconnects and stops the metrics server.
func (n *Northd) Close() {
	if n.nb != nil {
		n.nb.Close()
	}
	if n.sb != nil {
		n.sb.Close()
	}
	if n.metrics != nil {
		_ = n.metrics.Close()
	}
}

// Run processes changes until ctx ends. A failed round is retried with
// backoff after reloading the southbound state.
func (n *Northd) Run(ctx context.Context) error {
	defer n.Close()
	if err := n.reset(ctx); err != nil {
		return err
	}
	backoff := 100 * time.Millisecond
	n.poke()
	var reconcile <-chan time.Time
	if n.cfg.ReconcileInterval > 0 {
		t := time.NewTicker(n.cfg.ReconcileInterval)
		defer t.Stop()
		reconcile = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-reconcile:
			if err := n.reset(ctx); err != nil {
				n.log.Error("periodic reconcile: reading the southbound database failed", zap.Error(err))
				continue
			}
		case <-n.wake:
		case <-n.recompute:
			n.nbStore.MarkAllDirty()
		case <-time.After(30 * time.Second):
			// An idle round now and then: cheap (nothing changed means
			// no operations) and a safety net should a wake-up be lost.
		}
		if err := n.round(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			n.log.Error("round failed; reloading the southbound state and retrying", zap.Error(err), zap.Duration("in", backoff))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
			if err := n.reset(ctx); err != nil {
				n.log.Error("reload failed", zap.Error(err))
			}
			n.poke()
			continue
		}
		backoff = 100 * time.Millisecond
	}
}

// reset (re)loads the southbound state and forces a full comparison.
func (n *Northd) reset(ctx context.Context) error {
	rows, err := LoadSBRows(ctx, n.sb)
	if err != nil {
		return fmt.Errorf("read southbound: %w", err)
	}
	n.sbState = northd.LoadSB(rows)
	if n.engine == nil {
		n.engine = northd.NewEngine(nil, nil)
		n.nbStore = northd.NewNB()
	} else {
		n.engine.MarkAllChanged()
		n.nbStore.MarkAllDirty()
	}
	n.sbCfg, n.hvCfg = -1, -1
	n.upDirty = true
	return nil
}

func nbGlobal(c *ovsdbclient.Client) *nbdb.NBGlobal {
	t := c.Cache().Table(nbdb.NBGlobalTable)
	if t == nil {
		return nil
	}
	for _, m := range t.RowsShallow() {
		return m.(*nbdb.NBGlobal)
	}
	return nil
}

// chassisUUIDs maps SB Chassis names to row UUIDs (for HA_Chassis.chassis).
func (n *Northd) chassisUUIDs() map[string]string {
	t := n.sb.Cache().Table(sbdb.ChassisTable)
	if t == nil {
		return nil
	}
	m := map[string]string{}
	for id, c := range t.RowsShallow() {
		m[c.(*sbdb.Chassis).Name] = id
	}
	return m
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (n *Northd) sbGlobalUUID() string {
	t := n.sb.Cache().Table(sbdb.SBGlobalTable)
	if t == nil {
		return ""
	}
	for id := range t.RowsShallow() {
		return id
	}
	return ""
}

// round does one pass: NB changes → engine → SB transaction → NB status.
func (n *Northd) round(ctx context.Context) error {
	start := time.Now()
	// NB_Global first: every table read after it is at least as new, so
	// the nb_cfg reported back covers everything computed this round.
	g := nbGlobal(n.nb)
	nbCfg := 0
	svcMAC := ""
	if g != nil {
		nbCfg = g.NbCfg
		svcMAC = g.Options["svc_monitor_mac"]
	}
	if g != nil && svcMAC == "" {
		svcMAC = randomMAC()
		if err := n.setNBOption(ctx, g, "svc_monitor_mac", svcMAC); err != nil {
			return err
		}
	}
	n.nbStore.SetSvcMonitorMAC(svcMAC)
	if u := n.sbGlobalUUID(); u != "" && n.sbState.GlobalUUID() != "" && u != n.sbState.GlobalUUID() {
		// A different southbound database (recreated, restored): the
		// mirror no longer describes it.
		n.log.Warn("southbound SB_Global changed; re-reading the southbound database")
		if err := n.reset(ctx); err != nil {
			return err
		}
	}
	n.nbStore.SetIgnoreLSPDown(g == nil || g.Options["ignore_lsp_down"] != "false")
	n.readNB()

	t0 := time.Now()
	st := n.engine.Run(n.nbStore)
	txn, err := n.sbState.Sync(n.engine, northd.SyncOptions{NbCfg: nbCfg, SvcMonitorMAC: svcMAC, Chassis: n.chassisUUIDs()})
	if err != nil {
		return err
	}
	compute := time.Since(t0)
	if st.SwitchesComputed > 0 || st.Full {
		typ := "incremental"
		if st.Full {
			typ = "full"
		}
		n.m.recomputes.WithLabelValues(typ).Inc()
		n.m.computeSec.Observe(compute.Seconds())
		n.m.lastCompute.WithLabelValues(typ).Set(compute.Seconds())
	}
	n.report()

	var txnDur time.Duration
	if len(txn.Ops) > 0 {
		t1 := time.Now()
		res, err := n.sb.Transact(ctx, txn.Ops...)
		txnDur = time.Since(t1)
		n.m.txnSec.Observe(txnDur.Seconds())
		if err != nil {
			n.m.txnErrors.Inc()
			return fmt.Errorf("southbound transaction (%d operations): %w", len(txn.Ops), err)
		}
		if err := txn.Commit(res); err != nil {
			return err
		}
		if len(txn.Ops) > bigTxn {
			// Hand the encoding buffers of a bulk transaction back to
			// the OS now rather than over minutes.
			debug.FreeOSMemory()
		}
		n.log.Debug("southbound updated", zap.Int("ops", len(txn.Ops)), zap.Int("flows_added", txn.FlowsAdded),
			zap.Int("flows_deleted", txn.FlowsDeleted), zap.Int("flows_updated", txn.FlowsUpdated), zap.Duration("took", txnDur))
	}
	n.m.lflows.Set(float64(n.sbState.NumFlows()))

	if err := n.updateNB(ctx, g, nbCfg); err != nil {
		return err
	}
	total := time.Since(start)
	n.m.roundSec.Observe(total.Seconds())
	if n.cfg.OnRound != nil {
		n.cfg.OnRound(RoundStats{Engine: st, Ops: len(txn.Ops), Flows: n.engine.NumFlows(), NbCfg: nbCfg,
			Compute: compute, Transaction: txnDur, Total: total})
	}
	return nil
}

// report logs newly seen bad rows and updates the gauges.
func (n *Northd) report() {
	bad := n.engine.Bad()
	n.m.badRows.Set(float64(len(bad)))
	now := map[string]bool{}
	for _, b := range bad {
		k := b.String()
		now[k] = true
		if !n.badSeen[k] {
			n.m.badRowsTotal.Inc()
			n.log.Warn("skipping invalid northbound row", zap.String("table", b.Table), zap.String("uuid", b.UUID),
				zap.String("name", b.Name), zap.Error(b.Err))
		}
	}
	n.badSeen = now
	ferrs := n.engine.FlowErrors()
	n.m.flowErrors.Set(float64(len(ferrs)))
	for _, err := range ferrs {
		n.log.Error("northd bug: generated flow not written", zap.Error(err))
	}
}

// readNB feeds changed NB rows to the store.
func (n *Northd) readNB() {
	for _, table := range nbTables {
		t := n.nb.Cache().Table(table)
		if t == nil {
			continue
		}
		rows := t.RowsShallow()
		prev := n.seen[table]
		for id, m := range rows {
			if prev[id] == m {
				continue
			}
			n.setRow(table, prev[id], m)
		}
		for id := range prev {
			if _, ok := rows[id]; !ok {
				n.deleteRow(table, id)
			}
		}
		n.seen[table] = rows
	}
}

func (n *Northd) setRow(table string, old, m model.Model) {
	switch r := m.(type) {
	case *nbdb.LogicalSwitch:
		n.nbStore.SetSwitch(&northd.Switch{UUID: r.UUID, Name: r.Name, Ports: r.Ports, ACLs: r.ACLs, OtherConfig: r.OtherConfig,
			LoadBalancers: r.LoadBalancer, LBGroups: r.LoadBalancerGroup})
	case *nbdb.LogicalSwitchPort:
		if o, ok := old.(*nbdb.LogicalSwitchPort); ok && n.nbStore.IgnoreLSPDown && sameLSPIgnoringUp(o, r) {
			return // only "up" changed (northd's own write), and flows do not depend on it
		}
		n.nbStore.SetPort(&northd.SwitchPort{UUID: r.UUID, Name: r.Name, Type: r.Type, Addresses: r.Addresses,
			PortSecurity: r.PortSecurity, Options: r.Options, Enabled: r.Enabled, Up: r.Up, ParentName: r.ParentName, Tag: r.Tag})
		n.upCheck[r.Name] = true
	case *nbdb.ACL:
		var sev *string
		if r.Severity != nil {
			s := string(*r.Severity)
			sev = &s
		}
		n.nbStore.SetACL(&northd.ACL{UUID: r.UUID, Direction: string(r.Direction), Priority: r.Priority, Match: r.Match,
			Action: string(r.Action), Log: r.Log, Name: r.Name, Severity: sev, Meter: r.Meter, Label: r.Label, Options: r.Options, Tier: r.Tier})
	case *nbdb.PortGroup:
		n.nbStore.SetPortGroup(&northd.PortGroup{UUID: r.UUID, Name: r.Name, Ports: r.Ports, ACLs: r.ACLs})
	case *nbdb.AddressSet:
		n.nbStore.SetAddressSet(&northd.AddressSet{UUID: r.UUID, Name: r.Name, Addresses: r.Addresses})
	case *nbdb.LogicalRouter:
		n.nbStore.SetRouter(&northd.Router{UUID: r.UUID, Name: r.Name, Ports: r.Ports, StaticRoutes: r.StaticRoutes,
			NAT: r.Nat, Enabled: r.Enabled, Options: r.Options, LoadBalancers: r.LoadBalancer, LBGroups: r.LoadBalancerGroup})
	case *nbdb.LogicalRouterPort:
		n.nbStore.SetRouterPort(&northd.RouterPort{UUID: r.UUID, Name: r.Name, MAC: r.MAC, Networks: r.Networks,
			Enabled: r.Enabled, Options: r.Options, GatewayChassis: r.GatewayChassis, HAChassisGroup: deref(r.HaChassisGroup)})
	case *nbdb.NAT:
		n.nbStore.SetNAT(&northd.NAT{UUID: r.UUID, Type: string(r.Type), ExternalIP: r.ExternalIP, LogicalIP: r.LogicalIP,
			ExternalMAC: deref(r.ExternalMAC), LogicalPort: deref(r.LogicalPort), GatewayPort: deref(r.GatewayPort),
			Options: r.Options, ExternalPortRange: r.ExternalPortRange, AllowedExtIPs: r.AllowedExtIPs != nil,
			ExemptedExtIPs: r.ExemptedExtIPs != nil})
	case *nbdb.GatewayChassis:
		n.nbStore.SetGatewayChassis(&northd.GatewayChassis{UUID: r.UUID, Name: r.Name, ChassisName: r.ChassisName, Priority: r.Priority})
	case *nbdb.HAChassisGroup:
		n.nbStore.SetHAChassisGroup(&northd.HAChassisGroup{UUID: r.UUID, Name: r.Name, HAChassis: r.HaChassis})
	case *nbdb.HAChassis:
		n.nbStore.SetHAChassis(&northd.HAChassis{UUID: r.UUID, ChassisName: r.ChassisName, Priority: r.Priority})
	case *nbdb.LogicalRouterStaticRoute:
		sr := &northd.StaticRoute{UUID: r.UUID, IPPrefix: r.IPPrefix, Nexthop: r.Nexthop, OutputPort: r.OutputPort,
			RouteTable: r.RouteTable}
		if r.Policy != nil {
			sr.Policy = string(*r.Policy)
		}
		n.nbStore.SetStaticRoute(sr)
	case *nbdb.LoadBalancer:
		lb := &northd.LoadBalancer{UUID: r.UUID, Name: r.Name, Vips: r.Vips, Options: r.Options}
		if r.Protocol != nil {
			lb.Protocol = string(*r.Protocol)
		}
		for _, f := range r.SelectionFields {
			lb.SelectionFields = append(lb.SelectionFields, string(f))
		}
		n.nbStore.SetLoadBalancer(lb)
	case *nbdb.LoadBalancerGroup:
		n.nbStore.SetLoadBalancerGroup(&northd.LoadBalancerGroup{UUID: r.UUID, Name: r.Name, LoadBalancers: r.LoadBalancer})
	}
}

func sameLSPIgnoringUp(a, b *nbdb.LogicalSwitchPort) bool {
	x, y := *a, *b
	x.Up, y.Up = nil, nil
	return x.Equals(&y)
}

func (n *Northd) deleteRow(table, id string) {
	switch table {
	case nbdb.LogicalSwitchTable:
		n.nbStore.DeleteSwitch(id)
	case nbdb.LogicalSwitchPortTable:
		n.nbStore.DeletePort(id)
	case nbdb.ACLTable:
		n.nbStore.DeleteACL(id)
	case nbdb.PortGroupTable:
		n.nbStore.DeletePortGroup(id)
	case nbdb.AddressSetTable:
		n.nbStore.DeleteAddressSet(id)
	case nbdb.LogicalRouterTable:
		n.nbStore.DeleteRouter(id)
	case nbdb.LogicalRouterPortTable:
		n.nbStore.DeleteRouterPort(id)
	case nbdb.LogicalRouterStaticRouteTable:
		n.nbStore.DeleteStaticRoute(id)
	case nbdb.LoadBalancerTable:
		n.nbStore.DeleteLoadBalancer(id)
	case nbdb.LoadBalancerGroupTable:
		n.nbStore.DeleteLoadBalancerGroup(id)
	case nbdb.NATTable:
		n.nbStore.DeleteNAT(id)
	case nbdb.GatewayChassisTable:
		n.nbStore.DeleteGatewayChassis(id)
	case nbdb.HAChassisGroupTable:
		n.nbStore.DeleteHAChassisGroup(id)
	case nbdb.HAChassisTable:
		n.nbStore.DeleteHAChassis(id)
	}
}

// updateNB writes sb_cfg, hv_cfg and Logical_Switch_Port.up in one NB
// transaction when they changed.
func (n *Northd) updateNB(ctx context.Context, g *nbdb.NBGlobal, nbCfg int) error {
	var ops []ovsdb.Operation
	if g != nil {
		row := ovsdb.Row{}
		if g.SbCfg != nbCfg {
			row["sb_cfg"] = nbCfg
			row["sb_cfg_timestamp"] = int(time.Now().UnixMilli())
		}
		hv := n.hvCfgNow(nbCfg)
		if g.HvCfg != hv {
			row["hv_cfg"] = hv
			row["hv_cfg_timestamp"] = int(time.Now().UnixMilli())
		}
		if len(row) > 0 {
			ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: nbdb.NBGlobalTable, Row: row,
				Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: g.UUID}}}})
		}
	}
	ops = append(ops, n.upOps()...)
	if len(ops) == 0 {
		return nil
	}
	if _, err := n.nb.Transact(ctx, ops...); err != nil {
		return fmt.Errorf("northbound status update: %w", err)
	}
	if len(ops) > bigTxn {
		debug.FreeOSMemory()
	}
	return nil
}

// hvCfgNow is the smallest nb_cfg every chassis has caught up with
// (nbCfg when there are no chassis).
func (n *Northd) hvCfgNow(nbCfg int) int {
	t := n.sb.Cache().Table(sbdb.ChassisPrivateTable)
	if t == nil {
		return nbCfg
	}
	hv := nbCfg
	for _, m := range t.RowsShallow() {
		if c := m.(*sbdb.ChassisPrivate); c.NbCfg < hv {
			hv = c.NbCfg
		}
	}
	return hv
}

// upOps mirrors Port_Binding.up (set by the controller that binds a port)
// to Logical_Switch_Port.up; router ports are always up. Only ports whose
// Port_Binding or Logical_Switch_Port changed since the last round are
// looked at (all of them after a reset).
func (n *Northd) upOps() []ovsdb.Operation {
	t := n.sb.Cache().Table(sbdb.PortBindingTable)
	lsps := n.nb.Cache().Table(nbdb.LogicalSwitchPortTable)
	if t == nil || lsps == nil {
		return nil
	}
	rows := t.RowsShallow()
	byName := make(map[string]*sbdb.PortBinding, len(rows))
	check := n.upCheck
	n.upCheck = map[string]bool{}
	for id, m := range rows {
		pb := m.(*sbdb.PortBinding)
		byName[pb.LogicalPort] = pb
		if n.upDirty || n.pbSeen[id] != m {
			check[pb.LogicalPort] = true
		}
	}
	for id, m := range n.pbSeen {
		if _, ok := rows[id]; !ok {
			check[m.(*sbdb.PortBinding).LogicalPort] = true
		}
	}
	n.pbSeen = rows
	var lspRows map[string]model.Model
	if n.upDirty {
		lspRows = lsps.RowsShallow()
		for _, m := range lspRows {
			check[m.(*nbdb.LogicalSwitchPort).Name] = true
		}
	}
	n.upDirty = false
	if len(check) == 0 {
		return nil
	}
	var ops []ovsdb.Operation
	for name := range check {
		lsp, err := ovsdbclient.Lookup(n.nb, &nbdb.LogicalSwitchPort{Name: name})
		if err != nil {
			continue // no such NB port (a binding northd will delete)
		}
		pb := byName[name]
		want := lsp.Type == "router" || (pb != nil && pb.Up != nil && *pb.Up)
		if pb == nil && lsp.Type != "router" && lsp.Up == nil {
			continue // no binding yet: leave "up" unset until one exists
		}
		if lsp.Up != nil && *lsp.Up == want {
			continue
		}
		ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: nbdb.LogicalSwitchPortTable,
			Row:   ovsdb.Row{"up": ovsdb.OvsSet{GoSet: []any{want}}},
			Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: lsp.UUID}}}})
	}
	return ops
}

func (n *Northd) setNBOption(ctx context.Context, g *nbdb.NBGlobal, key, val string) error {
	_, err := n.nb.Transact(ctx, ovsdb.Operation{Op: ovsdb.OperationMutate, Table: nbdb.NBGlobalTable,
		Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: g.UUID}}},
		Mutations: []ovsdb.Mutation{{Column: "options", Mutator: ovsdb.MutateOperationInsert,
			Value: ovsdb.OvsMap{GoMap: map[any]any{key: val}}}}})
	if err != nil {
		return fmt.Errorf("set NB_Global options:%s: %w", key, err)
	}
	return nil
}

// randomMAC returns a random locally administered unicast MAC.
func randomMAC() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	b[0] = (b[0] | 0x02) &^ 0x01
	return net.HardwareAddr(b[:]).String()
}

// Run runs a northd until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	n, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	return n.Run(ctx)
}

// LoadSBRows reads every southbound row northd owns with one select
// transaction.
func LoadSBRows(ctx context.Context, c *ovsdbclient.Client) (*northd.SBRows, error) {
	tables := []string{"Datapath_Binding", "Port_Binding", "Multicast_Group", "Logical_Flow", "Logical_DP_Group",
		"Port_Group", "Address_Set", "SB_Global", "Load_Balancer", "HA_Chassis_Group", "HA_Chassis"}
	ops := make([]ovsdb.Operation, len(tables))
	for i, t := range tables {
		ops[i] = ovsdb.Operation{Op: ovsdb.OperationSelect, Table: t, Where: []ovsdb.Condition{}}
	}
	res, err := c.Transact(ctx, ops...)
	if err != nil {
		return nil, err
	}
	if len(res) < len(tables) {
		return nil, fmt.Errorf("select returned %d results for %d tables", len(res), len(tables))
	}
	r := &northd.SBRows{}
	for _, row := range res[0].Rows {
		r.Datapaths = append(r.Datapaths, northd.SBDatapath{UUID: uuidOf(row["_uuid"]), TunnelKey: intOf(row["tunnel_key"]),
			ExternalIDs: mapOf(row["external_ids"])})
	}
	for _, row := range res[1].Rows {
		r.Ports = append(r.Ports, northd.SBPort{UUID: uuidOf(row["_uuid"]), Datapath: uuidOf(row["datapath"]),
			LogicalPort: strOf(row["logical_port"]), TunnelKey: intOf(row["tunnel_key"]), Type: strOf(row["type"]),
			MAC: setOf(row["mac"]), Options: mapOf(row["options"]), PortSecurity: setOf(row["port_security"]),
			ParentPort: optStr(row["parent_port"]), Tag: optInt(row["tag"]), NATAddresses: setOf(row["nat_addresses"]),
			HAGroup: firstUUID(row["ha_chassis_group"])})
	}
	for _, row := range res[2].Rows {
		r.Multicast = append(r.Multicast, northd.SBMulticast{UUID: uuidOf(row["_uuid"]), Datapath: uuidOf(row["datapath"]),
			Name: strOf(row["name"]), TunnelKey: intOf(row["tunnel_key"]), Ports: uuidsOf(row["ports"])})
	}
	for _, row := range res[3].Rows {
		r.Flows = append(r.Flows, northd.SBFlow{UUID: uuidOf(row["_uuid"]), LogicalDatapath: firstUUID(row["logical_datapath"]),
			LogicalDPGroup: firstUUID(row["logical_dp_group"]), Pipeline: strOf(row["pipeline"]), TableID: intOf(row["table_id"]),
			Priority: intOf(row["priority"]), Match: strOf(row["match"]), Actions: strOf(row["actions"]),
			ExternalIDs: mapOf(row["external_ids"])})
	}
	for _, row := range res[4].Rows {
		r.Groups = append(r.Groups, northd.SBGroup{UUID: uuidOf(row["_uuid"]), Datapaths: uuidsOf(row["datapaths"])})
	}
	for _, row := range res[5].Rows {
		r.PortGroups = append(r.PortGroups, northd.SBNamedSet{UUID: uuidOf(row["_uuid"]), Name: strOf(row["name"]), Items: setOf(row["ports"])})
	}
	for _, row := range res[6].Rows {
		r.AddressSets = append(r.AddressSets, northd.SBNamedSet{UUID: uuidOf(row["_uuid"]), Name: strOf(row["name"]), Items: setOf(row["addresses"])})
	}
	for _, row := range res[7].Rows {
		r.Global = &northd.SBGlobal{UUID: uuidOf(row["_uuid"]), NbCfg: intOf(row["nb_cfg"]), Options: mapOf(row["options"])}
		break
	}
	for _, row := range res[8].Rows {
		l := northd.SBLB{UUID: uuidOf(row["_uuid"]), Name: strOf(row["name"]), Vips: mapOf(row["vips"]),
			Datapaths: uuidsOf(row["datapaths"]), DatapathGroup: firstUUID(row["datapath_group"]),
			Options: mapOf(row["options"]), ExternalIDs: mapOf(row["external_ids"])}
		if p := optStr(row["protocol"]); p != nil {
			l.Protocol = *p
		}
		r.LBs = append(r.LBs, l)
	}
	haChassis := map[string]northd.SBHAChassis{}
	for _, row := range res[10].Rows {
		id := uuidOf(row["_uuid"])
		haChassis[id] = northd.SBHAChassis{UUID: id, Chassis: firstUUID(row["chassis"]), Priority: intOf(row["priority"]),
			ExternalIDs: mapOf(row["external_ids"])}
	}
	for _, row := range res[9].Rows {
		g := northd.SBHAGroup{UUID: uuidOf(row["_uuid"]), Name: strOf(row["name"])}
		for _, c := range uuidsOf(row["ha_chassis"]) {
			if hc, ok := haChassis[c]; ok {
				g.Chassis = append(g.Chassis, hc)
			}
		}
		r.HAGroups = append(r.HAGroups, g)
	}
	return r, nil
}

// Decoders for rows of a raw select (libovsdb decodes atoms to string,
// float64, bool, ovsdb.UUID; sets to ovsdb.OvsSet unless they hold exactly
// one element; maps to ovsdb.OvsMap).

func uuidOf(v any) string {
	switch x := v.(type) {
	case ovsdb.UUID:
		return x.GoUUID
	case string:
		return x
	}
	return ""
}

func strOf(v any) string {
	s, _ := v.(string)
	return s
}

func intOf(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case int:
		return x
	case int64:
		return int(x)
	}
	return 0
}

func elems(v any) []any {
	if s, ok := v.(ovsdb.OvsSet); ok {
		return s.GoSet
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

func setOf(v any) []string {
	var out []string
	for _, e := range elems(v) {
		if s, ok := e.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func uuidsOf(v any) []string {
	var out []string
	for _, e := range elems(v) {
		if u := uuidOf(e); u != "" {
			out = append(out, u)
		}
	}
	return out
}

func firstUUID(v any) string {
	if us := uuidsOf(v); len(us) > 0 {
		return us[0]
	}
	return ""
}

func optStr(v any) *string {
	if ss := setOf(v); len(ss) > 0 {
		return &ss[0]
	}
	return nil
}

func optInt(v any) *int {
	for _, e := range elems(v) {
		i := intOf(e)
		return &i
	}
	return nil
}

func mapOf(v any) map[string]string {
	m, ok := v.(ovsdb.OvsMap)
	if !ok {
		return map[string]string{}
	}
	out := make(map[string]string, len(m.GoMap))
	for k, val := range m.GoMap {
		ks, _ := k.(string)
		vs, _ := val.(string)
		out[ks] = vs
	}
	return out
}
