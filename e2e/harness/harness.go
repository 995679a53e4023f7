// Package harness builds real-packet test topologies for govn's end-to-end
// tests: N chassis, each a network namespace running its own ovsdb-server and
// ovs-vswitchd (userspace datapath), joined by an underlay (a Linux bridge in
// its own namespace, one veth per chassis, 172.16.0.N/24 on each chassis'
// br-phy, Geneve through OVS's native tunneling); "pods" are namespaces
// attached by veth to a chassis' br-int with external_ids:iface-id.
//
// Every name carries a random per-topology prefix ("gv" + 4 hex digits), so
// parallel runs never collide; all devices live inside the topology's own
// namespaces (nothing is created in the caller's namespace). Close tears down
// everything it created — processes by pid, OVS instances, namespaces — and
// then checks that nothing leaked.
package harness

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/govn/govn/internal/ovstest"
)

// Options configure a topology.
type Options struct {
	// Chassis is the number of chassis (1..250), named ch1..chN with
	// underlay addresses 172.16.0.1..N.
	Chassis int
	// ExternalIDs, if set, returns extra Open_vSwitch external_ids for a
	// chassis (for example ovn-remote). system-id (= chassis name),
	// ovn-encap-type=geneve, ovn-encap-ip and ovn-bridge-datapath-type=netdev
	// are always set.
	ExternalIDs func(c *Chassis) map[string]string
	// NoIntegrationBridge leaves br-int to be created by the controller.
	NoIntegrationBridge bool
	// Logf, if set, receives progress messages.
	Logf func(format string, args ...any)
}

// Topology is a running set of chassis, pods and processes.
type Topology struct {
	ID       string // random, 4 hex digits
	Prefix   string // "gv" + ID: prefix of every namespace name
	Dir      string // logs and OVS run directories
	Underlay string // namespace holding the underlay bridge
	Chassis  []*Chassis

	logf      func(string, ...any)
	mu        sync.Mutex
	netns     []string // created, in creation order
	ovs       []*ovstest.OVS
	procs     []*Process
	pods      []*Pod
	servers   []*Server
	closed    bool
	keepDir   bool
	SetupTime time.Duration // how long New took
}

// Chassis is one hypervisor: a namespace with its own OVS.
type Chassis struct {
	Name  string     // "ch1"…: also its system-id
	Netns string     // network namespace
	IP    netip.Addr // underlay / encap address, on br-phy
	OVS   *ovstest.OVS
	topo  *Topology
}

// Pod is a namespace attached to a chassis' br-int.
type Pod struct {
	Name    string
	Netns   string
	Chassis *Chassis
	Port    string // OVS port (veth end in the chassis namespace)
	OFPort  int
	IfaceID string
	MAC     string
	IP      netip.Prefix
}

// UnderlayPrefix is the underlay subnet; chassis N has address .N.
var UnderlayPrefix = netip.MustParsePrefix("172.16.0.0/24")

// Available reports why topologies cannot be built here, or nil.
func Available() error {
	if err := ovstest.Available(); err != nil {
		return err
	}
	for _, b := range []string{"ip", "ethtool", "ping", "nc"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s not found in PATH", b)
		}
	}
	return nil
}

// Start builds a topology for a test and tears it down in t.Cleanup (also
// when the test fails), failing the test if anything leaked. On failure the
// tails of all logs are written to the test log. Skips if unavailable.
func Start(t testing.TB, o Options) *Topology {
	t.Helper()
	if err := Available(); err != nil {
		t.Skipf("e2e harness: %v", err)
	}
	if o.Logf == nil {
		o.Logf = t.Logf
	}
	if err := Sweep(); err != nil {
		t.Logf("e2e harness: sweeping leftovers of dead runs: %v", err)
	}
	topo, err := New(o)
	if err != nil {
		t.Fatalf("e2e harness: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s", topo.LogTails(20))
		}
		if err := topo.Close(); err != nil {
			t.Errorf("e2e harness teardown: %v", err)
		}
	})
	return topo
}

