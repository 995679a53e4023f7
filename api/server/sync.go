package server

import (
	"context"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/nbdb"
)

type syncService struct {
	govnv1.UnimplementedSyncServiceServer
	s *Server
}

// Sync bumps NB_Global.nb_cfg (one transaction: mutate, then read the new
// value back) and waits until northd reports it in sb_cfg, or, for HV,
// until every chassis has caught up (hv_cfg).
func (x syncService) Sync(ctx context.Context, req *govnv1.SyncRequest) (*govnv1.SyncResponse, error) {
	s := x.s
	timeout := 30 * time.Second
	if req.Timeout != nil {
		if err := req.Timeout.CheckValid(); err != nil || req.Timeout.AsDuration() <= 0 {
			return nil, badField("sync", "timeout", req.Timeout.String(), "must be a positive duration")
		}
		timeout = req.Timeout.AsDuration()
	}
	// Report our own timeout, with the state reached, before the caller's
	// deadline cuts the call off.
	if dl, ok := ctx.Deadline(); ok {
		if rem := time.Until(dl) - 100*time.Millisecond; rem < timeout {
			timeout = max(rem, 10*time.Millisecond)
		}
	}
	var globals []nbdb.NBGlobal
	if err := s.nb.List(ctx, &globals); err != nil {
		return nil, internal(err)
	}
	if len(globals) != 1 {
		return nil, status.Errorf(codes.FailedPrecondition, "the northbound database has %d NB_Global rows, want 1", len(globals))
	}
	g := globals[0]
	where := []ovsdb.Condition{ovsdb.NewCondition("_uuid", ovsdb.ConditionEqual, ovsdb.UUID{GoUUID: g.UUID})}
	res, err := s.nb.Transact(ctx,
		ovsdb.Operation{Op: ovsdb.OperationMutate, Table: nbdb.NBGlobalTable, Where: where,
			Mutations: []ovsdb.Mutation{{Column: "nb_cfg", Mutator: ovsdb.MutateOperationAdd, Value: 1}}},
		ovsdb.Operation{Op: ovsdb.OperationSelect, Table: nbdb.NBGlobalTable, Where: where, Columns: []string{"nb_cfg"}},
	)
	if err != nil {
		return nil, unavailable(err)
	}
	if len(res) < 2 || len(res[1].Rows) != 1 {
		return nil, status.Error(codes.Internal, "nb_cfg bump: unexpected transaction result")
	}
	target, ok := toInt(res[1].Rows[0]["nb_cfg"])
	if !ok {
		return nil, status.Errorf(codes.Internal, "nb_cfg bump: unexpected nb_cfg value %v", res[1].Rows[0]["nb_cfg"])
	}
	wait := req.Wait
	if wait == govnv1.SyncRequest_WAIT_UNSPECIFIED {
		wait = govnv1.SyncRequest_SB
	}
	var cur nbdb.NBGlobal
	reached := func() bool {
		got, ok, _ := lookup(s, &nbdb.NBGlobal{UUID: g.UUID})
		if !ok {
			return false
		}
		cur = *got
		if wait == govnv1.SyncRequest_HV {
			return cur.HvCfg >= target
		}
		return cur.SbCfg >= target
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if reached() {
			return &govnv1.SyncResponse{NbCfg: int64(target), SbCfg: int64(cur.SbCfg), HvCfg: int64(cur.HvCfg)}, nil
		}
		select {
		case <-ch:
		case <-wctx.Done():
			if ctx.Err() != nil {
				return nil, status.FromContextError(ctx.Err()).Err()
			}
			what, have := "sb_cfg (northd)", cur.SbCfg
			if wait == govnv1.SyncRequest_HV {
				what, have = "hv_cfg (every chassis)", cur.HvCfg
			}
			return nil, status.Errorf(codes.DeadlineExceeded, "timed out after %s waiting for %s to reach nb_cfg %d (it is %d); is northd running?",
				timeout, what, target, have)
		}
	}
}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case float64:
		return int(n), true
	}
	return 0, false
}
