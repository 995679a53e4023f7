// Package ovstest starts private Open vSwitch instances (ovsdb-server plus
// ovs-vswitchd with the userspace datapath) for integration tests and the e2e
// harness.
//
// Every instance lives in its own short temporary directory, which serves as
// OVS_RUNDIR, OVS_DBDIR and OVS_LOGDIR: the database socket, the pidfiles, the
// unixctl sockets, the bridges' OpenFlow management sockets (<bridge>.mgmt)
// and the logs all live there, so instances never collide with each other or
// with a system-wide OVS. ovs-vswitchd can be started inside a given network
// namespace (a "chassis"); the command-line tools reach it through unix
// sockets, which network namespaces do not isolate.
//
// Processes are stopped by the pids in their pidfiles, never by name.
package ovstest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// SchemaPath is the vswitch schema installed by the openvswitch packages.
const SchemaPath = "/usr/share/openvswitch/vswitch.ovsschema"

// Binaries the package needs.
var binaries = []string{"ovsdb-tool", "ovsdb-server", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl", "ovs-appctl"}

// Options configure an instance. The zero value starts ovsdb-server and
// ovs-vswitchd in the caller's network namespace with no bridges.
type Options struct {
	// Netns, if set, is an existing network namespace (as listed by
	// `ip netns`) in which ovs-vswitchd runs. ovsdb-server always runs in the
	// caller's namespace; it is reached by unix socket only.
	Netns string
	// PrivateNetns creates a fresh network namespace for ovs-vswitchd (and
	// deletes it in Stop); use it when a test only needs a bridge, so that
	// the bridge's tap device cannot collide with other instances' bridges
	// of the same name in the caller's namespace. Ignored if Netns is set.
	PrivateNetns bool
	// Bridges are created after start-up with datapath_type=netdev and
	// fail_mode=secure (see AddBridge).
	Bridges []string
	// ExternalIDs are set on the Open_vSwitch row before ovs-vswitchd starts
	// (for example system-id, ovn-encap-ip).
	ExternalIDs map[string]string
	// NoVswitchd starts only ovsdb-server (enough for pure OVSDB tests).
	NoVswitchd bool
	// Dir is the parent of the instance directory; default os.TempDir().
	// Keep it short: unix socket paths must stay under 108 bytes.
	Dir string
}

// OVS is one running instance.
type OVS struct {
	dir      string
	netns    string
	ownNetns bool // created by New, deleted by Stop

	mu      sync.Mutex
	stopped bool
}

// Available reports why instances (with ovs-vswitchd) cannot be started
// here, or nil.
func Available() error { return available(true) }

func available(vswitchd bool) error {
	for _, b := range binaries {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s not found in PATH (install openvswitch-switch)", b)
		}
	}
	if _, err := os.Stat(SchemaPath); err != nil {
		return fmt.Errorf("vswitch schema: %w", err)
	}
	if vswitchd && os.Geteuid() != 0 {
		return errors.New("ovs-vswitchd with the userspace datapath needs root (tap devices)")
	}
	return nil
}

// Start starts an instance for a test and stops it in t.Cleanup. It skips the
// test if OVS is not installed or the test does not run as root, and fails it
// if start-up fails. On test failure the tails of the daemons' logs are
// written to the test log.
func Start(t testing.TB, o Options) *OVS {
	t.Helper()
	if err := available(!o.NoVswitchd); err != nil {
		t.Skipf("ovstest: %v", err)
	}
	if err := Sweep(o.Dir); err != nil {
		t.Logf("ovstest: sweeping instances of dead test processes: %v", err)
	}
	v, err := New(o)
	if err != nil {
		t.Fatalf("ovstest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, name := range []string{"ovsdb-server.log", "ovs-vswitchd.log"} {
				t.Logf("ovstest: tail of %s:\n%s", filepath.Join(v.dir, name), v.LogTail(name, 30))
			}
		}
		if err := v.Stop(); err != nil {
			t.Errorf("ovstest: %v", err)
		}
	})
	return v
}

