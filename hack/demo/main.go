// Command govn-demo is `make demo`: the first two-chassis ping, told like a
// tutorial. It starts govn's central components (`govn up --controller off`)
// in a private directory, builds two chassis with e2e/harness (the code the
// end-to-end tests prove: a network namespace per chassis with its own
// ovsdb-server and ovs-vswitchd, userspace datapath, Geneve over an underlay
// bridge) running `govn controller`, and three pods (two on ch1, one on ch2).
// It configures the network with govnctl through the gRPC API, then shows real
// packets (ping across Geneve and on one chassis, nc to an allowed and to a
// blocked port), govnctl trace for a dropped and a delivered packet, and the
// real OVN/OVS tools reading what govn made.
//
// Every expectation is checked: the demo exits 1 if any fails (after tearing
// everything down), 130 on SIGINT/SIGTERM (also after teardown).
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/govn/govn/e2e/harness"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

type config struct {
	govn, govnctl string
	keep          bool
}

func execute(args []string, stdout, stderr io.Writer) int {
	var cfg config
	code := 0
	cmd := &cobra.Command{
		Use:   "govn-demo",
		Short: "Two chassis, three pods, real packets: govn end to end (needs root and Open vSwitch)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			err := run(ctx, cfg, stdout)
			if ctx.Err() != nil {
				code = 130
				return errors.New("interrupted (everything it started was torn down)")
			}
			if err != nil {
				code = 1
			}
			return err
		},
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.Flags().StringVar(&cfg.govn, "govn", "bin/govn", "govn binary")
	cmd.Flags().StringVar(&cfg.govnctl, "govnctl", "bin/govnctl", "govnctl binary")
	cmd.Flags().BoolVar(&cfg.keep, "keep-logs", false, "keep the daemons' logs (the directory is printed)")
	if err := cmd.Execute(); err != nil {
		if code == 130 {
			fmt.Fprintf(stderr, "demo %v\n", err)
			return code
		}
		fmt.Fprintf(stderr, "demo FAILED: %v\n", err)
		if code == 0 {
			code = 2 // bad flags
		}
		return code
	}
	return 0
}

// pod is one of the demo's pods.
type pod struct {
	name    string
	chassis int // 0 or 1
	mac     string
	ip      netip.Prefix
	h       *harness.Pod
}

func (p *pod) addr() string { return p.ip.Addr().String() }

type demo struct {
	ctx     context.Context
	cfg     config
	out     io.Writer
	dir     string // central data directory (short: unix sockets)
	nb, sb  string // unix:PATH remotes
	api     string // unix:PATH of the gRPC API
	up      *harness.Process
	topo    *harness.Topology
	pods    []*pod
	aclUUID string   // of the ACL dropping tcp/23 to pod3
	checks  []string // expectations that held, for the closing summary
	started time.Time
}

func run(ctx context.Context, cfg config, out io.Writer) (err error) {
	for _, b := range []*string{&cfg.govn, &cfg.govnctl} {
		abs, err := filepath.Abs(*b)
		if err != nil {
			return err
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("%w (run `make build` first)", err)
		}
		*b = abs
	}
	if err := harness.Available(); err != nil {
		return fmt.Errorf("this demo needs root and Open vSwitch: %w", err)
	}
	for _, t := range []string{"ovn-sbctl", "ovs-ofctl"} {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%s not found in PATH", t)
		}
	}
	d := &demo{ctx: ctx, cfg: cfg, out: out, started: time.Now()}
	defer func() {
		d.say("teardown: stopping every process by pid, deleting every namespace")
		// Keep the logs of a failed run; an interrupted one leaves nothing.
		if cerr := d.teardown(err != nil && ctx.Err() == nil); cerr != nil {
			fmt.Fprintf(out, "teardown: %v\n", cerr)
			if err == nil {
				err = cerr
			}
		} else {
			fmt.Fprintln(out, "all clean.")
		}
		if err == nil {
			fmt.Fprintf(out, "\nchecked:\n")
			for _, c := range d.checks {
				fmt.Fprintf(out, "  ok  %s\n", c)
			}
			fmt.Fprintf(out, "\ndemo passed in %v: every expectation held.\n", time.Since(d.started).Round(100*time.Millisecond))
		}
	}()
	fmt.Fprint(out, "govn demo: the first two-chassis ping.\n"+
		"  central  govn up: northbound + southbound DBs, northd, gRPC API\n"+
		"  ch1      pod1 10.0.0.1, pod2 10.0.0.2   (own OVS, userspace datapath, govn controller)\n"+
		"  ch2      pod3 10.0.0.3                  (own OVS, userspace datapath, govn controller)\n"+
		"  ch1 <-- Geneve over the underlay 172.16.0.0/24 --> ch2\n")
	// Leftovers of runs that were killed (SIGKILL) before their teardown.
	if err := harness.Sweep(); err != nil {
		fmt.Fprintf(out, "(sweeping leftovers of dead runs: %v)\n", err)
	}
	for _, step := range []func() error{d.central, d.chassis, d.configure, d.packets, d.traces, d.realTools} {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := step(); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.out, "\n\033[1m== %s\033[0m\n", fmt.Sprintf(format, args...))
}

