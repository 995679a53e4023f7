// Package ovsdbclient is the shared part of govn's OVSDB clients (nbdb.NewClient,
// sbdb.NewClient): a libovsdb client connected to one of several remotes,
// reconnecting with backoff, talking only to the Raft leader of a clustered
// database, monitoring all tables (or a chosen subset, or conditionally), with
// client-side indexes, and a Transact that turns per-operation failures into
// one readable error.
//
// Ops convention: helpers named XxxOps(c, ops, ...) append the operations for
// one change to ops and return the longer slice; a reconcile loop builds one
// slice and commits it with a single Transact, so the change is atomic.
package ovsdbclient

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Client is a connected libovsdb client. All of libovsdb's client.Client API
// (Get, List, Where, WhereCache, Create, Cache, ...) is available; Transact
// is replaced by one that checks every operation's result.
type Client struct {
	client.Client
	log *zap.Logger
	// closed silences libovsdb's logger once Close is called: its
	// reconnect goroutine may still report a failed attempt after Close
	// returns, about a connection nobody wants any more.
	closed *atomic.Bool
}

// Close closes the connection; libovsdb logs nothing after it.
func (c *Client) Close() {
	c.closed.Store(true)
	c.Client.Close()
}

// Option configures New.
type Option func(*options)

type options struct {
	log            *zap.Logger
	tables         []string
	monitorOpts    []client.MonitorOption
	noMonitor      bool
	leaderOnly     bool
	tlsConfig      *tls.Config
	initialBackoff time.Duration
	maxBackoff     time.Duration
	probe          time.Duration
	indexes        map[string][]model.ClientIndex
	noDefaultIx    bool
	metrics        prometheus.Registerer
	metricsName    string
}

// WithLogger logs connection events (and libovsdb's own messages at debug level).
func WithLogger(l *zap.Logger) Option { return func(o *options) { o.log = l } }

// WithTables monitors only the named tables (all columns), instead of all.
func WithTables(tables ...string) Option {
	return func(o *options) { o.tables = append(o.tables, tables...) }
}

// WithMonitor monitors with libovsdb monitor options instead of all tables,
// e.g. client.WithTable(&sbdb.Chassis{}) or client.WithConditionalTable(
// &sbdb.PortBinding{}, []model.Condition{...}) for conditional monitoring.
func WithMonitor(opts ...client.MonitorOption) Option {
	return func(o *options) { o.monitorOpts = append(o.monitorOpts, opts...) }
}

// WithoutMonitor connects without monitoring anything (write-only clients).
func WithoutMonitor() Option { return func(o *options) { o.noMonitor = true } }

// WithLeaderOnly chooses whether, for a clustered database, the client talks
// only to the Raft leader (default true; reads from a follower may be stale).
func WithLeaderOnly(b bool) Option { return func(o *options) { o.leaderOnly = b } }

// WithTLS sets the TLS configuration for ssl: remotes.
func WithTLS(c *tls.Config) Option { return func(o *options) { o.tlsConfig = c } }

// WithBackoff sets the reconnect backoff (exponential from initial to max).
// Defaults: 100ms to 5s.
func WithBackoff(initial, max time.Duration) Option {
	return func(o *options) { o.initialBackoff, o.maxBackoff = initial, max }
}

// WithInactivityProbe sends an echo after d of silence and reconnects if it
// fails (0 disables; default 0).
func WithInactivityProbe(d time.Duration) Option { return func(o *options) { o.probe = d } }

// WithMetrics registers libovsdb's client metrics (govn_ovsdb_client_*,
// labelled with primary_model and client=name) in reg. name must be unique among
// the clients registered in reg.
func WithMetrics(reg prometheus.Registerer, name string) Option {
	return func(o *options) { o.metrics, o.metricsName = reg, name }
}

// WithIndexes adds client-side indexes (table → indexes) to the defaults.
func WithIndexes(ix map[string][]model.ClientIndex) Option {
	return func(o *options) {
		if o.indexes == nil {
			o.indexes = map[string][]model.ClientIndex{}
		}
		for t, list := range ix {
			o.indexes[t] = append(o.indexes[t], list...)
		}
	}
}

// WithoutDefaultIndexes leaves out the database's standard client indexes
// (sbdb.ClientIndexes, nbdb.ClientIndexes); indexes given with WithIndexes
// are kept. A client index costs, in the cache, a set of row UUIDs per
// indexed value and, per row insert or update, a few short-lived sets; a
// client that finds rows only by UUID or by a schema index (govn
// controller's southbound clients: 36k Logical_Flow rows indexed by
// logical_datapath for nothing) is better off without them. Rows are still
// found by UUID and schema indexes (Lookup, Where); a lookup by a column
// that is no longer indexed fails with ErrNotFound.
func WithoutDefaultIndexes() Option { return func(o *options) { o.noDefaultIx = true } }

// Index is a convenience for a client index over plain columns.
func Index(columns ...string) model.ClientIndex {
	ix := model.ClientIndex{}
	for _, c := range columns {
		ix.Columns = append(ix.Columns, model.ColumnKey{Column: c})
	}
	return ix
}

