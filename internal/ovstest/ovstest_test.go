package ovstest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestStartAddFlowStop(t *testing.T) {
	// A bridge name of our own: this instance runs in the caller's namespace,
	// where its tap device must not collide with other tests' bridges.
	br := fmt.Sprintf("brt%d", os.Getpid()%100000)
	v := Start(t, Options{Bridges: []string{br}, ExternalIDs: map[string]string{"system-id": "ch-1"}})
	if _, err := os.Stat(v.MgmtSock(br)); err != nil {
		t.Fatalf("mgmt socket: %v", err)
	}
	out, err := v.Vsctl("get", "Open_vSwitch", ".", "external_ids:system-id")
	if err != nil || strings.Trim(strings.TrimSpace(out), `"`) != "ch-1" {
		t.Fatalf("system-id = %q, %v", out, err)
	}
	out, err = v.Vsctl("get", "Bridge", br, "datapath_type", "fail_mode")
	if err != nil || strings.Fields(out)[0] != "netdev" || strings.Fields(out)[1] != "secure" {
		t.Fatalf("bridge = %q, %v", out, err)
	}
	if _, err := v.OfctlStdin("table=3,priority=7,ip,actions=drop\n", "add-flows", br, "-"); err != nil {
		t.Fatal(err)
	}
	out, err = v.Ofctl("dump-flows", "--no-stats", br)
	if err != nil || !strings.Contains(out, "table=3, priority=7,ip actions=drop") {
		t.Fatalf("dump-flows = %q, %v", out, err)
	}
	if out, err := v.Appctl("version"); err != nil || !strings.Contains(out, "ovs-vswitchd") {
		t.Fatalf("appctl version = %q, %v", out, err)
	}
	pids := v.Pids()
	if len(pids) != 2 {
		t.Fatalf("pids = %v", pids)
	}
	dir := v.Dir()
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
	for d, pid := range pids {
		if Alive(pid) {
			t.Errorf("%s (pid %d) alive after Stop", d, pid)
		}
	}
	if exec.Command("ip", "link", "show", br).Run() == nil {
		t.Errorf("tap %s left behind after Stop", br)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("instance dir %s not removed: %v", dir, err)
	}
	if err := v.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestInNetns(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	ns := fmt.Sprintf("gvot%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	v := Start(t, Options{Netns: ns, Bridges: []string{"br-int"}})
	// The bridge's internal port (a tap) must appear inside the namespace,
	// not in ours.
	out, err := exec.Command("ip", "-n", ns, "link", "show", "br-int").CombinedOutput()
	if err != nil {
		t.Fatalf("br-int not in netns %s: %v: %s", ns, err, out)
	}
	if v.Netns() != ns {
		t.Fatalf("Netns() = %q", v.Netns())
	}
}

func TestPrivateNetns(t *testing.T) {
	v := Start(t, Options{PrivateNetns: true, Bridges: []string{"br-int"}})
	ns := v.Netns()
	if ns == "" || len(ns) > 15 {
		t.Fatalf("Netns() = %q", ns)
	}
	if out, err := exec.Command("ip", "-n", ns, "link", "show", "br-int").CombinedOutput(); err != nil {
		t.Fatalf("br-int not in netns %s: %v: %s", ns, err, out)
	}
	if err := v.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/run/netns/" + ns); !os.IsNotExist(err) {
		t.Fatalf("netns %s not deleted: %v", ns, err)
	}
}

func TestRestartVswitchd(t *testing.T) {
	v := Start(t, Options{PrivateNetns: true, Bridges: []string{"br-int"}})
	if _, err := v.Ofctl("add-flow", "br-int", "table=1,actions=drop"); err != nil {
		t.Fatal(err)
	}
	old := v.Pids()["ovs-vswitchd"]
	if err := v.RestartVswitchd(); err != nil {
		t.Fatal(err)
	}
	if now := v.Pids()["ovs-vswitchd"]; now == old || !Alive(now) || Alive(old) {
		t.Fatalf("pids: old %d, new %d", old, now)
	}
	out, err := v.Ofctl("dump-flows", "--no-stats", "br-int")
	if err != nil || strings.Contains(out, "table=1") {
		t.Fatalf("after restart: %q, %v (flows must be gone)", out, err)
	}
}

func TestOnlyDB(t *testing.T) {
	v := Start(t, Options{NoVswitchd: true})
	if _, err := v.Vsctl("--no-wait", "add-br", "br-x"); err != nil {
		t.Fatal(err)
	}
	if _, ok := v.Pids()["ovs-vswitchd"]; ok {
		t.Fatal("ovs-vswitchd started although NoVswitchd")
	}
}

func TestStopPidOfExitedProcess(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	if !Alive(pid) {
		t.Fatal("sleep not alive")
	}
	if err := StopPid(pid, 0); err != nil {
		t.Fatal(err)
	}
	<-done
	if Alive(pid) {
		t.Fatal("alive after StopPid")
	}
}

// BenchmarkStart measures starting ovsdb-server + ovs-vswitchd with br-int
// and stopping them again.
func BenchmarkStart(b *testing.B) {
	if err := Available(); err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		v, err := New(Options{Bridges: []string{"br-int"}, PrivateNetns: true})
		if err != nil {
			b.Fatal(err)
		}
		if err := v.Stop(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSweepCrashHelper runs as a child of TestSweep: it starts an instance
// with a private namespace and exits without stopping it.
func TestSweepCrashHelper(t *testing.T) {
	if os.Getenv("GOVN_OVSTEST_CRASH") == "" {
		t.Skip("helper for TestSweep")
	}
	v, err := New(Options{PrivateNetns: true, Bridges: []string{"br-int"}, Dir: os.Getenv("GOVN_OVSTEST_CRASH")})
	if err != nil {
		t.Fatal(err)
	}
	p := v.Pids()
	fmt.Printf("CRASHED %s %s %d %d\n", v.Dir(), v.Netns(), p["ovsdb-server"], p["ovs-vswitchd"])
	os.Exit(3)
}

func TestSweep(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	parent, err := os.MkdirTemp("", "gvs")
	if err != nil {
		t.Fatal(err)
	}
	// A cleanup, not a defer: it must run after the live instance's own
	// cleanup (registered later, run first) has stopped its ovsdb-server.
	t.Cleanup(func() { os.RemoveAll(parent) })
	cmd := exec.Command(os.Args[0], "-test.run=^TestSweepCrashHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GOVN_OVSTEST_CRASH="+parent)
	out, _ := cmd.Output()
	var dir, ns string
	var db, vs int
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "CRASHED ") {
			fmt.Sscanf(line, "CRASHED %s %s %d %d", &dir, &ns, &db, &vs)
		}
	}
	if dir == "" || !Alive(db) || !Alive(vs) {
		t.Fatalf("helper did not leave a running instance: %q", out)
	}
	// A live instance in the same parent must survive the sweep.
	live := Start(t, Options{NoVswitchd: true, Dir: parent})
	if err := Sweep(parent); err != nil {
		t.Fatal(err)
	}
	if Alive(db) || Alive(vs) {
		t.Fatal("crashed instance's daemons survived Sweep")
	}
	if _, err := os.Stat("/run/netns/" + ns); !os.IsNotExist(err) {
		t.Fatalf("namespace %s survived Sweep: %v", ns, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("dir %s survived Sweep: %v", dir, err)
	}
	if _, err := live.Vsctl("show"); err != nil {
		t.Fatalf("live instance hurt by Sweep: %v", err)
	}
}