// central starts `govn up --controller off`: nbdb, sbdb, northd and the API
// in one process.
func (d *demo) central() error {
	dir, err := os.MkdirTemp("", "gvdemo")
	if err != nil {
		return err
	}
	d.dir = dir
	d.api = "unix:" + filepath.Join(dir, "api.sock")
	args := []string{d.cfg.govn, "up", "--controller", "off", "--data-dir", filepath.Join(dir, "db"),
		"--api-listen", d.api}
	d.say("1. central components: govn up (nbdb, sbdb, northd, gRPC API in one process)")
	fmt.Fprintf(d.out, "$ govn up --controller off --data-dir %s/db --api-listen %s\n", dir, d.api)
	d.up, err = harness.StartProcess(harness.ProcessSpec{Name: "govn-up", Args: args, Dir: dir})
	if err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, _ := os.ReadFile(d.up.Log)
		if i := bytes.Index(b, []byte("govn is up (data directory")); i >= 0 {
			// Print the banner (up to the connect hints).
			banner := string(b[i:])
			if j := strings.Index(banner, "\nConnect with:"); j >= 0 {
				banner = banner[:j+1]
			}
			fmt.Fprint(d.out, banner)
			break
		}
		if ok, werr := d.up.Exited(); ok {
			return fmt.Errorf("govn up exited (%v):\n%s", werr, d.up.LogTail(20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("govn up not ready after 30 s:\n%s", d.up.LogTail(20))
		}
		if err := d.sleep(50 * time.Millisecond); err != nil {
			return err
		}
	}
	d.nb = "unix:" + filepath.Join(dir, "db", "ovnnb_db.sock")
	d.sb = "unix:" + filepath.Join(dir, "db", "ovnsb_db.sock")
	return nil
}

// pass records an expectation that held.
func (d *demo) pass(format string, args ...any) {
	d.checks = append(d.checks, fmt.Sprintf(format, args...))
}

func (d *demo) sleep(t time.Duration) error {
	select {
	case <-d.ctx.Done():
		return d.ctx.Err()
	case <-time.After(t):
		return nil
	}
}

// chassis builds two chassis running `govn controller` and three pods.
func (d *demo) chassis() error {
	d.say("2. two chassis: a network namespace each with its own OVS (userspace datapath), Geneve underlay")
	var err error
	d.topo, err = harness.New(harness.Options{Chassis: 2, ExternalIDs: func(c *harness.Chassis) map[string]string {
		return map[string]string{"ovn-remote": d.sb}
	}})
	if err != nil {
		return err
	}
	for _, c := range d.topo.Chassis {
		fmt.Fprintf(d.out, "chassis %s: namespace %s, ovsdb-server + ovs-vswitchd, br-int, encap geneve %s\n", c.Name, c.Netns, c.IP)
	}
	if err := d.ctx.Err(); err != nil {
		return err
	}
	for _, c := range d.topo.Chassis {
		fmt.Fprintf(d.out, "$ ip netns exec %s govn controller    # external_ids:ovn-remote=%s\n", c.Netns, d.sb)
		if _, err := c.StartProcess("controller", d.cfg.govn, "controller"); err != nil {
			return err
		}
	}
	if err := d.eventually(30*time.Second, "both chassis registered in the southbound DB", func() error {
		out, err := d.tool("ovn-sbctl", "--db="+d.sb, "--timeout=5", "--bare", "--columns=name", "list", "Chassis")
		if err != nil {
			return err
		}
		for _, c := range d.topo.Chassis {
			if !strings.Contains(out, c.Name) {
				return fmt.Errorf("chassis %s not registered (have %q)", c.Name, strings.Fields(out))
			}
		}
		return nil
	}); err != nil {
		return err
	}
	d.pass("both chassis' controllers registered in the southbound DB")
	fmt.Fprintf(d.out, "$ ovn-sbctl --db=%s show\n", d.sb)
	if err := d.show("ovn-sbctl", "--db="+d.sb, "show"); err != nil {
		return err
	}

	d.say("   three pods: pod1 and pod2 on ch1, pod3 on ch2 (veth into br-int, external_ids:iface-id)")
	d.pods = []*pod{
		{name: "pod1", chassis: 0, mac: "0a:00:00:00:00:01", ip: netip.MustParsePrefix("10.0.0.1/24")},
		{name: "pod2", chassis: 0, mac: "0a:00:00:00:00:02", ip: netip.MustParsePrefix("10.0.0.2/24")},
		{name: "pod3", chassis: 1, mac: "0a:00:00:00:00:03", ip: netip.MustParsePrefix("10.0.0.3/24")},
	}
	for _, p := range d.pods {
		c := d.topo.Chassis[p.chassis]
		p.h, err = c.AddPod(harness.PodSpec{Name: p.name, IfaceID: p.name, MAC: p.mac, IP: p.ip})
		if err != nil {
			return err
		}
		fmt.Fprintf(d.out, "%s on %s: %s %s (iface-id %s, ofport %d)\n", p.name, c.Name, p.mac, p.ip, p.name, p.h.OFPort)
	}
	return nil
}

// configure builds the logical network with govnctl through the API.
func (d *demo) configure() error {
	d.say("3. the logical network, with govnctl through the gRPC API")
	fmt.Fprintf(d.out, "$ export GOVN_SERVER=%s\n", d.api)
	if err := d.govnctl("ls", "add", "demo"); err != nil {
		return err
	}
	for _, p := range d.pods {
		a := p.mac + " " + p.addr()
		if err := d.govnctl("lsp", "add", "demo", p.name, "--address", a, "--port-security", a); err != nil {
			return err
		}
	}
	out, err := d.govnctlOut("acl", "add", "demo", "to-lport", "1000", `outport == "pod3" && tcp.dst == 23`, "drop",
		"--name", "no-telnet-to-pod3")
	if err != nil {
		return err
	}
	d.aclUUID = strings.TrimSpace(out)
	if err := d.govnctl("acl", "list", "demo"); err != nil {
		return err
	}
	// Every chassis has installed the flows when this returns.
	if err := d.govnctl("sync", "--wait", "hv"); err != nil {
		return err
	}
	return d.govnctl("show")
}

// packets sends real packets and checks what arrives.
func (d *demo) packets() error {
	p1, p2, p3 := d.pods[0], d.pods[1], d.pods[2]
	d.say("4. real packets")
	// The first packet to a new tunnel neighbour may be lost while OVS
	// resolves it (ARP on the underlay): warm up until one answer arrives.
	for _, dst := range []*pod{p3, p2} {
		if err := p1.h.WaitReachable(dst.ip.Addr(), 20*time.Second); err != nil {
			return err
		}
	}
	for _, c := range []struct {
		dst  *pod
		what string
	}{{p3, "across Geneve, ch1 -> ch2"}, {p2, "on the same chassis ch1"}} {
		fmt.Fprintf(d.out, "# %s -> %s, %s\n$ ip netns exec %s ping -c 5 -i 0.2 %s\n", p1.name, c.dst.name, c.what, p1.h.Netns, c.dst.addr())
		out, _ := p1.h.Exec("ping", "-n", "-c", "5", "-i", "0.2", "-W", "1", c.dst.addr())
		summary := pingSummary(out)
		fmt.Fprintf(d.out, "%s\n", summary)
		if !strings.Contains(summary, " 0% packet loss") {
			return fmt.Errorf("ping %s -> %s: want 0%% packet loss, got %q", p1.name, c.dst.name, summary)
		}
		d.pass("ping %s -> %s (%s): 5 of 5 answered", p1.name, c.dst.name, c.what)
		if err := d.ctx.Err(); err != nil {
			return err
		}
	}
	for _, port := range []int{80, 23} {
		if _, err := p3.h.ListenTCP(port); err != nil {
			return err
		}
	}
	fmt.Fprintf(d.out, "# pod3 listens on tcp/80 and tcp/23 (nc -lk)\n")
	// The listeners start asynchronously: port 80 must answer (retry
	// until nc is listening); port 23 must then stay closed.
	fmt.Fprintf(d.out, "$ ip netns exec %s nc -z -w 2 %s 80\n", p1.h.Netns, p3.addr())
	if err := d.eventually(10*time.Second, "pod1 connects to pod3:80", func() error {
		return p1.h.TCPConnect(p3.ip.Addr(), 80, "", 2*time.Second)
	}); err != nil {
		return err
	}
	fmt.Fprintln(d.out, "connected: tcp/80 is allowed")
	d.pass("nc %s -> %s:80 connects", p1.name, p3.name)
	if err := d.ctx.Err(); err != nil {
		return err
	}
	// Control for port 23: the listener is up (from pod3 itself).
	if err := d.eventually(10*time.Second, "pod3 listens on tcp/23", func() error {
		_, err := p3.h.Exec("nc", "-z", "-w", "1", p3.addr(), "23")
		return err
	}); err != nil {
		return err
	}
	fmt.Fprintf(d.out, "$ ip netns exec %s nc -z -w 2 %s 23\n", p1.h.Netns, p3.addr())
	if err := p1.h.TCPConnect(p3.ip.Addr(), 23, "", 2*time.Second); err == nil {
		return errors.New("pod1 connected to pod3:23: want it dropped by ACL no-telnet-to-pod3")
	}
	fmt.Fprintln(d.out, "timed out: tcp/23 is dropped by the ACL (pod3 is listening on it)")
	d.pass("nc %s -> %s:23 is dropped while %s listens on 23", p1.name, p3.name, p3.name)
	return nil
}

// traces runs govnctl trace for the blocked and a delivered packet.
func (d *demo) traces() error {
	p1, p3 := d.pods[0], d.pods[2]
	flow := func(port int) string {
		return fmt.Sprintf(`inport == "%s" && eth.src == %s && eth.dst == %s && ip4.src == %s && ip4.dst == %s && tcp.dst == %d`,
			p1.name, p1.mac, p3.mac, p1.addr(), p3.addr(), port)
	}
	d.say("5. govnctl trace (through the API): why tcp/23 is dropped, and where tcp/80 goes")
	out, err := d.govnctlOut("trace", "--summary", flow(23))
	if err != nil {
		return err
	}
	if want := `dropped by ACL "no-telnet-to-pod3" (` + d.aclUUID + ")"; d.aclUUID == "" || !strings.Contains(out, want) {
		return fmt.Errorf("trace of tcp/23: the verdict does not name the ACL as the reason of the drop (want %q)", want)
	}
	d.pass("govnctl trace: tcp/23 dropped by ACL no-telnet-to-pod3 (%s)", d.aclUUID)
	out, err = d.govnctlOut("trace", "--minimal", flow(80))
	if err != nil {
		return err
	}
	if !strings.Contains(out, `output("pod3");`) {
		return errors.New("trace of tcp/80: not delivered to pod3")
	}
	d.pass("govnctl trace: tcp/80 delivered to pod3")
	return nil
}

// realTools shows the real OVN and OVS tools reading govn's southbound
// database and the controllers' OpenFlow tables.
func (d *demo) realTools() error {
	d.say("6. the real OVN/OVS tools read what govn wrote")
	fmt.Fprintf(d.out, "$ ovn-sbctl --db=%s lflow-list demo | head -12\n", d.sb)
	out, err := d.tool("ovn-sbctl", "--db="+d.sb, "--timeout=10", "lflow-list", "demo")
	if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 10 {
		return fmt.Errorf("ovn-sbctl lflow-list demo: only %d lines", len(lines))
	}
	fmt.Fprintf(d.out, "%s\n... (%d lines)\n", strings.Join(lines[:12], "\n"), len(lines))
	fmt.Fprintf(d.out, "$ ovn-sbctl --db=%s lflow-list demo | grep 'tcp.dst == 23'    # the ACL, compiled by northd\n", d.sb)
	var acl []string
	for _, l := range lines {
		if strings.Contains(l, "tcp.dst == 23") {
			acl = append(acl, l)
		}
	}
	if len(acl) == 0 {
		return errors.New("ovn-sbctl lflow-list demo: no logical flow for the tcp/23 ACL")
	}
	fmt.Fprintln(d.out, strings.Join(acl, "\n"))
	d.pass("ovn-sbctl lflow-list reads govn's southbound DB: %d lines, %d for the ACL", len(lines), len(acl))
	for _, c := range d.topo.Chassis {
		fmt.Fprintf(d.out, "$ ip netns exec %s ovs-ofctl dump-aggregate br-int\n", c.Netns)
		out, err := c.OVS.Ofctl("dump-aggregate", "br-int")
		if err != nil {
			return err
		}
		out = strings.TrimSpace(out)
		fmt.Fprintf(d.out, "%s\n", out)
		m := regexp.MustCompile(`flow_count=(\d+)`).FindStringSubmatch(out)
		if m == nil || m[1] == "0" {
			return fmt.Errorf("chassis %s: br-int has no flows", c.Name)
		}
		d.pass("ovs-ofctl on %s: br-int holds %s OpenFlow flows from govn controller", c.Name, m[1])
	}
	return nil
}

// govnctl runs and prints a govnctl command.
func (d *demo) govnctl(args ...string) error {
	_, err := d.govnctlOut(args...)
	return err
}

func (d *demo) govnctlOut(args ...string) (string, error) {
	fmt.Fprintf(d.out, "$ govnctl %s\n", shellJoin(args))
	cmd := exec.CommandContext(d.ctx, d.cfg.govnctl, args...)
	cmd.Env = append(os.Environ(), "GOVN_SERVER="+d.api)
	var buf bytes.Buffer
	cmd.Stdout = io.MultiWriter(d.out, &buf)
	cmd.Stderr = io.MultiWriter(d.out, &buf)
	if err := cmd.Run(); err != nil {
		return buf.String(), fmt.Errorf("govnctl %s: %w", shellJoin(args), err)
	}
	return buf.String(), nil
}

// tool runs an external tool quietly.
func (d *demo) tool(name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(d.ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return stdout.String(), nil
}

// show runs a tool and prints its output.
func (d *demo) show(name string, args ...string) error {
	out, err := d.tool(name, args...)
	fmt.Fprint(d.out, out)
	return err
}

func (d *demo) eventually(timeout time.Duration, what string, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %v: %w", what, timeout, err)
		}
		if err := d.sleep(200 * time.Millisecond); err != nil {
			return err
		}
	}
}

