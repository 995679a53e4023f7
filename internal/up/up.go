// Package up runs govn's central components for one host in one process:
// the northbound and southbound databases (each a supervised ovsdb-server
// child), northd, the gRPC API and, when the host runs Open vSwitch, a local
// controller. It is what `govn up` runs.
//
// Start order: both databases (in parallel; each waits until its unix socket
// answers), then northd and the API, then the controller. Stop order is the
// reverse, so the controller still reaches the southbound database to
// unregister its chassis, and the databases go last.
//
// Any component that ends on its own (an ovsdb-server that dies, an API that
// cannot serve, …) stops all the others and Run returns an error naming it.
// Cancelling Run's context is the clean shutdown: Run returns nil once every
// component has stopped and every ovsdb-server child has exited.
package up

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/govn/govn/api/server"
	ctrlrun "github.com/govn/govn/controller/run"
	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/nbdb"
	northdrun "github.com/govn/govn/northd/run"
	"github.com/govn/govn/sbdb"
)

// Defaults.
const (
	DefaultDataDir = "/var/lib/govn"
	// DefaultAPIListen is also govnctl's default --server.
	DefaultAPIListen = "127.0.0.1:6690"
)

// Controller modes.
const (
	ControllerAuto = "auto" // run one if the local Open vSwitch database answers
	ControllerOn   = "on"   // run one; fail if Open vSwitch is not there
	ControllerOff  = "off"  // never
)

// Config configures Run. The zero value (plus a Logger) is a working
// single-host setup under DefaultDataDir.
type Config struct {
	// DataDir holds both databases, their logs, pid files and unix sockets
	// (ovnnb_db.sock, ovnsb_db.sock). Created if absent.
	DataDir string
	// NBRemotes / SBRemotes are extra ovsdb-server listeners, e.g.
	// "ptcp:6641:127.0.0.1"; the unix socket in DataDir is always there.
	NBRemotes, SBRemotes []string
	// APIListen is the gRPC address (HOST:PORT or unix:PATH).
	APIListen string
	// APIMetricsAddr, NorthdMetricsAddr: Prometheus listeners ("" = off).
	APIMetricsAddr, NorthdMetricsAddr string

	// Controller is ControllerAuto (default), ControllerOn or ControllerOff.
	Controller string
	// OVS is the local Open_vSwitch database (default: the controller's
	// default, $OVS_RUNDIR/db.sock or /var/run/openvswitch/db.sock).
	OVS string
	// ControllerOptions are passed to the controller; its OVS and southbound
	// remote are filled in by Run (the southbound remote is the local one).
	ControllerOptions ctrlrun.Options

	// Ready, if set, is called once everything has started.
	Ready func(Info)
	// Logger receives every component's logs (named nbdb, sbdb, …).
	Logger *zap.Logger
}

// Info describes a running setup: where to connect.
type Info struct {
	DataDir    string
	NB, SB     string // unix:PATH of the databases
	API        string // the API's listen address as bound (HOST:PORT or unix:PATH)
	Controller string // "" if no controller runs
	// NoController says why no controller runs (ControllerAuto only).
	NoController string
}

// component is one running part.
type component struct {
	name   string
	cancel context.CancelFunc
	done   chan struct{}
	err    error // valid after done
}

type supervisor struct {
	log   *zap.Logger
	mu    sync.Mutex
	comps []*component
	exit  chan *component // every component sends itself here when it ends
}

// start runs f in a goroutine with its own context (cancelled only by stop,
// so that the supervisor controls the stop order).
func (s *supervisor) start(name string, f func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &component{name: name, cancel: cancel, done: make(chan struct{})}
	s.mu.Lock()
	s.comps = append(s.comps, c)
	s.mu.Unlock()
	go func() {
		c.err = f(ctx)
		close(c.done)
		s.exit <- c
	}()
}

// stopAll stops every component in reverse start order and waits for each.
// The error joins what components returned while stopping (not failed, whose
// error the caller already has).
func (s *supervisor) stopAll(failed *component) error {
	s.mu.Lock()
	comps := append([]*component(nil), s.comps...)
	s.mu.Unlock()
	var errs []error
	for i := len(comps) - 1; i >= 0; i-- {
		c := comps[i]
		c.cancel()
		<-c.done
		if c != failed && c.err != nil {
			errs = append(errs, fmt.Errorf("%s: stopping: %w", c.name, c.err))
		}
		s.log.Info("stopped", zap.String("component", c.name))
	}
	return errors.Join(errs...)
}

// failure turns a component's unexpected end into an error.
func failure(c *component) error {
	if c.err == nil {
		return fmt.Errorf("%s exited unexpectedly", c.name)
	}
	return fmt.Errorf("%s failed: %w", c.name, c.err)
}

