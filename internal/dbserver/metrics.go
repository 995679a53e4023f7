package dbserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Metrics are gathered at scrape time from the child: whether it runs and
// answers on its unix socket, the database file size and, for a cluster
// member, its Raft role, term and status from `ovs-appctl cluster/status`.
//
//	govn_ovsdb_server_up{db}                      1 if ovsdb-server runs and accepts connections
//	govn_ovsdb_server_start_time_seconds{db}      when the current child was started
//	govn_ovsdb_db_file_bytes{db}                  size of the database file
//	govn_ovsdb_cluster_role{db,role}              1 for the member's current role (leader, follower, candidate)
//	govn_ovsdb_cluster_term{db}                   current Raft term
//	govn_ovsdb_cluster_member{db}                 1 if "Status: cluster member"
//	govn_ovsdb_cluster_uncommitted_entries{db}    log entries not yet committed
type collector struct {
	s *Server

	up, start, size, role, term, member, uncommitted *prometheus.Desc
}

func newCollector(s *Server) *collector {
	l := prometheus.Labels{"db": s.cfg.DB.Name}
	d := func(name, help string, vars ...string) *prometheus.Desc {
		return prometheus.NewDesc("govn_ovsdb_"+name, help, vars, l)
	}
	return &collector{
		s:           s,
		up:          d("server_up", "1 if ovsdb-server runs and accepts connections on its unix socket."),
		start:       d("server_start_time_seconds", "Unix time the current ovsdb-server child was started."),
		size:        d("db_file_bytes", "Size of the database file."),
		role:        d("cluster_role", "1 for the Raft role this member has now.", "role"),
		term:        d("cluster_term", "Current Raft term of this member."),
		member:      d("cluster_member", "1 if this member reports 'Status: cluster member'."),
		uncommitted: d("cluster_uncommitted_entries", "Raft log entries not yet committed."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.start, c.size, c.role, c.term, c.member, c.uncommitted} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	up := 0.0
	if c.s.Healthy() == nil {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, up)
	ch <- prometheus.MustNewConstMetric(c.start, prometheus.GaugeValue, float64(c.s.started.UnixNano())/1e9)
	if fi, err := os.Stat(c.s.dbPath); err == nil {
		ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(fi.Size()))
	}
	if c.s.cfg.ClusterLocal == "" || up == 0 {
		return
	}
	st, err := c.s.ClusterStatus(context.Background())
	if err != nil {
		c.s.log.Debug("cluster/status for metrics failed", zap.Error(err))
		return
	}
	if st.Role != "" {
		ch <- prometheus.MustNewConstMetric(c.role, prometheus.GaugeValue, 1, st.Role)
	}
	ch <- prometheus.MustNewConstMetric(c.term, prometheus.GaugeValue, float64(st.Term))
	member := 0.0
	if st.Status == "cluster member" {
		member = 1
	}
	ch <- prometheus.MustNewConstMetric(c.member, prometheus.GaugeValue, member)
	ch <- prometheus.MustNewConstMetric(c.uncommitted, prometheus.GaugeValue, float64(st.Uncommitted))
}

// ClusterStatus is the part of `ovs-appctl cluster/status` govn reports.
type ClusterStatus struct {
	Role        string // "leader", "follower", "candidate"
	Status      string // e.g. "cluster member", "joining cluster"
	Term        uint64
	Leader      string // "self", a server ID, or "unknown"
	Uncommitted uint64
}

// ClusterStatus asks the clustered server for its Raft state.
func (s *Server) ClusterStatus(ctx context.Context) (ClusterStatus, error) {
	var st ClusterStatus
	if s.cfg.ClusterLocal == "" {
		return st, errors.New("database is not clustered")
	}
	appctl, err := exec.LookPath("ovs-appctl")
	if err != nil {
		return st, errors.New("ovs-appctl not found in PATH; install Open vSwitch (Debian: apt install openvswitch-common)")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	out, err := runTool(ctx, appctl, "-t", s.CtlPath(), "cluster/status", s.cfg.DB.Name)
	if err != nil {
		return st, err
	}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Role":
			st.Role = v
		case "Status":
			st.Status = v
		case "Term":
			st.Term, _ = strconv.ParseUint(v, 10, 64)
		case "Leader":
			st.Leader = v
		case "Entries not yet committed":
			st.Uncommitted, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	if st.Role == "" {
		return st, fmt.Errorf("cluster/status output has no role: %q", out)
	}
	return st, nil
}

// CtlPath is the child's unixctl socket (for ovs-appctl -t).
func (s *Server) CtlPath() string { return filepath.Join(s.cfg.DataDir, s.cfg.DB.Base+".ctl") }

// Healthy returns nil if the child runs and accepts connections.
func (s *Server) Healthy() error {
	select {
	case <-s.done:
		return errors.New("ovsdb-server is not running")
	default:
	}
	c, err := net.DialTimeout("unix", s.sock, time.Second)
	if err != nil {
		return fmt.Errorf("ovsdb-server does not accept connections on %s: %w", s.sock, err)
	}
	return c.Close()
}

// Handler serves /metrics (Prometheus) and /healthz (200 if Healthy).
func (s *Server) Handler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(s))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.Healthy(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// listenMetrics binds the metrics address before anything starts, so a port
// in use is reported up front.
func listenMetrics(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("metrics address %s is already in use by another process", addr)
		}
		return nil, fmt.Errorf("metrics address %s: %w", addr, err)
	}
	return l, nil
}
