// Package server implements the govn.v1 gRPC API over the northbound
// database: every request is validated (api/validate, the logical-flow
// parser, and lookups in the client's cache) before anything is written, and
// every write is one OVSDB transaction whose preconditions (names still free,
// referenced rows still present) are asserted inside the transaction with
// OVSDB "wait" operations, so concurrent writers cannot slip in between.
package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

// Options configure New.
type Options struct {
	// Logger for server events (request logs are the interceptor's job).
	Logger *zap.Logger
	// CheckMatch validates an ACL match expression; nil uses the
	// logical-flow parser (lflow/expr) with OVN's symbol table.
	CheckMatch func(match string) error
	// WatchBuffer is the per-watcher event buffer (default 4096); a watcher
	// that falls this far behind is ended with ResourceExhausted.
	WatchBuffer int
	// SB is a southbound client monitoring SBTables (ConnectSB) for Trace;
	// nil: Trace fails with FailedPrecondition.
	SB *ovsdbclient.Client
	// OnTraceLoad is called after each (re)build of Trace's snapshot of
	// the southbound database, with how long it took.
	OnTraceLoad func(time.Duration, error)
}

// Server is the API implementation over one northbound client.
type Server struct {
	nb         *ovsdbclient.Client
	log        *zap.Logger
	checkMatch func(string) error

	// changed is closed and replaced whenever the cache changes (see waitCache).
	mu      sync.Mutex
	changed chan struct{}

	ips     *ipIndex
	hub     *hub
	tracing *tracing
}

// New builds a Server on nb, a northbound client that monitors all tables.
func New(nb *ovsdbclient.Client, o Options) *Server {
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.CheckMatch == nil {
		o.CheckMatch = CheckMatch
	}
	if o.WatchBuffer <= 0 {
		o.WatchBuffer = 4096
	}
	s := &Server{nb: nb, log: o.Logger, checkMatch: o.CheckMatch, changed: make(chan struct{})}
	s.ips = newIPIndex()
	s.hub = newHub(s, o.WatchBuffer)
	s.tracing = newTracing(o.SB, nb, o.Logger.Named("trace"), o.OnTraceLoad)
	nb.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc: func(table string, m model.Model) {
			if table == nbdb.ACLTable {
				s.tracing.invalidate() // drop reasons name ACLs
			}
			if table == nbdb.LogicalSwitchPortTable {
				s.onPortEvent(m, false)
			}
			s.notify()
			s.hub.event(govnv1.WatchEvent_ADDED, table, m)
		},
		UpdateFunc: func(table string, _, m model.Model) {
			if table == nbdb.ACLTable {
				s.tracing.invalidate() // drop reasons name ACLs
			}
			if table == nbdb.LogicalSwitchPortTable {
				s.onPortEvent(m, false)
			}
			s.notify()
			s.hub.event(govnv1.WatchEvent_MODIFIED, table, m)
		},
		DeleteFunc: func(table string, m model.Model) {
			if table == nbdb.ACLTable {
				s.tracing.invalidate() // drop reasons name ACLs
			}
			if table == nbdb.LogicalSwitchPortTable {
				s.onPortEvent(m, true)
			}
			s.notify()
			s.hub.event(govnv1.WatchEvent_DELETED, table, m)
		},
	})
	// Rows cached before the handler was added produced no events.
	var ports []nbdb.LogicalSwitchPort
	if err := nb.List(context.Background(), &ports); err == nil {
		for i := range ports {
			s.onPortEvent(&ports[i], false)
		}
	}
	return s
}

// Register adds every govn.v1 service to g.
func (s *Server) Register(g grpc.ServiceRegistrar) {
	govnv1.RegisterLogicalSwitchServiceServer(g, switchService{s: s})
	govnv1.RegisterLogicalSwitchPortServiceServer(g, portService{s: s})
	govnv1.RegisterACLServiceServer(g, aclService{s: s})
	govnv1.RegisterAddressSetServiceServer(g, addressSetService{s: s})
	govnv1.RegisterPortGroupServiceServer(g, portGroupService{s: s})
	govnv1.RegisterLogicalRouterServiceServer(g, routerService{s: s})
	govnv1.RegisterLogicalRouterPortServiceServer(g, routerPortService{s: s})
	govnv1.RegisterStaticRouteServiceServer(g, routeService{s: s})
	govnv1.RegisterLoadBalancerServiceServer(g, lbService{s: s})
	govnv1.RegisterNATServiceServer(g, natService{s: s})
	govnv1.RegisterDHCPOptionsServiceServer(g, dhcpService{s: s})
	govnv1.RegisterTraceServiceServer(g, traceService{s: s})
	govnv1.RegisterWatchServiceServer(g, watchService{s: s})
	govnv1.RegisterSyncServiceServer(g, syncService{s: s})
}

func (s *Server) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

// waitCache waits until cond holds on the client's cache (a write's own
// update reaches the cache right after the transaction's reply at the latest).
func (s *Server) waitCache(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return unavailable(fmt.Errorf("the write committed but the API server's view of the database did not catch up: %w", ctx.Err()))
		}
	}
}

// ---- cache reads ----

// lookup finds the row matching m (by UUID or an index such as name).
func lookup[T model.Model](s *Server, m T) (T, bool, error) {
	out, err := ovsdbclient.Lookup(s.nb, m)
	if errors.Is(err, ovsdbclient.ErrNotFound) {
		var zero T
		return zero, false, nil
	}
	if err != nil {
		var zero T
		return zero, false, internal(err)
	}
	return out, true, nil
}

// listAll returns every cached row of T's table.
func listAll[T any](ctx context.Context, s *Server) ([]T, error) {
	var rows []T
	if err := s.nb.List(ctx, &rows); err != nil {
		return nil, internal(err)
	}
	return rows, nil
}