// Run starts everything and supervises it until ctx is cancelled (returns
// nil after a clean stop) or a component ends on its own (returns an error
// naming it, after stopping the rest).
func Run(ctx context.Context, cfg Config) error {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	if cfg.APIListen == "" {
		cfg.APIListen = DefaultAPIListen
	}
	switch cfg.Controller {
	case "":
		cfg.Controller = ControllerAuto
	case ControllerAuto, ControllerOn, ControllerOff:
	default:
		return fmt.Errorf("controller mode %q: want auto, on or off", cfg.Controller)
	}
	if cfg.OVS == "" {
		cfg.OVS = ctrlrun.DefaultOVS()
	}
	if err := os.MkdirAll(dataDir, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	info := Info{DataDir: dataDir,
		NB: "unix:" + filepath.Join(dataDir, nbdb.FileBase+".sock"),
		SB: "unix:" + filepath.Join(dataDir, sbdb.FileBase+".sock")}
	// Decide about the controller before starting anything, so that
	// --controller=on without Open vSwitch fails fast.
	runController := false
	switch cfg.Controller {
	case ControllerOn:
		if err := probeUnix(cfg.OVS); err != nil {
			return fmt.Errorf("--controller=on: local Open vSwitch database %s: %w", cfg.OVS, err)
		}
		runController = true
	case ControllerAuto:
		if err := probeUnix(cfg.OVS); err != nil {
			info.NoController = fmt.Sprintf("no Open vSwitch database at %s (%v)", cfg.OVS, err)
		} else {
			runController = true
		}
	case ControllerOff:
		info.NoController = "disabled (--controller=off)"
	}

	s := &supervisor{log: log.Named("up"), exit: make(chan *component, 8)}
	// stopWith stops everything and returns the error for cause (nil if
	// cause is nil, i.e. a requested stop).
	stopWith := func(cause error, failed *component) error {
		serr := s.stopAll(failed)
		if cause == nil {
			return serr
		}
		if serr != nil {
			return fmt.Errorf("%w (and %v)", cause, serr)
		}
		return cause
	}

	// Databases, in parallel; both must be ready before anything else starts.
	type dbStart struct {
		name string
		cfg  dbserver.Config
	}
	dbs := []dbStart{
		{"nbdb", dbserver.Config{DataDir: dataDir, Remotes: withUnix(cfg.NBRemotes, info.NB), Logger: log.Named("nbdb"),
			DB: dbserver.Database{Name: nbdb.DatabaseName, Schema: nbdb.SchemaJSON, Base: nbdb.FileBase, GlobalTable: nbdb.GlobalTable}}},
		{"sbdb", dbserver.Config{DataDir: dataDir, Remotes: withUnix(cfg.SBRemotes, info.SB), Logger: log.Named("sbdb"),
			DB: dbserver.Database{Name: sbdb.DatabaseName, Schema: sbdb.SchemaJSON, Base: sbdb.FileBase, GlobalTable: sbdb.GlobalTable}}},
	}
	ready := make(chan error, len(dbs))
	for _, d := range dbs {
		s.start(d.name, func(cctx context.Context) error {
			srv, err := dbserver.Start(cctx, d.cfg)
			if err != nil {
				ready <- fmt.Errorf("%s: %w", d.name, err)
				if cctx.Err() != nil {
					return nil
				}
				return err
			}
			ready <- nil
			select {
			case <-cctx.Done():
				return srv.Stop()
			case <-srv.Done():
				return srv.Wait()
			}
		})
	}
	for range dbs {
		select {
		case err := <-ready:
			if err != nil {
				return stopWith(err, nil)
			}
		case <-ctx.Done():
			return stopWith(nil, nil)
		}
	}
	log.Info("databases ready", zap.String("nb", info.NB), zap.String("sb", info.SB))

	// northd.
	n, err := northdrun.Start(ctx, northdrun.Config{NB: []string{info.NB}, SB: []string{info.SB},
		MetricsAddr: cfg.NorthdMetricsAddr, Logger: log.Named("northd"), ReconcileInterval: 10 * time.Minute})
	if err != nil {
		return stopWith(fmt.Errorf("northd: %w", err), nil)
	}
	s.start("northd", n.Run)

	// API.
	api, err := server.Start(ctx, server.Config{NB: []string{info.NB}, SB: []string{info.SB}, Listen: cfg.APIListen,
		MetricsAddr: cfg.APIMetricsAddr, Logger: log.Named("api")})
	if err != nil {
		return stopWith(fmt.Errorf("api: %w", err), nil)
	}
	info.API = api.Addr()
	if strings.HasPrefix(cfg.APIListen, "unix:") {
		info.API = cfg.APIListen
	}
	s.start("api", func(cctx context.Context) error {
		defer api.Stop()
		select {
		case <-cctx.Done():
			return nil
		case err := <-api.Done():
			return err
		}
	})

	// Controller.
	if runController {
		o := cfg.ControllerOptions
		o.OVS = cfg.OVS
		o.Remote = info.SB
		o.Log = log.Named("controller")
		if o.Resync == 0 {
			o.Resync = 30 * time.Second
		}
		c := ctrlrun.New(o)
		info.Controller = cfg.OVS
		s.start("controller", c.Run)
	}

	log.Info("govn is up", zap.String("data-dir", dataDir), zap.String("api", info.API),
		zap.String("controller", info.Controller))
	if cfg.Ready != nil {
		cfg.Ready(info)
	}
	select {
	case <-ctx.Done():
		log.Info("stopping")
		return stopWith(nil, nil)
	case c := <-s.exit:
		err := failure(c)
		log.Error("component ended; stopping everything", zap.String("component", c.name), zap.Error(err))
		return stopWith(err, c)
	}
}

// withUnix returns the remotes plus punix:PATH for the unix endpoint.
func withUnix(extra []string, unix string) []string {
	return append([]string{"p" + unix}, extra...)
}

// probeUnix checks that a unix:PATH endpoint accepts connections.
func probeUnix(endpoint string) error {
	path, ok := strings.CutPrefix(endpoint, "unix:")
	if !ok {
		return fmt.Errorf("%q: want unix:PATH", endpoint)
	}
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err != nil {
		return err
	}
	return conn.Close()
}