// New builds a topology; the caller must Close it. On error, whatever was
// built is torn down.
func New(o Options) (topo *Topology, err error) {
	if o.Chassis < 1 || o.Chassis > 250 {
		return nil, fmt.Errorf("Options.Chassis = %d: want 1..250", o.Chassis)
	}
	start := time.Now()
	var id [2]byte
	if _, err := rand.Read(id[:]); err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gve")
	if err != nil {
		return nil, err
	}
	topo = &Topology{ID: hex.EncodeToString(id[:]), Dir: dir, logf: o.Logf}
	topo.Prefix = "gv" + topo.ID
	topo.keepDir = os.Getenv("GOVN_E2E_KEEP") != ""
	if topo.logf == nil {
		topo.logf = func(string, ...any) {}
	}
	defer func() {
		if err != nil {
			if cerr := topo.Close(); cerr != nil {
				err = fmt.Errorf("%w (teardown: %v)", err, cerr)
			}
		}
	}()
	if err := topo.writeOwner(); err != nil {
		return topo, err
	}
	topo.Underlay = topo.Prefix + "-ul"
	if err := topo.addNetns(topo.Underlay); err != nil {
		return topo, err
	}
	if err := run("ip", "-n", topo.Underlay, "link", "add", "br-ul", "type", "bridge"); err != nil {
		return topo, err
	}
	if err := run("ip", "-n", topo.Underlay, "link", "set", "br-ul", "up"); err != nil {
		return topo, err
	}
	// Chassis are independent: build them in parallel.
	topo.Chassis = make([]*Chassis, o.Chassis)
	errs := make([]error, o.Chassis)
	var wg sync.WaitGroup
	for i := range o.Chassis {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topo.Chassis[i], errs[i] = topo.addChassis(i+1, o)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return topo, err
	}
	topo.SetupTime = time.Since(start)
	topo.logf("topology %s: %d chassis up in %v (dir %s)", topo.Prefix, o.Chassis, topo.SetupTime.Round(time.Millisecond), dir)
	return topo, nil
}

func (t *Topology) addNetns(name string) error {
	if len(name) > 15 {
		return fmt.Errorf("namespace name %q longer than 15", name)
	}
	if err := run("ip", "netns", "add", name); err != nil {
		return err
	}
	t.mu.Lock()
	t.netns = append(t.netns, name)
	t.mu.Unlock()
	return run("ip", "-n", name, "link", "set", "lo", "up")
}

