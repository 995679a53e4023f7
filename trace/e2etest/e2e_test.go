// Package e2etest checks that govn trace predicts what real packets do: a
// two-chassis govn deployment (real ovsdb-servers, govn northd and one govn
// controller per chassis, in process; real ovs-vswitchd with the userspace
// datapath, Geneve between the chassis; pods in network namespaces from
// e2e/harness) runs the F4 scenarios (delivery, an ACL drop, a port
// security drop), and for each one the trace of the southbound database's
// logical flows must agree with what ping and TCP connections see.
package e2etest

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	ctlrun "github.com/govn/govn/controller/run"
	"github.com/govn/govn/e2e/harness"
	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/nbdb"
	northdrun "github.com/govn/govn/northd/run"
	"github.com/govn/govn/sbdb"
	"github.com/govn/govn/trace"
	"github.com/govn/govn/trace/sbload"
)

// update is accepted so that `go test ./trace/... -update` works; the
// golden files live in package trace.
var _ = flag.Bool("update", false, "rewrite golden files (package trace)")

var (
	nbDatabase = dbserver.Database{Name: nbdb.DatabaseName, Schema: nbdb.SchemaJSON, Base: "ovnnb_db", GlobalTable: "NB_Global"}
	sbDatabase = dbserver.Database{Name: sbdb.DatabaseName, Schema: sbdb.SchemaJSON, Base: "ovnsb_db", GlobalTable: "SB_Global"}
)

type env struct {
	t      *testing.T
	nb, sb *dbserver.Server
	topo   *harness.Topology
}

func (e *env) nbctl(args ...string) string {
	e.t.Helper()
	return strings.TrimSpace(dbservertest.Run(e.t, "ovn-nbctl", append([]string{"--db=" + e.nb.Endpoint(), "--timeout=30"}, args...)...))
}

