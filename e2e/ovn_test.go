package e2e

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govn/govn/e2e/harness"
)

// ovn is a running govn deployment: central databases and northd in the root
// namespace, one controller per chassis.
type ovn struct {
	t      testing.TB
	topo   *harness.Topology
	dbDir  string // short directory for the central databases' sockets
	nbSock string
	sbSock string
	northd *harness.Process
	ctrl   map[*harness.Chassis]*harness.Process
	// waitHV is whether `ovn-nbctl --wait=hv` completes (controllers
	// acknowledge nb_cfg); otherwise the scenarios poll for reachability.
	waitHV bool
	// reference: the deployment is OVN 23.03 from the distribution
	// (GOVN_E2E_IMPL=ovn), not govn.
	reference bool
	// SetupTime is the time from nothing to a deployment whose controllers
	// have acknowledged an nb_cfg (or, without --wait=hv support, are running).
	SetupTime time.Duration
}

// startOVN builds a topology of n chassis and starts govn on it. Everything
// is torn down at the end of the test (the harness checks for leaks).
func startOVN(t testing.TB, n int) *ovn {
	t.Helper()
	if err := harness.Available(); err != nil {
		t.Skipf("e2e: %v", err)
	}
	if err := missingOVNTools(); err != nil {
		t.Skipf("e2e: %v", err)
	}
	if govnBin == "" {
		t.Fatal("e2e: govn binary was not built (TestMain)")
	}
	start := time.Now()
	// Unix socket paths must stay short: a private /tmp/gvdbXXXX directory.
	dbDir, err := os.MkdirTemp("", "gvdb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if os.Getenv("GOVN_E2E_KEEP") == "" {
			os.RemoveAll(dbDir)
		}
	})
	o := &ovn{t: t, dbDir: dbDir, ctrl: map[*harness.Chassis]*harness.Process{}, reference: referenceOVN(),
		nbSock: filepath.Join(dbDir, "nb", "nb.sock"), sbSock: filepath.Join(dbDir, "sb", "sb.sock")}
	o.topo = harness.Start(t, harness.Options{Chassis: n, ExternalIDs: func(c *harness.Chassis) map[string]string {
		return map[string]string{"ovn-remote": "unix:" + o.sbSock}
	}})
	// On failure, show what the control plane made of it (runs before the
	// harness tears the topology down: cleanups are LIFO).
	t.Cleanup(func() {
		if t.Failed() {
			o.dumpState()
			o.hold()
		}
	})
	if o.reference {
		o.startReferenceCentral()
	} else {
		for _, db := range []struct{ name, sock string }{{"nbdb", o.nbSock}, {"sbdb", o.sbSock}} {
			o.start(harness.ProcessSpec{Name: db.name, Args: govnArgs(db.name,
				"--data-dir", filepath.Dir(db.sock), "--remote", "punix:"+db.sock)})
		}
		o.waitDB("ovn-nbctl", o.nbSock)
		o.waitDB("ovn-sbctl", o.sbSock)
		o.northd = o.start(harness.ProcessSpec{Name: "northd", Args: govnArgs("northd",
			"--nb", "unix:"+o.nbSock, "--sb", "unix:"+o.sbSock)})
	}
	for _, c := range o.topo.Chassis {
		o.startController(c)
	}
	// Controllers register their chassis.
	o.eventually(30*time.Second, "all chassis registered in the SB", func() error {
		out, err := o.sbctlErr("--bare", "--columns=name", "list", "Chassis")
		if err != nil {
			return err
		}
		for _, c := range o.topo.Chassis {
			if !strings.Contains(out, c.Name) {
				return fmt.Errorf("chassis %s missing; have %q", c.Name, strings.Fields(out))
			}
		}
		return nil
	})
	// Is --wait=hv supported end to end (northd computes hv_cfg from the
	// controllers' Chassis_Private.nb_cfg)?
	if _, err := o.nbctlErr("--timeout=20", "--wait=hv", "sync"); err == nil {
		o.waitHV = true
	} else {
		t.Logf("ovn-nbctl --wait=hv sync does not complete (%v): scenarios poll instead", err)
	}
	o.SetupTime = time.Since(start)
	t.Logf("govn on %d chassis ready in %v (topology %v)", n, o.SetupTime.Round(time.Millisecond),
		o.topo.SetupTime.Round(time.Millisecond))
	return o
}

