package ovsdbclient

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/go-logr/logr"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// TestSinkSilentAfterClose: libovsdb's reconnect goroutine may log after
// Client.Close; the sink (and every logger derived from it) drops those.
func TestSinkSilentAfterClose(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	closed := new(atomic.Bool)
	lr := logr.New(&zapSink{log: zap.New(core), closed: closed})
	derived := lr.WithName("reconnect").WithValues("db", "OVN_Southbound")
	derived.Error(errors.New("dial"), "failed to reconnect")
	lr.V(1).Info("debug")
	if n := logs.Len(); n != 2 {
		t.Fatalf("before close: %d entries, want 2", n)
	}
	closed.Store(true)
	derived.Error(errors.New("dial"), "failed to reconnect")
	lr.Info("info")
	if derived.Enabled() {
		t.Error("derived logger still enabled after close")
	}
	if n := logs.Len(); n != 2 {
		t.Fatalf("after close: %d entries, want still 2: %v", n, logs.All())
	}
}