// New connects a client for dbModel to one of remotes ("unix:PATH",
// "tcp:IP:PORT", "ssl:IP:PORT"). defaultIndexes are the database's standard
// client indexes. New retries with backoff until it connects and the monitor
// is set up, or ctx ends. After that the client reconnects on its own.
func New(ctx context.Context, dbModel model.ClientDBModel, remotes []string,
	defaultIndexes map[string][]model.ClientIndex, opts ...Option) (*Client, error) {
	o := &options{leaderOnly: true, initialBackoff: 100 * time.Millisecond, maxBackoff: 5 * time.Second}
	for _, f := range opts {
		f(o)
	}
	if !o.noDefaultIx {
		mine := o.indexes
		o.indexes = nil
		WithIndexes(defaultIndexes)(o)
		WithIndexes(mine)(o)
	}
	if o.log == nil {
		o.log = zap.NewNop()
	}
	if len(remotes) == 0 {
		return nil, errors.New("no OVSDB remote given")
	}
	for _, t := range o.tables {
		if _, ok := dbModel.Types()[t]; !ok {
			return nil, fmt.Errorf("cannot monitor table %q: not in the %s model", t, dbModel.Name())
		}
	}
	log := o.log.With(zap.String("db", dbModel.Name()))
	dbModel.SetIndexes(o.indexes)

	newBackoff := func() backoff.BackOff {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval = o.initialBackoff
		b.MaxInterval = o.maxBackoff
		b.MaxElapsedTime = 0
		return b
	}
	closed := new(atomic.Bool)
	lr := logr.New(&zapSink{log: log.Named("libovsdb"), closed: closed})
	copts := []client.Option{
		client.WithLeaderOnly(o.leaderOnly),
		client.WithLogger(&lr),
	}
	if o.probe > 0 {
		copts = append(copts, client.WithInactivityCheck(o.probe, o.probe/2, newBackoff()))
	} else {
		copts = append(copts, client.WithReconnect(5*time.Second, newBackoff()))
	}
	if o.metrics != nil {
		reg := prometheus.WrapRegistererWith(prometheus.Labels{"client": o.metricsName}, o.metrics)
		copts = append(copts, client.WithMetricsRegistryNamespaceSubsystem(reg, "govn", "ovsdb_client"))
	}
	if o.tlsConfig != nil {
		copts = append(copts, client.WithTLSConfig(o.tlsConfig))
	}
	for _, r := range remotes {
		if !strings.HasPrefix(r, "unix:") && !strings.HasPrefix(r, "tcp:") && !strings.HasPrefix(r, "ssl:") {
			return nil, fmt.Errorf("OVSDB remote %q: expected unix:PATH, tcp:IP:PORT or ssl:IP:PORT", r)
		}
		copts = append(copts, client.WithEndpoint(r))
	}
	c, err := client.NewOVSDBClient(dbModel, copts...)
	if err != nil {
		return nil, err
	}

	b := newBackoff()
	for {
		err = connectAndMonitor(ctx, c, o)
		if err == nil {
			break
		}
		c.Disconnect()
		wait := b.NextBackOff()
		log.Info("OVSDB connection failed; retrying", zap.Strings("remotes", remotes), zap.Error(err), zap.Duration("in", wait))
		select {
		case <-ctx.Done():
			c.Close()
			return nil, fmt.Errorf("connect to %s at %s: %w (last error: %v)", dbModel.Name(), strings.Join(remotes, ","), ctx.Err(), err)
		case <-time.After(wait):
		}
	}
	log.Info("connected", zap.String("endpoint", c.CurrentEndpoint()))
	return &Client{Client: c, log: log, closed: closed}, nil
}

func connectAndMonitor(ctx context.Context, c client.Client, o *options) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := c.Connect(cctx); err != nil {
		return err
	}
	switch {
	case o.noMonitor:
		return nil
	case len(o.tables) > 0 || len(o.monitorOpts) > 0:
		m := c.NewMonitor(o.monitorOpts...)
		for _, t := range o.tables {
			if c.Schema().Table(t) == nil {
				return fmt.Errorf("cannot monitor table %q: not in the %s schema", t, c.Schema().Name)
			}
			m.Tables = append(m.Tables, client.TableMonitor{Table: t})
		}
		_, err := c.Monitor(cctx, m)
		return err
	default:
		_, err := c.MonitorAll(cctx)
		return err
	}
}

// Transact commits ops as one transaction and checks every operation's
// result. On failure nothing is committed (OVSDB transactions are atomic) and
// the error names each failed operation with the server's error and details.
func (c *Client) Transact(ctx context.Context, ops ...ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	res, err := c.Client.Transact(ctx, ops...)
	if err != nil {
		return nil, fmt.Errorf("%s transaction (%d operations) failed: %w", c.Schema().Name, len(ops), err)
	}
	if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		return res, &TransactionError{DB: c.Schema().Name, Ops: ops, Results: res}
	}
	return res, nil
}

// TransactionError reports a transaction the server rejected.
type TransactionError struct {
	DB      string
	Ops     []ovsdb.Operation
	Results []ovsdb.OperationResult
}

func (e *TransactionError) Error() string {
	var parts []string
	for i, r := range e.Results {
		if r.Error == "" {
			continue
		}
		where := "commit"
		if i < len(e.Ops) {
			where = fmt.Sprintf("operation %d (%s %s)", i, e.Ops[i].Op, e.Ops[i].Table)
		}
		msg := where + ": " + r.Error
		if r.Details != "" {
			msg += ": " + r.Details
		}
		parts = append(parts, msg)
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%s transaction failed", e.DB)
	}
	return fmt.Sprintf("%s transaction rejected, nothing committed: %s", e.DB, strings.Join(parts, "; "))
}

// ServerErrors returns the server's error strings (e.g. "constraint
// violation", "referential integrity violation") in operation order.
func (e *TransactionError) ServerErrors() []string {
	var out []string
	for _, r := range e.Results {
		if r.Error != "" {
			out = append(out, r.Error)
		}
	}
	return out
}