func (t *Topology) addChassis(n int, o Options) (*Chassis, error) {
	c := &Chassis{Name: "ch" + strconv.Itoa(n), Netns: fmt.Sprintf("%s-c%d", t.Prefix, n), topo: t}
	c.IP = netip.AddrFrom4([4]byte{172, 16, 0, byte(n)})
	if err := t.addNetns(c.Netns); err != nil {
		return nil, err
	}
	// Underlay link: ulN in the underlay namespace, eth-ul in the chassis.
	ul := "ul" + strconv.Itoa(n)
	for _, args := range [][]string{
		{"ip", "-n", t.Underlay, "link", "add", ul, "type", "veth", "peer", "name", "eth-ul", "netns", c.Netns},
		{"ip", "-n", t.Underlay, "link", "set", ul, "master", "br-ul", "up"},
		{"ip", "-n", c.Netns, "link", "set", "eth-ul", "up"},
	} {
		if err := run(args...); err != nil {
			return nil, err
		}
	}
	ext := map[string]string{
		"system-id": c.Name, "ovn-encap-type": "geneve", "ovn-encap-ip": c.IP.String(),
		"ovn-bridge-datapath-type": "netdev",
	}
	if o.ExternalIDs != nil {
		for k, v := range o.ExternalIDs(c) {
			ext[k] = v
		}
	}
	v, err := ovstest.New(ovstest.Options{Netns: c.Netns, ExternalIDs: ext, Dir: t.Dir})
	if err != nil {
		return nil, fmt.Errorf("chassis %s: %w", c.Name, err)
	}
	t.mu.Lock()
	t.ovs = append(t.ovs, v)
	t.mu.Unlock()
	c.OVS = v
	// One ovs-vsctl transaction (it waits for ovs-vswitchd once): br-phy
	// (standalone: a NORMAL switch) with the underlay port, and br-int
	// (fail_mode=secure: forwards nothing without flows).
	vsctl := []string{"add-br", "br-phy", "--", "set", "Bridge", "br-phy", "datapath_type=netdev",
		"--", "add-port", "br-phy", "eth-ul"}
	if !o.NoIntegrationBridge {
		vsctl = append(vsctl, "--", "add-br", "br-int", "--", "set", "Bridge", "br-int",
			"datapath_type=netdev", "fail_mode=secure", "other_config:disable-in-band=true")
	}
	if _, err := v.Vsctl(vsctl...); err != nil {
		return nil, fmt.Errorf("chassis %s: %w", c.Name, err)
	}
	prefix := netip.PrefixFrom(c.IP, UnderlayPrefix.Bits()).String()
	for _, args := range [][]string{
		{"ip", "-n", c.Netns, "addr", "add", prefix, "dev", "br-phy"},
		{"ip", "-n", c.Netns, "link", "set", "br-phy", "up"},
	} {
		if err := run(args...); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// StartProcess starts a tracked process (e.g. `govn controller`) inside the
// chassis namespace with OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR pointing at the
// chassis' OVS (its database is at OVS.DBRemote(), br-int's OpenFlow socket
// at OVS.MgmtSock("br-int")). The log is <Dir>/<chassis>-<name>.log.
func (c *Chassis) StartProcess(name string, args ...string) (*Process, error) {
	return c.topo.StartProcess(ProcessSpec{Name: c.Name + "-" + name, Netns: c.Netns, Env: c.OVS.Env(), Args: args})
}

// Exec runs a command inside the chassis namespace.
func (c *Chassis) Exec(args ...string) (string, error) { return execIn(c.Netns, args...) }

// PodSpec describes a pod.
type PodSpec struct {
	Name    string       // 1..8 of [a-z0-9]; unique in the topology
	IfaceID string       // logical port name (external_ids:iface-id)
	MAC     string       // e.g. "00:00:00:00:01:01"
	IP      netip.Prefix // address and subnet, e.g. 10.0.0.1/24
	Gateway netip.Addr   // default route, if valid
}

var podName = regexp.MustCompile(`^[a-z0-9]{1,8}$`)

// AddPod creates a pod namespace, a veth pair into the chassis (the chassis
// end added to br-int with the iface-id), sets MAC, address, MTU 1400 and
// turns off TX checksum offload in the pod, and waits for the OpenFlow port
// number.
func (c *Chassis) AddPod(s PodSpec) (*Pod, error) {
	t := c.topo
	if !podName.MatchString(s.Name) {
		return nil, fmt.Errorf("pod name %q: want 1-8 of [a-z0-9]", s.Name)
	}
	if !s.IP.IsValid() {
		return nil, fmt.Errorf("pod %s: no IP", s.Name)
	}
	p := &Pod{Name: s.Name, Netns: t.Prefix + "-" + s.Name, Chassis: c, Port: "v" + s.Name,
		IfaceID: s.IfaceID, MAC: s.MAC, IP: s.IP}
	if err := t.addNetns(p.Netns); err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.pods = append(t.pods, p)
	t.mu.Unlock()
	cmds := [][]string{
		{"ip", "-n", c.Netns, "link", "add", "name", p.Port, "type", "veth", "peer", "name", "eth0", "netns", p.Netns},
		{"ip", "-n", c.Netns, "link", "set", "dev", p.Port, "mtu", "1400", "up"},
		{"ip", "-n", p.Netns, "link", "set", "eth0", "mtu", "1400"},
	}
	if s.MAC != "" {
		cmds = append(cmds, []string{"ip", "-n", p.Netns, "link", "set", "eth0", "address", s.MAC})
	}
	cmds = append(cmds,
		[]string{"ip", "-n", p.Netns, "addr", "add", s.IP.String(), "dev", "eth0"},
		[]string{"ip", "-n", p.Netns, "link", "set", "eth0", "up"},
		[]string{"ip", "netns", "exec", p.Netns, "ethtool", "-K", "eth0", "tx", "off"},
	)
	if s.Gateway.IsValid() {
		cmds = append(cmds, []string{"ip", "-n", p.Netns, "route", "add", "default", "via", s.Gateway.String()})
	}
	for _, args := range cmds {
		if err := run(args...); err != nil {
			return nil, fmt.Errorf("pod %s: %w", s.Name, err)
		}
	}
	if p.MAC == "" {
		out, err := p.Exec("cat", "/sys/class/net/eth0/address")
		if err != nil {
			return nil, err
		}
		p.MAC = strings.TrimSpace(out)
	}
	vsctl := []string{"add-port", "br-int", p.Port}
	if s.IfaceID != "" {
		vsctl = append(vsctl, "--", "set", "Interface", p.Port, "external_ids:iface-id="+s.IfaceID,
			"external_ids:attached-mac="+p.MAC)
	}
	if _, err := c.OVS.Vsctl(vsctl...); err != nil {
		return nil, fmt.Errorf("pod %s: %w", s.Name, err)
	}
	out, err := c.OVS.Vsctl("get", "Interface", p.Port, "ofport")
	if err != nil {
		return nil, err
	}
	if p.OFPort, err = strconv.Atoi(strings.TrimSpace(out)); err != nil || p.OFPort <= 0 {
		return nil, fmt.Errorf("pod %s: ofport %q", s.Name, strings.TrimSpace(out))
	}
	return p, nil
}

// WaitReachable pings dst once per attempt until one answer arrives or
// timeout passes (for when a controller is still programming flows).
func (p *Pod) WaitReachable(dst netip.Addr, timeout time.Duration) error {
	return waitReachable(p.Netns, p.Name, dst, timeout)
}

func waitReachable(netns, name string, dst netip.Addr, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		r, err := ping(netns, name, dst, 1, 200*time.Millisecond)
		if err == nil && r.Received == 1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s cannot reach %s after %v (last: %+v, %v)", name, dst, timeout, r, err)
		}
	}
}

