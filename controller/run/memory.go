package run

import (
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// gcPercent is the controller's GOGC unless the GOGC environment variable
// or --gc-percent sets one. The heap is dominated by long-lived data
// (southbound rows, translations, the installed-flow cache) and a full
// recompute churns through several times that in garbage; Go's default of
// 100 lets the heap grow to twice the live data before collecting, which on
// a 10k-port chassis (≈115 MB live) meant ≈320 MB resident.
const gcPercent = 50

// Memory is the process' garbage-collector configuration (process-wide: Go
// has one heap). See "Memory" in controller/README.md.
type Memory struct {
	// GCPercent is the collector's target percentage (GOGC): the heap may
	// grow to live × (1 + GCPercent/100) before a collection. 0 means the
	// default: $GOGC if set, else 50. Negative turns the collector off
	// (only sensible with a Limit).
	GCPercent int
	// Limit is a soft limit on the memory the Go runtime maps, in bytes
	// (GOMEMLIMIT): near it the collector runs earlier and returns freed
	// memory to the OS at once. 0 means the default: $GOMEMLIMIT if set,
	// else none. Negative means none. A safety net, not a budget: the
	// live data of a big chassis must fit well below it, or the collector
	// spends up to half the CPU trying.
	Limit int64
}

var (
	memMu  sync.Mutex
	memSet bool // ConfigureMemory was called: Run leaves the settings alone
)

// ConfigureMemory applies m now (before Run; Run otherwise applies the
// defaults).
func ConfigureMemory(m Memory) {
	memMu.Lock()
	defer memMu.Unlock()
	memSet = true
	applyMemory(m)
}

func applyMemory(m Memory) {
	switch {
	case m.GCPercent != 0:
		debug.SetGCPercent(m.GCPercent)
	case os.Getenv("GOGC") == "":
		debug.SetGCPercent(gcPercent)
	}
	switch {
	case m.Limit > 0:
		debug.SetMemoryLimit(m.Limit)
	case m.Limit < 0:
		debug.SetMemoryLimit(math.MaxInt64)
	}
	// Limit 0: the runtime has applied $GOMEMLIMIT (or none) itself.
}

// tuneGC applies the default configuration unless ConfigureMemory was
// called.
func tuneGC() {
	memMu.Lock()
	defer memMu.Unlock()
	if !memSet {
		applyMemory(Memory{})
	}
}

// ParseMemoryLimit parses a --memory-limit value: "" (the default:
// $GOMEMLIMIT if set, else none), "none" or "0" (no limit), or a size: a
// number of bytes with an optional unit B, KiB, MiB, GiB (powers of 1024)
// or KB, MB, GB (powers of 1000), e.g. "512MiB".
func ParseMemoryLimit(s string) (int64, error) {
	t := strings.TrimSpace(s)
	switch t {
	case "":
		return 0, nil
	case "none", "0":
		return -1, nil
	}
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	mult := map[string]float64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
		"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("memory limit %q: unknown unit %q (want B, KiB, MiB, GiB, TiB, KB, MB, GB or TB)", s, unit)
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" {
		return 0, fmt.Errorf("memory limit %q: %q is not a number", s, num)
	}
	b := v * mult
	if b < 1<<20 || b >= math.MaxInt64 {
		return 0, fmt.Errorf("memory limit %q: out of range (1MiB up to 8EiB, or none)", s)
	}
	return int64(b), nil
}

// bigChange is the number of freshly translated flows after which the
// garbage of a run is handed back to the operating system at once rather
// than by the background scavenger over minutes.
const bigChange = 5000

var releasing atomic.Bool

// releaseMemory returns freed memory to the OS in the background (one at a
// time; it runs a full collection).
func releaseMemory() {
	if !releasing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer releasing.Store(false)
		debug.FreeOSMemory()
	}()
}