// teardown stops everything the demo started; on failure it first prints
// the tails of the daemons' logs.
func (d *demo) teardown(failed bool) error {
	var errs []error
	if failed && d.topo != nil {
		fmt.Fprintf(d.out, "%s\n", d.topo.LogTails(15))
	}
	if failed && d.up != nil {
		fmt.Fprintf(d.out, "--- govn up (%s):\n%s\n", d.up.Log, d.up.LogTail(15))
	}
	if d.topo != nil {
		errs = append(errs, d.topo.Close())
	}
	if d.up != nil {
		errs = append(errs, d.up.Stop())
	}
	if d.dir != "" {
		if d.cfg.keep || failed {
			fmt.Fprintf(d.out, "central logs kept in %s\n", d.dir)
		} else {
			errs = append(errs, os.RemoveAll(d.dir))
		}
	}
	return errors.Join(errs...)
}

// pingSummary returns ping's two summary lines.
func pingSummary(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "packets transmitted") || strings.HasPrefix(l, "rtt ") {
			keep = append(keep, l)
		}
	}
	if len(keep) == 0 {
		return strings.TrimSpace(out)
	}
	return strings.Join(keep, "\n")
}

// shellJoin quotes arguments for display like a shell would need them.
func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\"'$&|<>();*?[]{}=!\\") && !regexp.MustCompile(`^--[a-z-]+=[\w:./-]+$`).MatchString(a) {
			q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		} else {
			q[i] = a
		}
	}
	return strings.Join(q, " ")
}
