package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/govn/govn/e2e/harness"
)

// TestQuickCompare runs the whole comparison at a tiny size (2 switches x 50
// ports, 3 samples) on govn and, when ovn-northd is installed, on OVN, and
// checks that every measurement was taken and is plausible. Numbers are
// reported, not compared.
func TestQuickCompare(t *testing.T) {
	if err := harness.Available(); err != nil {
		t.Skipf("bench: %v", err)
	}
	for _, b := range []string{"ovsdb-client", "ovn-nbctl"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("bench: %s not installed", b)
		}
	}
	systems := []string{SystemGovn}
	if _, err := exec.LookPath("ovn-northd"); err == nil {
		systems = append(systems, SystemOVN)
	} else {
		t.Log("ovn-northd not installed: govn only")
	}
	// GOVN_BIN: a prebuilt govn binary; otherwise ./cmd/govn is built.
	bin := os.Getenv("GOVN_BIN")
	if bin == "" {
		bin = filepath.Join(t.TempDir(), "govn")
		root, err := harness.RepoRoot()
		if err != nil {
			t.Fatal(err)
		}
		build := exec.Command("go", "build", "-o", bin, "./cmd/govn")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build govn: %v\n%s", err, out)
		}
	}
	profDir := t.TempDir()
	cfg := Config{Systems: systems, Sizes: []Workload{{Switches: 2, PortsPerSwitch: 50, Batch: 50}},
		Samples: 3, Recomps: 1, GovnBin: bin, Timeout: time.Minute, Logf: t.Logf,
		ProfileDir: profDir, ProfileSeconds: 1, ControllerProfileSeconds: 1}
	results, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(systems) {
		t.Fatalf("%d results for %d systems", len(results), len(systems))
	}
	for _, r := range results {
		if r.Ports != 100 || r.BulkSB <= 0 || r.BulkHV < r.BulkSB {
			t.Errorf("%s: ports %d bulk sb %v hv %v", r.System, r.Ports, r.BulkSB, r.BulkHV)
		}
		keys := []string{"port-add/sb", "port-add/hv", "port-del/hv", "acl-add/hv", "as-add-ip/hv", "northd-recompute",
			"controller-recompute"}
		if r.System == SystemGovn {
			keys = append(keys, "northd-recompute-self", "controller-recompute-self")
		}
		for _, k := range keys {
			if d := r.Latency[k]; d.N == 0 || d.Min <= 0 || d.Median < d.Min || d.Max < d.P95 {
				t.Errorf("%s %s: %+v", r.System, k, d)
			}
		}
		// 100 ports on 2 switches need well over 100 logical flows; the
		// chassis has switch 0's flows.
		if r.LogicalFlows < 100 || r.OpenFlowFlows < 50 {
			t.Errorf("%s: %d logical flows, %d OpenFlow flows", r.System, r.LogicalFlows, r.OpenFlowFlows)
		}
		for n, p := range r.Daemons {
			if p.RSSMB <= 0 || p.CPUTotalS < 0 {
				t.Errorf("%s %s: %+v", r.System, n, p)
			}
		}
		if len(r.Notes) > 0 {
			t.Errorf("%s: %v", r.System, r.Notes)
		}
	}
	// govn controller's CPU profile over the single changes.
	if st, err := os.Stat(filepath.Join(profDir, "controller-100.pprof")); err != nil || st.Size() == 0 {
		t.Errorf("controller profile: %v", err)
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, results); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", buf.String())
	if os.Getenv("BENCH_QUICK_OUT") != "" {
		_ = os.WriteFile(os.Getenv("BENCH_QUICK_OUT"), buf.Bytes(), 0o644)
	}
}
