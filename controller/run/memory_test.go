package run

import (
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

func TestParseMemoryLimit(t *testing.T) {
	for in, want := range map[string]int64{
		"": 0, "none": -1, "0": -1, "512MiB": 512 << 20, "1GiB": 1 << 30, "1.5GiB": 3 << 29, "300MB": 300e6,
		"2097152": 2 << 20, " 64 MiB ": 64 << 20, "4096KiB": 4 << 20,
	} {
		got, err := ParseMemoryLimit(in)
		if err != nil || got != want {
			t.Errorf("ParseMemoryLimit(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, part := range map[string]string{
		"12 parsecs": `unknown unit "parsecs"`, "MiB": "is not a number", "1.2.3MiB": "is not a number",
		"-5MiB": "unknown unit", "10": "out of range", "100KB": "out of range", "9999999TiB": "out of range",
	} {
		if _, err := ParseMemoryLimit(in); err == nil || !strings.Contains(err.Error(), part) || !strings.Contains(err.Error(), in) {
			t.Errorf("ParseMemoryLimit(%q) = %v; want an error naming the value and %q", in, err, part)
		}
	}
}

// TestConfigureMemory: the settings reach the runtime, and Run's defaults
// (tuneGC) no longer override them.
func TestConfigureMemory(t *testing.T) {
	oldPct := debug.SetGCPercent(100)
	oldLim := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(oldPct)
		debug.SetMemoryLimit(oldLim)
		memMu.Lock()
		memSet = false
		memMu.Unlock()
	})
	t.Setenv("GOGC", "")
	tuneGC()
	if p := debug.SetGCPercent(-1); p != gcPercent {
		t.Fatalf("default GC percent %d, want %d", p, gcPercent)
	}
	ConfigureMemory(Memory{GCPercent: 30, Limit: 200 << 20})
	tuneGC()
	if p, l := debug.SetGCPercent(30), debug.SetMemoryLimit(-1); p != 30 || l != 200<<20 {
		t.Fatalf("configured: GC percent %d, limit %d; want 30, %d", p, l, 200<<20)
	}
	ConfigureMemory(Memory{Limit: -1})
	if p, l := debug.SetGCPercent(-1), debug.SetMemoryLimit(-1); p != gcPercent || l != math.MaxInt64 {
		t.Fatalf("limit none: GC percent %d, limit %d", p, l)
	}
}
