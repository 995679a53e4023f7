package ovs

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/govn/govn/controller/ofctrl"
)

// Metrics are the OpenFlow syncer's Prometheus metrics.
type Metrics struct {
	SyncSeconds    prometheus.Histogram
	FlowMods       *prometheus.CounterVec // label op: add, modify, replace, delete
	GroupMods      *prometheus.CounterVec // label op: add, modify, delete
	Rejected       prometheus.Counter
	InstalledFlows prometheus.Gauge
	FullReads      prometheus.Counter
	// DatapathPurges counts datapath flow purges after committed changes
	// (label result: ok, error); only on ovs-vswitchd versions with the
	// userspace datapath's stale-megaflow bug (see megaflow.go).
	DatapathPurges *prometheus.CounterVec
}

// NewMetrics creates the metrics and registers them with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		SyncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "govn", Subsystem: "controller_openflow", Name: "sync_seconds",
			Help:    "Duration of one OpenFlow sync (normalize, diff, bundle).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		FlowMods: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "govn", Subsystem: "controller_openflow", Name: "flow_mods_total",
			Help: "Flow modifications applied, by operation.",
		}, []string{"op"}),
		GroupMods: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "govn", Subsystem: "controller_openflow", Name: "group_mods_total",
			Help: "Group modifications applied, by operation.",
		}, []string{"op"}),
		Rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "govn", Subsystem: "controller_openflow", Name: "rejected_total",
			Help: "Desired flows and groups that OVS refused.",
		}),
		InstalledFlows: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "govn", Subsystem: "controller_openflow", Name: "installed_flows",
			Help: "Flows owned by this controller on the integration bridge.",
		}),
		FullReads: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "govn", Subsystem: "controller_openflow", Name: "full_reads_total",
			Help: "Times the installed flows were re-read from the switch (start-up, failures, switch restarts).",
		}),
		DatapathPurges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "govn", Subsystem: "controller_openflow", Name: "datapath_purges_total",
			Help: "Datapath flow purges after committed flow changes (only on ovs-vswitchd versions whose userspace datapath can keep stale megaflows), by result.",
		}, []string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.SyncSeconds, m.FlowMods, m.GroupMods, m.Rejected, m.InstalledFlows, m.FullReads, m.DatapathPurges)
	}
	return m
}

func (m *Metrics) observe(d ofctrl.Diff, installed int) {
	if m == nil {
		return
	}
	m.FlowMods.WithLabelValues("add").Add(float64(len(d.AddFlows)))
	m.FlowMods.WithLabelValues("modify").Add(float64(len(d.ModFlows)))
	m.FlowMods.WithLabelValues("replace").Add(float64(len(d.ReplFlows)))
	m.FlowMods.WithLabelValues("delete").Add(float64(len(d.DelFlows)))
	m.GroupMods.WithLabelValues("add").Add(float64(len(d.AddGroups)))
	m.GroupMods.WithLabelValues("modify").Add(float64(len(d.ModGroups)))
	m.GroupMods.WithLabelValues("delete").Add(float64(len(d.DelGroups)))
	m.InstalledFlows.Set(float64(installed))
}
