package harness

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/govn/govn/internal/ovstest"
)

// TestSweepCrashHelper is run as a child process by TestSweep: it builds a
// topology with a process and exits without tearing down, like a test binary
// killed by -timeout.
func TestSweepCrashHelper(t *testing.T) {
	if os.Getenv("GOVN_SWEEP_CRASH") != "1" {
		t.Skip("helper for TestSweep")
	}
	topo, err := New(Options{Chassis: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := topo.Chassis[0].StartProcess("sleeper", "sleep", "600")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("CRASHED %s %s %d %d\n", topo.Prefix, topo.Dir, p.Pid, topo.Chassis[0].OVS.Pids()["ovs-vswitchd"])
	os.Exit(3)
}

func TestSweep(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSweepCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GOVN_SWEEP_CRASH=1")
	out, _ := cmd.Output()
	var prefix, dir string
	var sleeper, vswitchd int
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "CRASHED ") {
			fmt.Sscanf(line, "CRASHED %s %s %d %d", &prefix, &dir, &sleeper, &vswitchd)
		}
	}
	if prefix == "" || sleeper == 0 || vswitchd == 0 {
		t.Fatalf("helper output: %q", out)
	}
	if !ovstest.Alive(sleeper) || !ovstest.Alive(vswitchd) {
		t.Fatal("leftovers not running before the sweep: the test proves nothing")
	}
	if err := Sweep(); err != nil {
		t.Fatal(err)
	}
	if ovstest.Alive(sleeper) || ovstest.Alive(vswitchd) {
		t.Fatalf("after Sweep: sleeper alive %v, vswitchd alive %v", ovstest.Alive(sleeper), ovstest.Alive(vswitchd))
	}
	ns, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(ns), prefix+"-") {
		t.Fatalf("namespaces left: %s", ns)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir %s left: %v", dir, err)
	}
	// A live topology (ours) is not swept.
	topo := Start(t, Options{Chassis: 1})
	if err := Sweep(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(topo.Dir); err != nil {
		t.Fatalf("live topology swept: %v", err)
	}
}