// New starts an instance without a testing.TB; the caller must call Stop.
// On error, whatever was started is stopped again.
func New(o Options) (v *OVS, err error) {
	base := o.Dir
	if base == "" {
		base = os.TempDir()
	}
	dir, err := os.MkdirTemp(base, "ovs")
	if err != nil {
		return nil, err
	}
	v = &OVS{dir: dir, netns: o.Netns}
	defer func() {
		if err != nil {
			if serr := v.Stop(); serr != nil {
				err = fmt.Errorf("%w (and stopping: %v)", err, serr)
			}
		}
	}()
	if err := v.writeOwner(); err != nil {
		return v, err
	}
	if len(v.DBSock()) >= 104 {
		return v, fmt.Errorf("socket path %s too long for a unix socket; use a shorter Options.Dir", v.DBSock())
	}
	db := filepath.Join(dir, "conf.db")
	if _, err := v.run(false, "ovsdb-tool", "create", db, SchemaPath); err != nil {
		return v, err
	}
	if _, err := v.run(false, "ovsdb-server", db,
		"--remote=punix:"+v.DBSock(),
		"--unixctl="+filepath.Join(dir, "ovsdb-server.ctl"),
		"--pidfile="+filepath.Join(dir, "ovsdb-server.pid"),
		"--detach", "--no-chdir", "-vconsole:off",
		"--log-file="+filepath.Join(dir, "ovsdb-server.log")); err != nil {
		return v, err
	}
	init := []string{"--no-wait", "init"}
	if len(o.ExternalIDs) > 0 {
		keys := make([]string, 0, len(o.ExternalIDs))
		for k := range o.ExternalIDs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			init = append(init, "--", "set", "Open_vSwitch", ".",
				fmt.Sprintf("external_ids:%s=%q", k, o.ExternalIDs[k]))
		}
	}
	if _, err := v.Vsctl(init...); err != nil {
		return v, err
	}
	if o.NoVswitchd {
		return v, nil
	}
	if v.netns == "" && o.PrivateNetns {
		name := "gvo" + filepath.Base(dir)[3:]
		if len(name) > 15 {
			name = name[:15]
		}
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			return v, fmt.Errorf("ip netns add %s: %w: %s", name, err, bytes.TrimSpace(out))
		}
		v.netns, v.ownNetns = name, true
		if err := v.writeOwner(); err != nil {
			return v, err
		}
	}
	if err := v.startVswitchd(); err != nil {
		return v, err
	}
	for _, br := range o.Bridges {
		if err := v.AddBridge(br, true); err != nil {
			return v, err
		}
	}
	return v, nil
}

func (v *OVS) startVswitchd() error {
	_, err := v.run(true, "ovs-vswitchd", "unix:"+v.DBSock(),
		"--unixctl="+filepath.Join(v.dir, "ovs-vswitchd.ctl"),
		"--pidfile="+filepath.Join(v.dir, "ovs-vswitchd.pid"),
		"--detach", "--no-chdir", "-vconsole:off",
		"--log-file="+filepath.Join(v.dir, "ovs-vswitchd.log"))
	return err
}

// RestartVswitchd stops ovs-vswitchd (by pid, without deleting its ports, as
// a crash or an upgrade would) and starts it again; it returns once the new
// one has applied the database. All OpenFlow flows and groups are lost.
func (v *OVS) RestartVswitchd() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopped {
		return errors.New("instance stopped")
	}
	pid, err := ReadPidfile(filepath.Join(v.dir, "ovs-vswitchd.pid"))
	if err != nil {
		return err
	}
	if err := StopPid(pid, 5*time.Second); err != nil {
		return err
	}
	// --detach returns once the new daemon has applied the database.
	return v.startVswitchd()
}

// Dir is the instance directory (OVS_RUNDIR = OVS_DBDIR = OVS_LOGDIR).
func (v *OVS) Dir() string { return v.dir }

// RunDir is OVS_RUNDIR; a bridge's OpenFlow socket is RunDir()/<bridge>.mgmt.
func (v *OVS) RunDir() string { return v.dir }

// DBSock is the path of ovsdb-server's unix socket.
func (v *OVS) DBSock() string { return filepath.Join(v.dir, "db.sock") }

// DBRemote is DBSock as an OVSDB remote ("unix:/path").
func (v *OVS) DBRemote() string { return "unix:" + v.DBSock() }

// Netns is the namespace ovs-vswitchd runs in ("" for the caller's).
func (v *OVS) Netns() string { return v.netns }

// MgmtSock is the OpenFlow management socket of bridge br.
func (v *OVS) MgmtSock(br string) string { return filepath.Join(v.dir, br+".mgmt") }