// Delete removes the pod: its OVS port (so the controller sees the VIF go
// away) and its namespace.
func (p *Pod) Delete() error {
	t := p.Chassis.topo
	if _, err := p.Chassis.OVS.Vsctl("--if-exists", "del-port", "br-int", p.Port); err != nil {
		return err
	}
	if err := run("ip", "netns", "del", p.Netns); err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, ns := range t.netns {
		if ns == p.Netns {
			t.netns = append(t.netns[:i:i], t.netns[i+1:]...)
			break
		}
	}
	for i, q := range t.pods {
		if q == p {
			t.pods = append(t.pods[:i:i], t.pods[i+1:]...)
			break
		}
	}
	return nil
}

// RepoRoot returns the directory of the govn module (where go.mod is),
// searching upwards from the working directory; e2e tests use it to find
// bin/govn.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/govn/govn\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod of github.com/govn/govn not found above the working directory")
		}
		dir = parent
	}
}

// Exec runs a command inside the pod namespace.
func (p *Pod) Exec(args ...string) (string, error) { return execIn(p.Netns, args...) }

// PingResult is a ping summary.
type PingResult struct {
	Sent, Received int
}

// Loss is the fraction of lost packets (0..1).
func (r PingResult) Loss() float64 {
	if r.Sent == 0 {
		return 1
	}
	return float64(r.Sent-r.Received) / float64(r.Sent)
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)

// Ping sends count echo requests 0.2 s apart (1 s timeout each) and returns
// how many were answered. Loss is not an error; failing to run ping is.
func (p *Pod) Ping(dst netip.Addr, count int) (PingResult, error) {
	return p.PingInterval(dst, count, 200*time.Millisecond)
}

// PingInterval is Ping with a given interval between requests.
func (p *Pod) PingInterval(dst netip.Addr, count int, interval time.Duration) (PingResult, error) {
	return ping(p.Netns, p.Name, dst, count, interval)
}

func ping(netns, name string, dst netip.Addr, count int, interval time.Duration) (PingResult, error) {
	out, err := execIn(netns, "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", fmt.Sprintf("%.3f", interval.Seconds()),
		"-W", "1", dst.String())
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		return PingResult{}, fmt.Errorf("ping %s from %s: no summary (%v): %s", dst, name, err, out)
	}
	sent, _ := strconv.Atoi(m[1])
	recv, _ := strconv.Atoi(m[2])
	return PingResult{Sent: sent, Received: recv}, nil
}

