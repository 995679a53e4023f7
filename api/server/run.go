package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

// Config is what `govn api` runs.
type Config struct {
	NB          []string // northbound remotes (unix:, tcp:, ssl:)
	SB          []string // southbound remotes for Trace (optional; without them Trace fails with FailedPrecondition)
	Listen      string   // gRPC listen address, host:port or unix:PATH
	TLSCert     string   // server certificate (enables TLS)
	TLSKey      string   // server key
	TLSCA       string   // CA for client certificates (enables mTLS)
	MetricsAddr string   // Prometheus /metrics listen address ("" = off)
	Logger      *zap.Logger
	// Registry for metrics (default: a new registry with Go/process collectors).
	Registry *prometheus.Registry
	// ConnectTimeout bounds the first connection to the NB (and SB) database (default 60s).
	ConnectTimeout time.Duration
	// WatchBuffer is the per-watcher event buffer (default 4096).
	WatchBuffer int
}

// Running is a started API server.
type Running struct {
	Server      *Server
	grpc        *grpc.Server
	lis         net.Listener
	metrics     *http.Server
	metricsLis  net.Listener
	health      *health.Server
	nb          *ovsdbclient.Client
	sb          *ovsdbclient.Client
	done        chan error
	log         *zap.Logger
	stopMetrics func()
}

// Addr is the gRPC listen address.
func (r *Running) Addr() string { return r.lis.Addr().String() }

// MetricsAddr is the metrics listen address ("" if off).
func (r *Running) MetricsAddr() string {
	if r.metricsLis == nil {
		return ""
	}
	return r.metricsLis.Addr().String()
}

// NB is the server's northbound client.
func (r *Running) NB() *ovsdbclient.Client { return r.nb }

// Stop stops serving (gracefully, bounded) and closes the NB connection.
func (r *Running) Stop() {
	r.stopMetrics()
	r.health.Shutdown()
	r.Server.Close() // ends Watch streams so the graceful stop can finish
	t := time.AfterFunc(5*time.Second, r.grpc.Stop)
	r.grpc.GracefulStop()
	t.Stop()
	if r.metrics != nil {
		_ = r.metrics.Close()
	}
	r.nb.Close()
	if r.sb != nil {
		r.sb.Close()
	}
}

// Done reports the serve loop's end.
func (r *Running) Done() <-chan error { return r.done }

// TLSConfig builds the server TLS configuration: cert+key enable TLS; a CA
// additionally requires and verifies client certificates (mTLS).
func TLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		if caFile != "" {
			return nil, errors.New("--tls-ca needs --tls-cert and --tls-key")
		}
		return nil, nil
	}
	if certFile == "" || keyFile == "" {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadCAs(caFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func loadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s has no PEM certificates", file)
	}
	return pool, nil
}

func listen(addr string) (net.Listener, error) {
	if len(addr) > 5 && addr[:5] == "unix:" {
		_ = os.Remove(addr[5:])
		return net.Listen("unix", addr[5:])
	}
	return net.Listen("tcp", addr)
}

