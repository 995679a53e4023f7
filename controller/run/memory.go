package run

import (
	"os"
	"runtime/debug"
	"sync/atomic"
)

// gcPercent is the controller's GOGC unless the GOGC environment variable
// sets one. The heap is dominated by long-lived data (southbound rows,
// translations, the installed-flow cache) and a full recompute churns
// through several times that in garbage; Go's default of 100 lets the heap
// grow to twice the live data before collecting, which on a 10k-port
// chassis (≈115 MB live) meant ≈320 MB resident.
const gcPercent = 50

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
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