// govnArgs is the command line of a govn daemon; GOVN_E2E_LOG_LEVEL (e.g.
// debug) sets every daemon's --log-level.
func govnArgs(daemon string, args ...string) []string {
	argv := []string{govnBin, daemon}
	if l := os.Getenv("GOVN_E2E_LOG_LEVEL"); l != "" {
		argv = append(argv, "--log-level", l)
	}
	return append(argv, args...)
}

func (o *ovn) start(s harness.ProcessSpec) *harness.Process {
	o.t.Helper()
	p, err := o.topo.StartProcess(s)
	if err != nil {
		o.t.Fatal(err)
	}
	return p
}

// startController starts `govn controller` in chassis c (its OVS database
// and br-int socket come from OVS_RUNDIR, which the harness sets).
func (o *ovn) startController(c *harness.Chassis) *harness.Process {
	o.t.Helper()
	if o.reference {
		return o.startReferenceController(c)
	}
	p, err := c.StartProcess("controller", govnArgs("controller")...)
	if err != nil {
		o.t.Fatal(err)
	}
	o.ctrl[c] = p
	return p
}

// restartController stops c's controller with sig and starts a new one.
// SIGUSR1 is the planned restart (exit keeping the chassis registration and
// port claims); SIGKILL is a crash.
func (o *ovn) restartController(c *harness.Chassis, sig syscall.Signal) *harness.Process {
	o.t.Helper()
	old := o.ctrl[c]
	if err := syscall.Kill(old.Pid, sig); err != nil {
		o.t.Fatal(err)
	}
	if ok, err := old.Wait(10 * time.Second); !ok {
		o.t.Fatalf("controller of %s did not exit on %v", c.Name, sig)
	} else if err != nil && sig != syscall.SIGKILL {
		o.t.Fatalf("controller of %s exited with %v on %v", c.Name, err, sig)
	}
	return o.startController(c)
}

// waitDB waits until the database at sock answers tool.
func (o *ovn) waitDB(tool, sock string) {
	o.t.Helper()
	o.eventually(30*time.Second, tool+" reaches "+sock, func() error {
		_, err := runTool(tool, "--db=unix:"+sock, "--timeout=2", "show")
		return err
	})
}

