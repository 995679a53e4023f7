package up_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/internal/ovstest"
	"github.com/govn/govn/internal/up"
)

// needTools skips unless the real OVS/OVN tools are installed.
func needTools(t *testing.T) {
	t.Helper()
	for _, b := range []string{"ovsdb-server", "ovsdb-tool", "ovn-nbctl", "ovn-sbctl"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not in PATH (hack/deps.sh installs it)", b)
		}
	}
}

// shortDir is a private directory with a short path (unix sockets).
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "gvu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds govn and govnctl once per test binary.
func binaries(t *testing.T) (govn, govnctl string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gvbin")
		if buildErr != nil {
			return
		}
		for _, p := range []string{"govn", "govnctl"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, p), "github.com/govn/govn/cmd/"+p).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", p, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "govn"), filepath.Join(binDir, "govnctl")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dbPids returns the pids of the two ovsdb-servers up started in dir.
func dbPids(t *testing.T, dir string) []int {
	t.Helper()
	var pids []int
	for _, base := range []string{"ovnnb_db", "ovnsb_db"} {
		pid, err := ovstest.ReadPidfile(filepath.Join(dir, base+".pid"))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// serversIn lists live ovsdb-server processes whose command line names dir.
func serversIn(dir string) []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if cmd := string(b); strings.Contains(cmd, "ovsdb-server") && strings.Contains(cmd, dir+"/") && ovstest.Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func checkDead(t *testing.T, pids []int) {
	t.Helper()
	for _, pid := range pids {
		if ovstest.Alive(pid) {
			t.Errorf("ovsdb-server pid %d still running", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// TestUpCommand is the single-host experience on a fresh machine: `govn up`
// with a fresh data directory and a local Open vSwitch (found by
// --controller=auto), then `govnctl ls add` + `govnctl show`, the real
// ovn-nbctl sees the switch, the local controller registered its chassis,
// and SIGTERM stops everything with exit status 0.
func TestUpCommand(t *testing.T) {
	needTools(t)
	dir := shortDir(t)
	// A local Open vSwitch as a host would have it (private instance).
	vs := ovstest.Start(t, ovstest.Options{Dir: dir, PrivateNetns: true, ExternalIDs: map[string]string{
		"system-id": "host1", "ovn-encap-type": "geneve", "ovn-encap-ip": "127.0.0.1",
		"ovn-bridge-datapath-type": "netdev"}})
	govn, govnctl := binaries(t)
	data := filepath.Join(dir, "data") // does not exist yet
	api := freePort(t)
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(govn, "up", "--data-dir", data, "--api-listen", api, "--ovs", vs.DBRemote())
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), vs.Env()...) // OVS_RUNDIR: where br-int.mgmt is
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("govn up stderr:\n%s", stderr.String())
		}
	})
	nb := "unix:" + filepath.Join(data, "ovnnb_db.sock")
	sb := "unix:" + filepath.Join(data, "ovnsb_db.sock")
	eventually(t, 60*time.Second, "govn up prints how to connect", func() error {
		select {
		case err := <-exited:
			stopped = true
			t.Fatalf("govn up exited early: %v\n%s", err, stderr.String())
		default:
		}
		if !strings.Contains(stdout.String(), "export GOVN_SERVER="+api) {
			return fmt.Errorf("stdout so far: %q", stdout.String())
		}
		return nil
	})
	for _, want := range []string{nb, sb, "controller           on"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("govn up output lacks %q:\n%s", want, stdout.String())
		}
	}
	pids := dbPids(t, data)

	t.Setenv("GOVN_SERVER", api) // as printed
	run(t, govnctl, "ls", "add", "sw1")
	if out := run(t, govnctl, "show"); !strings.Contains(out, "(sw1)") {
		t.Errorf("govnctl show lacks sw1:\n%s", out)
	}
	if out := run(t, "ovn-nbctl", "--db="+nb, "--timeout=10", "show"); !strings.Contains(out, "(sw1)") {
		t.Errorf("ovn-nbctl show lacks sw1:\n%s", out)
	}
	// northd ran: the switch has a southbound datapath; the controller
	// registered the host as a chassis.
	eventually(t, 30*time.Second, "northd and controller reach the southbound database", func() error {
		out, err := exec.Command("ovn-sbctl", "--db="+sb, "--timeout=5", "--bare", "--columns=name", "list", "Chassis").Output()
		if err != nil || !strings.Contains(string(out), "host1") {
			return fmt.Errorf("chassis: %q %v", out, err)
		}
		out, err = exec.Command("ovn-sbctl", "--db="+sb, "--timeout=5", "--bare", "--columns=external_ids", "list", "Datapath_Binding").Output()
		if err != nil || !strings.Contains(string(out), "sw1") {
			return fmt.Errorf("datapaths: %q %v", out, err)
		}
		return nil
	})
	// The API traces over the southbound database govn up runs: a port
	// pair on sw1 delivers a packet from p1 to p2.
	run(t, govnctl, "lsp", "add", "sw1", "p1", "--address", "00:00:00:00:00:01 10.0.0.1")
	run(t, govnctl, "lsp", "add", "sw1", "p2", "--address", "00:00:00:00:00:02 10.0.0.2")
	run(t, govnctl, "sync", "--wait=sb")
	out := run(t, govnctl, "trace", "--minimal", "sw1",
		`inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == 00:00:00:00:00:02 && ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.2 && ip.ttl == 64`)
	if !strings.Contains(out, `output("p2")`) {
		t.Errorf("govnctl trace through govn up's API does not deliver to p2:\n%s", out)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("govn up on SIGTERM: %v (want exit 0)", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("govn up did not exit within 30s of SIGTERM")
	}
	checkDead(t, pids)
	// The API is gone with the process.
	if c, err := net.DialTimeout("tcp", api, time.Second); err == nil {
		c.Close()
		t.Errorf("API %s still accepts connections after exit", api)
	}
}

// TestUpDatabaseDiesStopsAll: when an ovsdb-server child dies, up stops the
// rest and returns an error naming the database.
func TestUpDatabaseDiesStopsAll(t *testing.T) {
	needTools(t)
	data := shortDir(t)
	api := freePort(t)
	ready := make(chan up.Info, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- up.Run(context.Background(), up.Config{DataDir: data, APIListen: api, Controller: up.ControllerOff,
			Logger: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)), Ready: func(i up.Info) { ready <- i }})
	}()
	select {
	case i := <-ready:
		if i.Controller != "" || !strings.Contains(i.NoController, "--controller=off") {
			t.Errorf("controller: %+v", i)
		}
	case err := <-errc:
		t.Fatalf("up.Run: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("not ready in 60s")
	}
	pids := dbPids(t, data)
	if err := syscall.Kill(pids[1], syscall.SIGKILL); err != nil { // the southbound server
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "sbdb failed") {
			t.Errorf("up.Run = %v, want an error naming sbdb", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("up.Run did not return within 30s of the southbound server's death")
	}
	checkDead(t, pids)
	if c, err := net.DialTimeout("tcp", api, time.Second); err == nil {
		c.Close()
		t.Errorf("API %s still serving", api)
	}
}

// TestUpStartFailure: a component that cannot start (the API's port is
// taken) fails Run with its name and leaves no ovsdb-server behind; an
// unknown controller mode and --controller=on without Open vSwitch are
// rejected before anything starts.
func TestUpStartFailure(t *testing.T) {
	needTools(t)
	data := shortDir(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	err = up.Run(context.Background(), up.Config{DataDir: data, APIListen: busy.Addr().String(),
		Controller: up.ControllerOff, Logger: zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))})
	if err == nil || !strings.HasPrefix(err.Error(), "api: ") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("up.Run with a busy API port = %v", err)
	}
	if left := serversIn(data); len(left) > 0 {
		t.Errorf("ovsdb-servers left running: %v", left)
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}

	for _, c := range []struct {
		cfg  up.Config
		want string
	}{
		{up.Config{Controller: "maybe"}, `controller mode "maybe": want auto, on or off`},
		{up.Config{Controller: up.ControllerOn, OVS: "unix:" + filepath.Join(data, "nothing.sock")}, "--controller=on: local Open vSwitch database"},
	} {
		c.cfg.DataDir = filepath.Join(data, "x")
		err := up.Run(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("up.Run(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "x", "ovnnb_db.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected configuration created a database: %v", err)
	}
}
