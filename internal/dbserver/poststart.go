package dbserver

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"

	"go.uber.org/zap"
)

// postStartRetry runs postStart until it succeeds or ctx is cancelled; a
// cluster member can only finish it once the cluster has a quorum.
func (s *Server) postStartRetry(ctx context.Context, clustered bool) {
	backoff := 200 * time.Millisecond
	for {
		err := s.postStart(ctx, clustered)
		if err == nil || ctx.Err() != nil {
			return
		}
		s.log.Info("post-start initialisation not done yet; retrying", zap.Error(err), zap.Duration("in", backoff))
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// postStart converts a clustered database online if its schema differs from
// ours and inserts the global row if the global table is empty.
func (s *Server) postStart(ctx context.Context, clustered bool) error {
	client, err := exec.LookPath("ovsdb-client")
	if err != nil {
		return fmt.Errorf("ovsdb-client not found in PATH; install Open vSwitch (Debian: apt install openvswitch-common)")
	}
	ep := s.Endpoint()
	if clustered {
		if _, err := runTool(ctx, client, "--timeout=10", "wait", ep, s.cfg.DB.Name, "connected"); err != nil {
			return err
		}
		need, err := runTool(ctx, client, "--timeout=10", "needs-conversion", ep, s.schema)
		if err != nil {
			return err
		}
		if need == "yes" {
			s.log.Info("converting clustered database online to new schema")
			if _, err := runTool(ctx, client, "--timeout=30", "convert", ep, s.schema); err != nil {
				return err
			}
		}
	}
	if s.cfg.DB.GlobalTable == "" {
		return nil
	}
	// Insert the global row only if the table is empty: the "wait" operation
	// fails (and so the whole transaction does) when any row exists.
	txn := []any{
		s.cfg.DB.Name,
		map[string]any{"op": "wait", "table": s.cfg.DB.GlobalTable, "timeout": 0, "where": []any{},
			"columns": []any{}, "until": "==", "rows": []any{}},
		map[string]any{"op": "insert", "table": s.cfg.DB.GlobalTable, "row": map[string]any{}},
	}
	b, _ := json.Marshal(txn)
	out, err := runTool(ctx, client, "--timeout=10", "transact", ep, string(b))
	if err != nil {
		return err
	}
	switch {
	case strings.Contains(out, `"timed out"`):
		// The row already exists.
	case strings.Contains(out, `"error"`):
		return fmt.Errorf("insert %s row: %s", s.cfg.DB.GlobalTable, out)
	default:
		s.log.Info("inserted global row", zap.String("table", s.cfg.DB.GlobalTable))
	}
	return nil
}