// background runs f until the test ends.
func background(t *testing.T, name string, f func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := f(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("%s: %v", name, err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

func start(t *testing.T) *env {
	if err := harness.Available(); err != nil {
		t.Skipf("e2e: %v", err)
	}
	if _, err := exec.LookPath("ovn-nbctl"); err != nil {
		t.Skip("ovn-nbctl not installed (apt install ovn-central)")
	}
	e := &env{t: t}
	e.nb = dbservertest.Start(t, nbDatabase, "", nil)
	e.sb = dbservertest.Start(t, sbDatabase, "", nil)
	e.nbctl("init")
	e.topo = harness.Start(t, harness.Options{Chassis: 2, ExternalIDs: func(*harness.Chassis) map[string]string {
		return map[string]string{"ovn-remote": e.sb.Endpoint()}
	}})
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	n, err := northdrun.Start(context.Background(), northdrun.Config{NB: []string{e.nb.Endpoint()}, SB: []string{e.sb.Endpoint()}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	background(t, "northd", n.Run)
	for _, c := range e.topo.Chassis {
		ctrl := ctlrun.New(ctlrun.Options{OVS: c.OVS.DBRemote(), RunDir: c.OVS.RunDir(), Hostname: c.Name,
			Conditional: true, Resync: time.Second, Log: log.With(zap.String("chassis", c.Name))})
		background(t, "controller "+c.Name, ctrl.Run)
	}
	return e
}

type pod struct {
	*harness.Pod
	LSP, MAC string
	IP       netip.Addr
}

func (e *env) addPod(c *harness.Chassis, name string, n int) *pod {
	e.t.Helper()
	mac := fmt.Sprintf("00:00:00:00:00:%02x", n)
	ip := netip.MustParsePrefix(fmt.Sprintf("10.0.0.%d/24", n))
	hp, err := c.AddPod(harness.PodSpec{Name: name, IfaceID: "lsp-" + name, MAC: mac, IP: ip})
	if err != nil {
		e.t.Fatal(err)
	}
	p := &pod{Pod: hp, LSP: "lsp-" + name, MAC: mac, IP: ip.Addr()}
	e.nbctl("lsp-add", "ls1", p.LSP, "--", "lsp-set-addresses", p.LSP, mac+" "+ip.Addr().String())
	return p
}

// predict traces microflow over the current southbound database.
func (e *env) predict(microflow string, ct ...string) *trace.Trace {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := sbload.Connect(ctx, []string{e.sb.Endpoint()})
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	s, err := sbload.Load(ctx, c)
	if err != nil {
		e.t.Fatal(err)
	}
	var opts trace.Options
	for _, f := range ct {
		st, err := trace.ParseCTState(f)
		if err != nil {
			e.t.Fatal(err)
		}
		opts.CT = append(opts.CT, st)
	}
	tr, err := trace.Run(s, "ls1", microflow, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return tr
}

// verdict is "output:<port>" for each delivery or "drop", joined by ", ".
func verdict(tr *trace.Trace) string {
	var v []string
	for _, o := range tr.Outcomes {
		if o.Verdict == "output" {
			v = append(v, "output:"+o.Port)
		} else {
			v = append(v, "drop")
		}
	}
	return strings.Join(v, ", ")
}

func eventually(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// icmpInEchos is the number of ICMP echo requests p's kernel received.
func icmpInEchos(p *pod) (int, error) {
	out, err := p.Exec("cat", "/proc/net/snmp")
	if err != nil {
		return 0, err
	}
	var hdr []string
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, "Icmp: ") {
			continue
		}
		f := strings.Fields(l)
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
	return 0, fmt.Errorf("no Icmp InEchos in /proc/net/snmp")
}

func TestTracePredictsPackets(t *testing.T) {
	e := start(t)
	ch1, ch2 := e.topo.Chassis[0], e.topo.Chassis[1]
	e.nbctl("ls-add", "ls1")
	a := e.addPod(ch1, "a", 1)
	b := e.addPod(ch2, "b", 2)
	for _, port := range []int{23, 80} {
		if _, err := b.ListenTCP(port); err != nil {
			t.Fatal(err)
		}
	}
	e.nbctl("lsp-set-port-security", a.LSP, a.MAC+" "+a.IP.String())
	if err := a.WaitReachable(b.IP, 60*time.Second); err != nil {
		t.Fatalf("a cannot reach b: %v", err)
	}
	e.nbctl("--wait=sb", "acl-add", "ls1", "from-lport", "1002", `inport == "lsp-a" && tcp.dst == 23`, "drop",
		"--", "acl-add", "ls1", "from-lport", "1001", `ip4`, "allow-related")
	acl := e.nbctl("--bare", "--columns=_uuid", "find", "ACL", "priority=1002")
	base := fmt.Sprintf(`inport == "lsp-a" && eth.src == %s && eth.dst == %s && ip4.src == %s && ip4.dst == %s`, a.MAC, b.MAC, a.IP, b.IP)

	// Delivery: ICMP echo and TCP port 80.
	tr := e.predict(base+` && icmp4.type == 8`, "new", "new")
	if v := verdict(tr); v != "output:lsp-b" {
		t.Fatalf("trace of a ping a->b: %s\n%s", v, tr.String(trace.Detailed))
	}
	eventually(t, 20*time.Second, "ping a->b", func() error {
		r, err := a.Ping(b.IP, 2)
		if err != nil || r.Loss() != 0 {
			return fmt.Errorf("%+v %v", r, err)
		}
		return nil
	})
	tr = e.predict(base+` && tcp.dst == 80`, "new", "new")
	if v := verdict(tr); v != "output:lsp-b" {
		t.Fatalf("trace of tcp a->b:80: %s\n%s", v, tr.String(trace.Detailed))
	}
	eventually(t, 20*time.Second, "tcp a->b:80", func() error { return a.TCPConnect(b.IP, 80, "", 2*time.Second) })

	// The ACL drops TCP port 23 from a: the trace names the ACL.
	tr = e.predict(base+` && tcp.dst == 23`, "new")
	if v := verdict(tr); v != "drop" || !strings.Contains(tr.Outcomes[0].Reason, "dropped by ACL "+acl+" (from-lport, priority 1002") {
		t.Fatalf("trace of tcp a->b:23: %s %v\n%s", v, tr.Outcomes, tr.String(trace.Detailed))
	}
	eventually(t, 10*time.Second, "tcp a->b:23 blocked", func() error {
		if err := a.TCPConnect(b.IP, 23, "", time.Second); err == nil {
			return fmt.Errorf("connected, but govn trace says: %s", tr.Outcomes[0].Reason)
		}
		return nil
	})

	// Port security: a frame from a with a spoofed source MAC.
	spoofed := "00:00:00:00:00:99"
	tr = e.predict(strings.Replace(base, "eth.src == "+a.MAC, "eth.src == "+spoofed, 1) + ` && icmp4.type == 8`)
	if v := verdict(tr); v != "drop" || !strings.Contains(tr.Outcomes[0].Reason, "dropped by port security of logical switch port lsp-a") {
		t.Fatalf("trace of a spoofed ping: %s %v\n%s", v, tr.Outcomes, tr.String(trace.Detailed))
	}
	for _, args := range [][]string{
		{"ip", "neigh", "replace", b.IP.String(), "lladdr", b.MAC, "dev", "eth0", "nud", "permanent"},
		{"ip", "link", "set", "eth0", "address", spoofed},
	} {
		if _, err := a.Exec(args...); err != nil {
			t.Fatal(err)
		}
	}
	before, err := icmpInEchos(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Ping(b.IP, 3); err != nil {
		t.Fatal(err)
	}
	after, err := icmpInEchos(b)
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("%d spoofed echo requests reached b; govn trace says: %s", after-before, tr.Outcomes[0].Reason)
	}
	t.Logf("predictions confirmed: ping and tcp/80 delivered to lsp-b; tcp/23 %s; spoofed MAC %s",
		e.predict(base+` && tcp.dst == 23`, "new").Outcomes[0].Reason, tr.Outcomes[0].Reason)
}
