package run

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// Every change of the local interfaces' iface-ids replaces the southbound
// client that monitors their Port_Bindings. A replaced client must be gone
// for good: with libovsdb's leader-only mode each one left a goroutine (and
// through it the client and its caches) behind, ~1 MB per pod plugged at
// 10k ports.
func TestInterfaceChurnLeaksNoClient(t *testing.T) {
	e := newEnv(t, "ch1", "172.16.0.1")
	e.populate()
	c, _, _ := startController(t, e, Options{Conditional: true})
	settle := func() int {
		// The goroutine count once the controller is idle again.
		prev, stable := -1, 0
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && stable < 5; {
			time.Sleep(100 * time.Millisecond)
			n := runtime.NumGoroutine()
			if n == prev {
				stable++
			} else {
				prev, stable = n, 0
			}
		}
		return prev
	}
	before := settle()
	const plugs = 12
	for i := range plugs {
		runs := c.runs.Load()
		name := fmt.Sprintf("churn%d", i)
		e.vsctl("add-port", "br-int", name, "--", "set", "Interface", name, "type=internal", "external_ids:iface-id="+name)
		eventually(t, "a controller run after plugging "+name, func() string {
			if c.runs.Load() < runs+2 {
				return fmt.Sprintf("%d runs", c.runs.Load()-runs)
			}
			return ""
		})
	}
	after := settle()
	t.Logf("goroutines: %d before, %d after %d interface changes", before, after, plugs)
	if after-before >= plugs/2 {
		t.Fatalf("goroutines grew from %d to %d over %d interface changes: replaced southbound clients are kept", before, after, plugs)
	}
}