// Env is the environment under which OVS tools address this instance.
func (v *OVS) Env() []string {
	return []string{"OVS_RUNDIR=" + v.dir, "OVS_DBDIR=" + v.dir, "OVS_LOGDIR=" + v.dir}
}

// Vsctl runs ovs-vsctl against this instance and returns its stdout.
func (v *OVS) Vsctl(args ...string) (string, error) {
	return v.run(false, "ovs-vsctl", append([]string{"--db=" + v.DBRemote(), "--timeout=30"}, args...)...)
}

// Ofctl runs ovs-ofctl against this instance (a bare bridge name resolves to
// RunDir()/<bridge>.mgmt) and returns its stdout.
func (v *OVS) Ofctl(args ...string) (string, error) {
	return v.run(false, "ovs-ofctl", args...)
}

// OfctlStdin is Ofctl with stdin (for `add-flows BR -` and friends).
func (v *OVS) OfctlStdin(stdin string, args ...string) (string, error) {
	return v.runIn(false, strings.NewReader(stdin), "ovs-ofctl", args...)
}

// Appctl sends a unixctl command to ovs-vswitchd.
func (v *OVS) Appctl(args ...string) (string, error) {
	return v.run(false, "ovs-appctl", append([]string{"-t", filepath.Join(v.dir, "ovs-vswitchd.ctl")}, args...)...)
}

// AddBridge creates bridge br with datapath_type=netdev (and fail_mode=secure
// if secure is true) and waits until ovs-vswitchd has configured it.
func (v *OVS) AddBridge(br string, secure bool) error {
	args := []string{"add-br", br, "--", "set", "Bridge", br, "datapath_type=netdev"}
	if secure {
		args = append(args, "fail_mode=secure")
	}
	_, err := v.Vsctl(args...)
	return err
}

// Pids returns the pids of the running daemons, keyed by daemon name.
func (v *OVS) Pids() map[string]int {
	m := map[string]int{}
	for _, d := range []string{"ovsdb-server", "ovs-vswitchd"} {
		if pid, err := ReadPidfile(filepath.Join(v.dir, d+".pid")); err == nil {
			m[d] = pid
		}
	}
	return m
}

// LogTail returns the last n lines of a log file in the instance directory.
func (v *OVS) LogTail(name string, n int) string {
	b, err := os.ReadFile(filepath.Join(v.dir, name))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Stop stops ovs-vswitchd, then ovsdb-server (by the pids in their pidfiles)
// and removes the instance directory. It is idempotent.
func (v *OVS) Stop() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.stopped {
		return nil
	}
	v.stopped = true
	var errs []error
	// "exit --cleanup" makes ovs-vswitchd delete its datapath ports; with
	// the userspace datapath these are persistent tap devices that would
	// otherwise outlive the process (in the caller's namespace, they would
	// collide with the next instance's bridge of the same name).
	if pid, err := ReadPidfile(filepath.Join(v.dir, "ovs-vswitchd.pid")); err == nil && Alive(pid) {
		_, _ = v.Appctl("--timeout=5", "exit", "--cleanup")
		waitDead(pid, 5*time.Second)
	}
	for _, d := range []string{"ovs-vswitchd", "ovsdb-server"} {
		pid, err := ReadPidfile(filepath.Join(v.dir, d+".pid"))
		if err != nil {
			if !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		if err := StopPid(pid, 5*time.Second); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d, err))
		}
	}
	if v.ownNetns {
		if out, err := exec.Command("ip", "netns", "del", v.netns).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %w: %s", v.netns, err, bytes.TrimSpace(out)))
		}
	}
	if len(errs) == 0 {
		if err := os.RemoveAll(v.dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (v *OVS) run(inNetns bool, name string, args ...string) (string, error) {
	return v.runIn(inNetns, nil, name, args...)
}

func (v *OVS) runIn(inNetns bool, stdin *strings.Reader, name string, args ...string) (string, error) {
	var cmd *exec.Cmd
	if inNetns && v.netns != "" {
		full := append([]string{"netns", "exec", v.netns, "env"}, v.Env()...)
		full = append(full, name)
		cmd = exec.Command("ip", append(full, args...)...)
	} else {
		cmd = exec.Command(name, args...)
	}
	cmd.Env = append(os.Environ(), v.Env()...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = stdin
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(shorten(args), " "), err,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// shorten keeps error messages readable when args are long.
func shorten(args []string) []string {
	if len(args) <= 12 {
		return args
	}
	return append(append([]string{}, args[:12]...), "…")
}