// uuidByName finds a row's UUID through the table's name index without
// copying the row (a switch with many ports is large).
func (s *Server) uuidByName(table, name string) (string, bool, error) {
	t := s.nb.Cache().Table(table)
	if t == nil {
		return "", false, nil
	}
	ix, err := t.Index("name")
	if err != nil {
		return "", false, internal(err)
	}
	switch u := ix[name]; len(u) {
	case 0:
		return "", false, nil
	case 1:
		return u[0], true, nil
	default:
		return "", false, conflict("%d rows of %s are named %q; use the UUID", len(u), table, name)
	}
}

// inCache reports whether table has a row with uuid.
func (s *Server) inCache(table, uuid string) bool {
	t := s.nb.Cache().Table(table)
	return t != nil && t.HasRow(uuid)
}

// ---- transactions ----

// txn collects the operations of one request; each "wait" precondition
// carries the error to report if it does not hold at commit time.
type txn struct {
	s      *Server
	ops    []ovsdb.Operation
	onFail map[int]error
}

func (s *Server) txn() *txn { return &txn{s: s, onFail: map[int]error{}} }

// add appends ops built by an ovsdbclient/nbdb …Ops helper.
func (t *txn) add(ops []ovsdb.Operation, err error) error {
	if err != nil {
		return internal(err)
	}
	t.ops = ops
	return nil
}

// absent asserts that table has no row with column == value.
func (t *txn) absent(table, column string, value any, onFail error) {
	zero := 0
	t.onFail[len(t.ops)] = onFail
	t.ops = append(t.ops, ovsdb.Operation{
		Op: ovsdb.OperationWait, Table: table, Timeout: &zero,
		Where:   []ovsdb.Condition{ovsdb.NewCondition(column, ovsdb.ConditionEqual, value)},
		Columns: []string{column}, Until: string(ovsdb.WaitConditionNotEqual),
		Rows: []ovsdb.Row{{column: value}},
	})
}

// exists asserts that table still has the row uuid.
func (t *txn) exists(table, uuid string, onFail error) {
	zero := 0
	u := ovsdb.UUID{GoUUID: uuid}
	t.onFail[len(t.ops)] = onFail
	t.ops = append(t.ops, ovsdb.Operation{
		Op: ovsdb.OperationWait, Table: table, Timeout: &zero,
		Where:   []ovsdb.Condition{ovsdb.NewCondition("_uuid", ovsdb.ConditionEqual, u)},
		Columns: []string{"_uuid"}, Until: string(ovsdb.WaitConditionEqual),
		Rows: []ovsdb.Row{{"_uuid": u}},
	})
}

// insertInto appends a mutation adding uuids (real or named) to a set
// column of the row parent of table. It is built directly, without a cache
// lookup, because parents such as a switch with many ports are large.
func (t *txn) insertInto(table, parent, column string, insert bool, uuids ...string) {
	set := make([]any, len(uuids))
	for i, u := range uuids {
		set[i] = ovsdb.UUID{GoUUID: u}
	}
	m := ovsdb.MutateOperationDelete
	if insert {
		m = ovsdb.MutateOperationInsert
	}
	t.ops = append(t.ops, ovsdb.Operation{
		Op: ovsdb.OperationMutate, Table: table,
		Where:     []ovsdb.Condition{ovsdb.NewCondition("_uuid", ovsdb.ConditionEqual, ovsdb.UUID{GoUUID: parent})},
		Mutations: []ovsdb.Mutation{*ovsdb.NewMutation(column, m, ovsdb.OvsSet{GoSet: set})},
	})
}

// commit sends the operations as one transaction. It returns, for each named
// UUID that was inserted, the real UUID.
func (t *txn) commit(ctx context.Context) (map[string]string, error) {
	res, err := t.commitResults(ctx)
	if err != nil || res == nil {
		return nil, err
	}
	uuids := map[string]string{}
	for i, op := range t.ops {
		if op.Op == ovsdb.OperationInsert && op.UUIDName != "" && i < len(res) {
			uuids[op.UUIDName] = res[i].UUID.GoUUID
		}
	}
	return uuids, nil
}

// commitResults sends the transaction and returns the result of every
// operation (for selects in it); errors as commit.
func (t *txn) commitResults(ctx context.Context) ([]ovsdb.OperationResult, error) {
	if len(t.ops) == 0 {
		return nil, nil
	}
	res, err := t.s.nb.Transact(ctx, t.ops...)
	if err != nil {
		var te *ovsdbclient.TransactionError
		if errors.As(err, &te) {
			for i, r := range te.Results {
				if r.Error == "" {
					continue
				}
				if e, ok := t.onFail[i]; ok {
					return nil, e
				}
				return nil, transactionError(te, i)
			}
			return nil, transactionError(te, -1)
		}
		return nil, unavailable(err)
	}
	return res, nil
}

// commitAndSee commits and then waits until the cache shows the result:
// present UUIDs exist and gone UUIDs are absent in their tables.
func (t *txn) commitAndSee(ctx context.Context, table string, named string, gone map[string][]string) (string, error) {
	uuids, err := t.commit(ctx)
	if err != nil {
		return "", err
	}
	real := ""
	if named != "" {
		real = uuids[named]
		if real == "" {
			real = named // an existing real UUID
		}
	}
	err = t.s.waitCache(ctx, func() bool {
		if real != "" && !t.s.inCache(table, real) {
			return false
		}
		for tb, list := range gone {
			for _, u := range list {
				if t.s.inCache(tb, u) {
					return false
				}
			}
		}
		return true
	})
	return real, err
}

// Close ends every Watch stream (the server is stopping).
func (s *Server) Close() { s.hub.closeAll() }
