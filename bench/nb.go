// Package bench drives the same workload against any OVN_Northbound database
// (govn's or OVN's) and measures how fast northd and the controller make it
// real. It speaks only OVSDB (libovsdb with raw operations on the columns
// common to both schemas), so the same code drives both systems.
package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// nbGlobal is the part of NB_Global the driver reads: the progress counters.
type nbGlobal struct {
	UUID  string `ovsdb:"_uuid"`
	NbCfg int    `ovsdb:"nb_cfg"`
	SbCfg int    `ovsdb:"sb_cfg"`
	HvCfg int    `ovsdb:"hv_cfg"`
}

// NB is a connection to an OVN_Northbound database that writes with raw
// operations and waits on NB_Global.sb_cfg / hv_cfg.
type NB struct {
	c      client.Client
	global string // NB_Global UUID
	cfg    int    // last nb_cfg written
}

// DialNB connects to remote (unix:PATH) and monitors NB_Global. If the
// database has no NB_Global row after a few seconds, one is created.
func DialNB(ctx context.Context, remote string) (*NB, error) {
	dbModel, err := model.NewClientDBModel("OVN_Northbound", map[string]model.Model{"NB_Global": &nbGlobal{}})
	if err != nil {
		return nil, err
	}
	discard := logr.Discard()
	c, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(remote), client.WithLogger(&discard))
	if err != nil {
		return nil, err
	}
	if err := c.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connect %s: %w", remote, err)
	}
	// Name the columns: the schema has more than the model, and updates of
	// unmonitored columns must not reach the cache.
	g := &nbGlobal{}
	if _, err := c.Monitor(ctx, c.NewMonitor(client.WithTable(g, &g.NbCfg, &g.SbCfg, &g.HvCfg))); err != nil {
		c.Close()
		return nil, fmt.Errorf("monitor NB_Global on %s: %w", remote, err)
	}
	n := &NB{c: c}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if g, ok := n.get(); ok {
			n.global, n.cfg = g.UUID, g.NbCfg
			return n, nil
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	res, err := n.transact(ctx, ovsdb.Operation{Op: ovsdb.OperationInsert, Table: "NB_Global", Row: ovsdb.Row{}})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("create NB_Global: %w", err)
	}
	n.global = res[0].UUID.GoUUID
	return n, nil
}

// Close disconnects.
func (n *NB) Close() { n.c.Close() }

func (n *NB) get() (nbGlobal, bool) {
	var gs []nbGlobal
	if err := n.c.List(context.Background(), &gs); err != nil || len(gs) == 0 {
		return nbGlobal{}, false
	}
	return gs[0], true
}

// transact commits ops and returns an error naming the first failed
// operation.
func (n *NB) transact(ctx context.Context, ops ...ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	res, err := n.c.Transact(ctx, ops...)
	if err != nil {
		return nil, err
	}
	if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		for i, r := range res {
			if r.Error != "" {
				if i < len(ops) {
					return nil, fmt.Errorf("operation %d (%s %s): %s: %s", i, ops[i].Op, ops[i].Table, r.Error, r.Details)
				}
				return nil, fmt.Errorf("transaction: %s: %s", r.Error, r.Details)
			}
		}
		return nil, err
	}
	return res, nil
}

// Commit commits ops together with an nb_cfg bump and returns the nb_cfg
// value to wait for, and the results of ops.
func (n *NB) Commit(ctx context.Context, ops ...ovsdb.Operation) (int, []ovsdb.OperationResult, error) {
	cfg := n.cfg + 1
	ops = append(ops, ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: "NB_Global",
		Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: n.global}}},
		Row:   ovsdb.Row{"nb_cfg": cfg}})
	res, err := n.transact(ctx, ops...)
	if err != nil {
		return 0, nil, err
	}
	n.cfg = cfg
	return cfg, res, nil
}

// Wait waits until NB_Global.sb_cfg (hv=false) or hv_cfg (hv=true) reaches
// cfg.
func (n *NB) Wait(cfg int, hv bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if g, ok := n.get(); ok {
			if (!hv && g.SbCfg >= cfg) || (hv && g.HvCfg >= cfg) {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("timeout after %v waiting for %s >= %d (nb_cfg %d sb_cfg %d hv_cfg %d)",
					timeout, map[bool]string{false: "sb_cfg", true: "hv_cfg"}[hv], cfg, g.NbCfg, g.SbCfg, g.HvCfg)
			}
		} else if time.Now().After(deadline) {
			return fmt.Errorf("timeout after %v: no NB_Global row", timeout)
		}
		time.Sleep(time.Millisecond)
	}
}

// CommitAndWait commits ops with an nb_cfg bump and returns the time until
// sb_cfg and until hv_cfg caught up (both measured from before the commit).
func (n *NB) CommitAndWait(ctx context.Context, timeout time.Duration, ops ...ovsdb.Operation) (sb, hv time.Duration, res []ovsdb.OperationResult, err error) {
	start := time.Now()
	cfg, res, err := n.Commit(ctx, ops...)
	if err != nil {
		return 0, 0, nil, err
	}
	if err := n.Wait(cfg, false, timeout); err != nil {
		return 0, 0, nil, err
	}
	sb = time.Since(start)
	if err := n.Wait(cfg, true, timeout); err != nil {
		return 0, 0, nil, err
	}
	return sb, time.Since(start), res, nil
}

func set(vs ...any) ovsdb.OvsSet { return ovsdb.OvsSet{GoSet: vs} }

func whereName(name string) []ovsdb.Condition {
	return []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: name}}
}

func whereUUID(u string) []ovsdb.Condition {
	return []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: u}}}
}
