package run

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/govn/govn/controller/ovs"
)

// metrics are the controller's Prometheus metrics (the OpenFlow syncer
// reports its own through ovs.Metrics on the same registry).
type metrics struct {
	reg            *prometheus.Registry
	computeSeconds prometheus.Histogram
	installSeconds prometheus.Histogram
	sbEvents       *prometheus.CounterVec
	lflowErrors    prometheus.Gauge
	lbErrors       prometheus.Gauge
	logicalFlows   prometheus.Gauge
	desiredFlows   prometheus.Gauge
	localPorts     prometheus.Gauge
	localDatapaths prometheus.Gauge
	claims         *prometheus.CounterVec
	conflicts      prometheus.Counter
	monitorChanges prometheus.Counter
	nbCfg          prometheus.Gauge
	recomputes     *prometheus.CounterVec
	lastRecompute  *prometheus.GaugeVec
	openflow       *ovs.Metrics
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	g := func(name, help string) prometheus.Gauge {
		x := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "govn", Subsystem: "controller", Name: name, Help: help})
		reg.MustRegister(x)
		return x
	}
	h := func(name, help string) prometheus.Histogram {
		x := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "govn", Subsystem: "controller", Name: name, Help: help,
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)})
		reg.MustRegister(x)
		return x
	}
	m := &metrics{
		reg:            reg,
		computeSeconds: h("compute_seconds", "Time to compute the desired OpenFlow flows (binding, physical, logical translation)."),
		installSeconds: h("install_seconds", "Time to install the desired flows into br-int (diff and bundle)."),
		sbEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "govn", Subsystem: "controller",
			Name: "sb_events_total", Help: "Southbound database row changes received, by table and operation."}, []string{"table", "op"}),
		lflowErrors:    g("logical_flow_errors", "Logical flows that failed to translate in the last run (skipped)."),
		lbErrors:       g("load_balancer_errors", "Load_Balancer VIP entries (or options) of local datapaths skipped as invalid in the last run."),
		logicalFlows:   g("logical_flows", "Logical flows of local datapaths translated in the last run."),
		desiredFlows:   g("desired_openflow_flows", "OpenFlow flows desired in the last run (physical and logical)."),
		localPorts:     g("local_ports", "Logical ports bound to this chassis."),
		localDatapaths: g("local_datapaths", "Logical datapaths this chassis installs flows for."),
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "govn", Subsystem: "controller",
			Name: "port_binding_changes_total", Help: "Port_Binding claims, releases and up changes written."}, []string{"action"}),
		conflicts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "govn", Subsystem: "controller",
			Name: "port_binding_conflicts_total", Help: "Times a port was left to another chassis that also has an interface for it."}),
		monitorChanges: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "govn", Subsystem: "controller",
			Name: "monitor_condition_changes_total", Help: "Southbound conditional monitor changes (reconnections with new conditions)."}),
		nbCfg: g("nb_cfg", "Last nb_cfg acknowledged in Chassis_Private."),
		recomputes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "govn", Subsystem: "controller",
			Name: "recompute_total", Help: "Runs that computed and synced the OpenFlow flows: full (caches dropped, forced by SIGHUP) or incremental."}, []string{"type"}),
		lastRecompute: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "govn", Subsystem: "controller",
			Name: "last_recompute_seconds", Help: "Duration of the last full or incremental recompute (compute and install)."}, []string{"type"}),
	}
	reg.MustRegister(m.sbEvents, m.claims, m.conflicts, m.monitorChanges, m.recomputes, m.lastRecompute)
	for _, t := range []string{"full", "incremental"} {
		m.recomputes.WithLabelValues(t)
	}
	m.openflow = ovs.NewMetrics(reg)
	return m
}

// health is what /healthz reports.
type health struct {
	mu     sync.Mutex
	err    error
	synced time.Time
}

func (h *health) set(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
	if err == nil {
		h.synced = time.Now()
	}
}

func (h *health) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	h.mu.Lock()
	err, synced := h.err, h.synced
	h.mu.Unlock()
	switch {
	case err != nil:
		http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
	case synced.IsZero():
		http.Error(w, "starting: flows not installed yet", http.StatusServiceUnavailable)
	default:
		_, _ = w.Write([]byte("ok: flows installed " + synced.UTC().Format(time.RFC3339Nano) + "\n"))
	}
}

// serveMetrics serves /metrics, /healthz and /debug/pprof/ on addr until ctx ends.
func serveMetrics(ctx context.Context, addr string, m *metrics, h *health, log *zap.Logger) (net.Addr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.Handle("/healthz", h)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", zap.Error(err))
		}
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	return l.Addr(), nil
}