// TCPConnect opens a TCP connection to dst:port from the pod, sends payload
// (if any) and closes; it fails if the connection cannot be made within
// timeout.
func (p *Pod) TCPConnect(dst netip.Addr, port int, payload string, timeout time.Duration) error {
	secs := strconv.Itoa(max(1, int(timeout.Seconds())))
	args := []string{"ip", "netns", "exec", p.Netns, "nc", "-N", "-w", secs, dst.String(), strconv.Itoa(port)}
	if payload == "" {
		args = []string{"ip", "netns", "exec", p.Netns, "nc", "-z", "-w", secs, dst.String(), strconv.Itoa(port)}
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(payload)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("tcp %s -> %s:%d: %w: %s", p.Name, dst, port, err, bytes.TrimSpace(out))
	}
	return nil
}

// ListenTCP starts a TCP server in the pod (nc -lk) that writes what it
// receives to its log; it is stopped at Close.
func (p *Pod) ListenTCP(port int) (*Process, error) {
	return p.Chassis.topo.StartProcess(ProcessSpec{
		Name: fmt.Sprintf("nc-%s-%d", p.Name, port), Netns: p.Netns,
		Args: []string{"nc", "-lk", strconv.Itoa(port)},
	})
}

// StartProcess starts a tracked process (a govn daemon, a server…) with its
// output in Dir/<name>.log; Close stops it. Dir defaults to the topology's.
func (t *Topology) StartProcess(s ProcessSpec) (*Process, error) {
	if s.Dir == "" {
		s.Dir = t.Dir
	}
	p, err := StartProcess(s)
	if err != nil {
		return nil, err
	}
	if err := t.recordProcess(p.Pid); err != nil {
		t.logf("recording pid %d of %s: %v", p.Pid, p.Name, err)
	}
	t.mu.Lock()
	t.procs = append(t.procs, p)
	t.mu.Unlock()
	return p, nil
}

// LogTails returns the last n lines of every process and OVS log.
func (t *Topology) LogTails(n int) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b strings.Builder
	for _, p := range t.procs {
		fmt.Fprintf(&b, "--- %s (%s):\n%s\n", p.Name, p.Log, p.LogTail(n))
	}
	for _, c := range t.Chassis {
		if c != nil && c.OVS != nil {
			fmt.Fprintf(&b, "--- %s ovs-vswitchd:\n%s\n", c.Name, c.OVS.LogTail("ovs-vswitchd.log", n))
		}
	}
	return b.String()
}

// Close stops every server, process, OVS instance and namespace the topology created
// (even if some steps fail), then checks for leaks: any surviving process or
// namespace is reported as an error. The directory is removed unless
// GOVN_E2E_KEEP is set.
func (t *Topology) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	procs, ovss, nss, servers := t.procs, t.ovs, t.netns, t.servers
	t.mu.Unlock()

	var errs []error
	for _, s := range servers {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	var pids []int
	for _, v := range ovss {
		for _, pid := range v.Pids() {
			pids = append(pids, pid)
		}
	}
	var wg sync.WaitGroup
	ovsErrs := make([]error, len(ovss))
	for i, v := range ovss {
		wg.Add(1)
		go func() { defer wg.Done(); ovsErrs[i] = v.Stop() }()
	}
	wg.Wait()
	errs = append(errs, ovsErrs...)
	for i := len(nss) - 1; i >= 0; i-- {
		if err := run("ip", "netns", "del", nss[i]); err != nil {
			errs = append(errs, err)
		}
	}
	// Leak check.
	for _, p := range procs {
		if ok, _ := p.Exited(); !ok {
			errs = append(errs, fmt.Errorf("leak: process %s (pid %d) still running", p.Name, p.Pid))
		}
	}
	for _, pid := range pids {
		if ovstest.Alive(pid) {
			errs = append(errs, fmt.Errorf("leak: OVS daemon pid %d still running", pid))
		}
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], t.Prefix+"-") {
				errs = append(errs, fmt.Errorf("leak: namespace %s still exists", f[0]))
			}
		}
	}
	if err := errors.Join(errs...); err != nil || t.keepDir {
		t.logf("topology %s: logs kept in %s", t.Prefix, t.Dir)
		return err
	}
	return os.RemoveAll(t.Dir)
}

func execIn(netns string, args ...string) (string, error) {
	full := append([]string{"netns", "exec", netns}, args...)
	out, err := exec.Command("ip", full...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ip netns exec %s %s: %w: %s", netns, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