// Start connects to the NB database, then serves the API (and metrics).
func Start(ctx context.Context, cfg Config) (*Running, error) {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if len(cfg.NB) == 0 {
		return nil, errors.New("no northbound database given (--nb unix:PATH|tcp:IP:PORT|ssl:IP:PORT)")
	}
	tlsCfg, err := TLSConfig(cfg.TLSCert, cfg.TLSKey, cfg.TLSCA)
	if err != nil {
		return nil, err
	}
	reg := cfg.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	lis, err := listen(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	var mlis net.Listener
	if cfg.MetricsAddr != "" {
		if mlis, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			lis.Close()
			return nil, fmt.Errorf("metrics listen %s: %w", cfg.MetricsAddr, err)
		}
	}
	timeout := cfg.ConnectTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	nb, err := nbdb.NewClient(cctx, cfg.NB, ovsdbclient.WithLogger(log.Named("nb")))
	cancel()
	if err != nil {
		lis.Close()
		if mlis != nil {
			mlis.Close()
		}
		return nil, err
	}
	var sb *ovsdbclient.Client
	if len(cfg.SB) > 0 {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		sb, err = ConnectSB(cctx, cfg.SB, ovsdbclient.WithLogger(log.Named("sb")))
		cancel()
		if err != nil {
			nb.Close()
			lis.Close()
			if mlis != nil {
				mlis.Close()
			}
			return nil, fmt.Errorf("southbound database (for Trace): %w", err)
		}
	}
	srv := New(nb, Options{Logger: log, WatchBuffer: cfg.WatchBuffer, SB: sb, OnTraceLoad: m.traceLoad})
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(unaryInterceptor(log.Named("grpc"), m)),
		grpc.ChainStreamInterceptor(streamInterceptor(log.Named("grpc"), m)),
	}
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	g := grpc.NewServer(opts...)
	srv.Register(g)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(g, hs)
	reflection.Register(g)
	r := &Running{Server: srv, grpc: g, lis: lis, health: hs, nb: nb, sb: sb, done: make(chan error, 1), log: log, metricsLis: mlis}
	// Health follows the NB connection.
	hctx, hcancel := context.WithCancel(context.Background())
	r.stopMetrics = hcancel
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	hs.SetServingStatus("govn.v1", healthpb.HealthCheckResponse_NOT_SERVING)
	if nb.Connected() {
		hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		hs.SetServingStatus("govn.v1", healthpb.HealthCheckResponse_SERVING)
		m.nbConnected.Set(1)
	}
	go func() {
		last := healthpb.HealthCheckResponse_UNKNOWN
		for {
			st := healthpb.HealthCheckResponse_SERVING
			if !nb.Connected() {
				st = healthpb.HealthCheckResponse_NOT_SERVING
			}
			if st != last {
				hs.SetServingStatus("", st)
				hs.SetServingStatus("govn.v1", st)
				m.nbConnected.Set(map[bool]float64{true: 1, false: 0}[st == healthpb.HealthCheckResponse_SERVING])
				last = st
			}
			if sb != nil {
				m.sbConnected.Set(map[bool]float64{true: 1, false: 0}[sb.Connected()])
			}
			select {
			case <-hctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
	}()
	if mlis != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		r.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = r.metrics.Serve(mlis) }()
	}
	go func() { r.done <- g.Serve(lis) }()
	log.Info("serving govn.v1 API", zap.String("listen", lis.Addr().String()), zap.Strings("nb", cfg.NB), zap.Strings("sb", cfg.SB),
		zap.Bool("tls", tlsCfg != nil), zap.Bool("mtls", cfg.TLSCA != ""), zap.String("metrics", cfg.MetricsAddr))
	return r, nil
}

// Run serves until ctx ends.
func Run(ctx context.Context, cfg Config) error {
	r, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		r.Stop()
		return nil
	case err := <-r.Done():
		r.Stop()
		return err
	}
}

// ---- interceptors: zap request logs and Prometheus metrics ----

type metrics struct {
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	inflight    prometheus.Gauge
	nbConnected prometheus.Gauge
	sbConnected prometheus.Gauge
	traceLoads  *prometheus.CounterVec
	traceLoadS  prometheus.Histogram
}

// traceLoad records a (re)build of Trace's southbound snapshot.
func (m *metrics) traceLoad(d time.Duration, err error) {
	res := "ok"
	if err != nil {
		res = "error"
	}
	m.traceLoads.WithLabelValues(res).Inc()
	m.traceLoadS.Observe(d.Seconds())
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "govn_api_requests_total", Help: "gRPC requests handled, by method and status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "govn_api_request_duration_seconds", Help: "gRPC request latency, by method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"method"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "govn_api_requests_in_flight", Help: "gRPC requests being handled.",
		}),
		nbConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "govn_api_nb_connected", Help: "1 if the API server is connected to the northbound database.",
		}),
		sbConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "govn_api_sb_connected", Help: "1 if the API server is connected to the southbound database (--sb, for Trace).",
		}),
		traceLoads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "govn_api_trace_snapshot_loads_total",
			Help: "Builds of Trace's snapshot of the southbound database (one per southbound change that a trace needed), by result.",
		}, []string{"result"}),
		traceLoadS: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "govn_api_trace_snapshot_load_seconds", Help: "Time to build Trace's snapshot of the southbound database.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.inflight, m.nbConnected, m.sbConnected, m.traceLoads, m.traceLoadS} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(log *zap.Logger, method string, start time.Time, err error) {
	d := time.Since(start)
	code := status.Code(err)
	m.requests.WithLabelValues(method, code.String()).Inc()
	m.latency.WithLabelValues(method).Observe(d.Seconds())
	fields := []zap.Field{zap.String("method", method), zap.String("code", code.String()), zap.Duration("duration", d)}
	switch code {
	case codes.OK:
		log.Info("request", fields...)
	case codes.Internal, codes.Unavailable, codes.Unknown, codes.DataLoss:
		log.Error("request", append(fields, zap.String("error", status.Convert(err).Message()))...)
	default:
		log.Info("request", append(fields, zap.String("error", status.Convert(err).Message()))...)
	}
}

func unaryInterceptor(log *zap.Logger, m *metrics) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		m.inflight.Inc()
		defer m.inflight.Dec()
		resp, err := h(ctx, req)
		m.observe(log, info.FullMethod, start, err)
		return resp, err
	}
}

func streamInterceptor(log *zap.Logger, m *metrics) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		start := time.Now()
		m.inflight.Inc()
		defer m.inflight.Dec()
		err := h(srv, ss)
		m.observe(log, info.FullMethod, start, err)
		return err
	}
}