func runTool(name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err,
			bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// nbctl runs the real ovn-nbctl against the govn NB; with waitHV it adds
// --wait=hv (returns when every chassis has installed the change).
func (o *ovn) nbctl(args ...string) string {
	o.t.Helper()
	if o.waitHV {
		args = append([]string{"--wait=hv"}, args...)
	}
	out, err := o.nbctlErr(args...)
	if err != nil {
		o.t.Fatal(err)
	}
	return out
}

func (o *ovn) nbctlErr(args ...string) (string, error) {
	return runTool("ovn-nbctl", append([]string{"--db=unix:" + o.nbSock, "--timeout=30"}, args...)...)
}

func (o *ovn) sbctlErr(args ...string) (string, error) {
	return runTool("ovn-sbctl", append([]string{"--db=unix:" + o.sbSock, "--timeout=10"}, args...)...)
}

// daemonsAlive reports a govn daemon that has exited.
func (o *ovn) daemonsAlive() error {
	procs := []*harness.Process{o.northd}
	for _, p := range o.ctrl {
		procs = append(procs, p)
	}
	for _, p := range procs {
		if p == nil {
			continue
		}
		if done, err := p.Exited(); done {
			return fmt.Errorf("%s exited (%v): %s", p.Name, err, p.LogTail(3))
		}
	}
	return nil
}

// eventually retries f every 100 ms until it succeeds or timeout passes.
func (o *ovn) eventually(timeout time.Duration, what string, f func() error) {
	o.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if derr := o.daemonsAlive(); derr != nil {
			o.t.Fatalf("%s: %v (while waiting: %v)", what, derr, err)
		}
		if time.Now().After(deadline) {
			o.t.Fatalf("%s: not true after %v: %v", what, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pod is a pod with its logical port.
type pod struct {
	*harness.Pod
	LSP string
}

// addPod creates pod name on chassis c with MAC 00:00:00:00:00:<n> and IP
// 10.0.0.<n>/24 (the VIF first, so the lsp-add that follows is complete
// when --wait=hv returns) and adds its logical port to switch ls.
func (o *ovn) addPod(c *harness.Chassis, ls, name string, n int) *pod {
	o.t.Helper()
	p := o.addVIF(c, name, n)
	o.nbctl("lsp-add", ls, p.LSP, "--", "lsp-set-addresses", p.LSP, p.MAC+" "+p.IP.Addr().String())
	return p
}

// addVIF creates the pod (namespace + OVS port with iface-id=lsp-<name>)
// without touching the NB.
func (o *ovn) addVIF(c *harness.Chassis, name string, n int) *pod {
	o.t.Helper()
	lsp := "lsp-" + name
	hp, err := c.AddPod(harness.PodSpec{Name: name, IfaceID: lsp, MAC: fmt.Sprintf("00:00:00:00:00:%02x", n),
		IP: netip.MustParsePrefix(fmt.Sprintf("10.0.0.%d/24", n))})
	if err != nil {
		o.t.Fatal(err)
	}
	return &pod{Pod: hp, LSP: lsp}
}

// reach asserts that src reaches dst: with --wait=hv the flows are already
// installed, so a short warm-up (tunnel neighbour resolution may eat the very
// first packet) then count packets with zero loss; without, poll first.
func (o *ovn) reach(src, dst *pod, count int) {
	o.t.Helper()
	if err := src.WaitReachable(dst.IP.Addr(), 20*time.Second); err != nil {
		o.t.Fatalf("%s -> %s: %v", src.Name, dst.Name, err)
	}
	// The first answer can come while the last flows of a change are still
	// being installed or revalidated (see settle): within settle, count
	// echo requests in a row must all be answered.
	o.eventually(settle, fmt.Sprintf("%s reaches %s without loss", src.Name, dst.Name), func() error {
		r, err := src.Ping(dst.IP.Addr(), count)
		if err != nil {
			return err
		}
		if r.Loss() != 0 {
			return fmt.Errorf("%+v", r)
		}
		return nil
	})
}

// settle is how long a change may take to reach packets after the flows
// are installed: OVS revalidates its datapath flow cache asynchronously, so
// for a few hundred milliseconds (on a loaded machine) packets can still
// follow the old flows.
const settle = 5 * time.Second

// unreachable asserts that src's echo requests to dst go unanswered (after
// at most settle).
func (o *ovn) unreachable(src, dst *pod, count int) {
	o.t.Helper()
	o.eventually(settle, fmt.Sprintf("%s cannot reach %s", src.Name, dst.Name), func() error {
		r, err := src.Ping(dst.IP.Addr(), count)
		if err != nil {
			return err
		}
		if r.Received != 0 {
			return fmt.Errorf("%d of %d echo requests answered, want none", r.Received, r.Sent)
		}
		return nil
	})
}

// icmpInEchos is the number of ICMP echo requests the pod's kernel received
// (per-namespace /proc/net/snmp): it tells whether frames reached the pod at
// all, independently of whether the reply could return.
func icmpInEchos(p *pod) (int, error) {
	out, err := p.Exec("cat", "/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	var hdr []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Icmp:" {
			continue
		}
		if hdr == nil {
			hdr = f
			continue
		}
		for i, h := range hdr {
			if h == "InEchos" && i < len(f) {
				return strconv.Atoi(f[i])
			}
		}
	}
	return 0, fmt.Errorf("no Icmp InEchos in /proc/net/snmp of %s", p.Name)
}

// hold keeps a failed scenario's topology up for $GOVN_E2E_HOLD (a Go
// duration, e.g. 10m) before teardown, to inspect it by hand (ovs-ofctl,
// ovs-appctl ofproto/trace, ovn-sbctl); the sockets and namespaces are
// logged. The test's -timeout still applies.
func (o *ovn) hold() {
	d, err := time.ParseDuration(os.Getenv("GOVN_E2E_HOLD"))
	if err != nil || d <= 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "holding the topology for %v: NB unix:%s SB unix:%s\n", d, o.nbSock, o.sbSock)
	for _, c := range o.topo.Chassis {
		fmt.Fprintf(&b, "  %s: netns %s, %s\n", c.Name, c.Netns, strings.Join(c.OVS.Env(), " "))
	}
	o.t.Log(b.String())
	fmt.Fprint(os.Stderr, b.String())
	time.Sleep(d)
}

// dumpState logs the control plane's view on failure: SB contents, the
// chassis' flow tables and OVS ports.
func (o *ovn) dumpState() {
	t := o.t
	var b strings.Builder
	add := func(title, out string, err error) {
		if err != nil {
			out += "\n(error: " + err.Error() + ")"
		}
		if len(out) > 12000 {
			out = out[:12000] + "\n… (truncated)"
		}
		fmt.Fprintf(&b, "=== %s\n%s\n", title, out)
	}
	out, err := o.nbctlErr("show")
	add("ovn-nbctl show", out, err)
	out, err = o.sbctlErr("show")
	add("ovn-sbctl show", out, err)
	out, err = o.sbctlErr("--columns=logical_port,tunnel_key,chassis,up,mac", "list", "Port_Binding")
	add("SB Port_Binding", out, err)
	out, err = o.nbctlErr("--columns=nb_cfg,sb_cfg,hv_cfg", "list", "NB_Global")
	add("NB_Global", out, err)
	out, err = o.sbctlErr("--columns=chassis,nb_cfg", "list", "Chassis_Private")
	add("SB Chassis_Private", out, err)
	if o.topo != nil {
		for _, c := range o.topo.Chassis {
			if c == nil || c.OVS == nil {
				continue
			}
			out, err := c.OVS.Vsctl("show")
			add(c.Name+" ovs-vsctl show", out, err)
			out, err = c.OVS.Ofctl("dump-aggregate", "br-int")
			add(c.Name+" br-int dump-aggregate", out, err)
			out, err = c.OVS.Ofctl("-O", "OpenFlow15", "--no-stats", "dump-flows", "br-int", "table=0")
			add(c.Name+" br-int table 0", out, err)
		}
	}
	t.Logf("control-plane state:\n%s", b.String())
}

func itoa(i int) string { return strconv.Itoa(i) }

// tcpOK asserts that src can open a TCP connection to dst:port (retrying
// briefly: the listener may just have started).
func (o *ovn) tcpOK(src, dst *pod, port int) {
	o.t.Helper()
	o.eventually(10*time.Second, fmt.Sprintf("tcp %s -> %s:%d", src.Name, dst.Name, port), func() error {
		return src.TCPConnect(dst.IP.Addr(), port, "", 2*time.Second)
	})
}

// tcpBlocked asserts that src cannot open a TCP connection to dst:port
// (after at most settle).
func (o *ovn) tcpBlocked(src, dst *pod, port int) {
	o.t.Helper()
	o.eventually(settle, fmt.Sprintf("tcp %s -> %s:%d blocked", src.Name, dst.Name, port), func() error {
		if err := src.TCPConnect(dst.IP.Addr(), port, "", time.Second); err == nil {
			return fmt.Errorf("connected")
		}
		return nil
	})
}

// traceICMP runs ofproto/trace on src's chassis for an echo request from src
// to dst and returns the final "Datapath actions".
func (o *ovn) traceICMP(c *harness.Chassis, src, dst *pod) string {
	o.t.Helper()
	flow := fmt.Sprintf("in_port=%d,icmp,dl_src=%s,dl_dst=%s,nw_src=%s,nw_dst=%s,nw_ttl=64,icmp_type=8",
		src.OFPort, src.MAC, dst.MAC, src.IP.Addr(), dst.IP.Addr())
	out, err := c.OVS.Appctl("ofproto/trace", "br-int", flow)
	if err != nil {
		o.t.Fatal(err)
	}
	const key = "Datapath actions: "
	i := strings.LastIndex(out, key)
	if i < 0 {
		o.t.Fatalf("ofproto/trace %s: no datapath actions:\n%s", flow, out)
	}
	acts, _, _ := strings.Cut(out[i+len(key):], "\n")
	return strings.TrimSpace(acts)
}
