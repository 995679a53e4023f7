package run

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/northd"
	"github.com/govn/govn/sbdb"
)

const svcMAC = "3a:ab:e1:3c:9b:50"

// benchNB is northd's benchmark shape: switches × ports/switches, each port
// with a MAC and an IPv4 address.
func benchNB(switches, ports int) (*northd.NB, []*northd.Switch) {
	nb := northd.NewNB()
	nb.SetSvcMonitorMAC(svcMAC)
	per := ports / switches
	n := 0
	var sws []*northd.Switch
	for s := 0; s < switches; s++ {
		sw := &northd.Switch{UUID: fmt.Sprintf("00000000-0000-0000-0001-%012d", s), Name: fmt.Sprintf("sw%d", s)}
		for p := 0; p < per; p++ {
			n++
			id := fmt.Sprintf("00000000-0000-0000-0002-%012d", n)
			nb.SetPort(&northd.SwitchPort{UUID: id, Name: fmt.Sprintf("sw%d-p%d", s, p),
				Addresses: []string{fmt.Sprintf("0a:00:00:%02x:%02x:%02x 10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff, s, p/250, p%250+1)}})
			sw.Ports = append(sw.Ports, id)
		}
		nb.SetSwitch(sw)
		sws = append(sws, sw)
	}
	return nb, sws
}

func rssMB(pid int) (rss, hwm float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "VmRSS:":
			rss = float64(kb) / 1024
		case "VmHWM:":
			hwm = float64(kb) / 1024
		}
	}
	return rss, hwm
}

// BenchmarkLspAdd measures, against a real southbound ovsdb-server and a
// real ovs-vswitchd, the controller's side of `ovn-nbctl --wait=hv
// lsp-add` in northd's 10k-port topology: the SB transaction northd writes
// for one new port (Port_Binding, its logical flows, nb_cfg+1) until the
// controller has claimed the port, installed its flows and acknowledged the
// nb_cfg in Chassis_Private. The new port's interface is plugged first (as
// a VM would be). This chassis has a VIF on `local` switches (their flows
// are translated and installed). Also reported: the cold start (connect,
// translate and install everything) and the controller's RSS.
func BenchmarkLspAdd(b *testing.B) {
	for _, local := range []int{10, 100} {
		b.Run(fmt.Sprintf("ports=10000/localSwitches=%d", local), func(b *testing.B) { benchLspAdd(b, 100, 10000, local) })
	}
}

func benchLspAdd(b *testing.B, switches, ports, local int) {
	e := newEnv(b, "ch1", "172.16.0.1")
	nb, sws := benchNB(switches, ports)
	eng := northd.NewEngine(nil, nil)
	eng.Run(nb)
	st := northd.NewSBState()
	cfg := 1
	txn, err := st.Sync(eng, northd.SyncOptions{NbCfg: cfg, SvcMonitorMAC: svcMAC})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// northd's first transaction inserts SB_Global: drop the one the
	// server was created with, in the same transaction.
	ops := append([]ovsdb.Operation{{Op: ovsdb.OperationDelete, Table: sbdb.SBGlobalTable, Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionNotEqual, Value: ovsdb.UUID{GoUUID: noRow}}}}}, txn.Ops...)
	res, err := e.sb.Transact(ctx, ops...)
	if err != nil {
		b.Fatal(err)
	}
	if err := txn.Commit(res[1:]); err != nil {
		b.Fatal(err)
	}
	e.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev", "fail_mode=secure")
	// One VIF on each of the first `local` switches.
	args := []string{}
	for s := 0; s < local; s++ {
		name := fmt.Sprintf("vif%d", s)
		args = append(args, "--", "add-port", "br-int", name, "--", "set", "Interface", name, "type=internal",
			"external_ids:iface-id="+fmt.Sprintf("sw%d-p0", s))
	}
	e.vsctl(args...)

	runtime.GC()
	var m0 runtime.MemStats
	runtime.ReadMemStats(&m0)
	o := Options{OVS: e.ovs.DBRemote(), RunDir: e.ovs.RunDir(), Log: benchLogger(b), Hostname: "host1", Conditional: true, Resync: time.Hour}
	// With GOVN_BIN set, the controller runs as its own process (`govn
	// controller`), so its RSS can be measured; otherwise in this process.
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	start := time.Now()
	proc := 0
	// The metrics/pprof port is free-picked so benchmarks can run side by
	// side; GOVN_BENCH_METRICS fixes it (e.g. to profile the controller).
	metrics := os.Getenv("GOVN_BENCH_METRICS")
	if metrics == "" {
		metrics = fmt.Sprintf("127.0.0.1:%d", dbservertest.FreePort(b))
	}
	if bin := os.Getenv("GOVN_BIN"); bin != "" {
		level := "warn"
		var logf *os.File
		if path := os.Getenv("GOVN_BENCH_LOG"); path != "" {
			level = "debug"
			if logf, err = os.Create(path); err != nil {
				b.Fatal(err)
			}
			defer logf.Close()
		}
		cmd := exec.CommandContext(cctx, bin, "controller", "--ovs", o.OVS, "--ovs-rundir", o.RunDir, "--hostname", "host1",
			"--resync", "1h", "--log-level", level, "--metrics-addr", metrics)
		cmd.Stderr = os.Stderr
		if logf != nil {
			cmd.Stderr = logf
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		proc = cmd.Process.Pid
		go func() { done <- cmd.Wait() }()
	} else {
		c := New(o)
		go func() { done <- c.Run(cctx) }()
	}
	defer func() {
		cancel()
		<-done
	}()
	waitAck := func(want int, limit time.Duration) time.Duration {
		t0 := time.Now()
		for {
			cp, err := ovsdbclient.Lookup(e.sb, &sbdb.ChassisPrivate{Name: "ch1"})
			if err == nil && cp.NbCfg >= want {
				return time.Since(t0)
			}
			if time.Since(t0) > limit {
				b.Fatalf("nb_cfg %d not acknowledged after %v (have %+v, %v)", want, limit, cp, err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitAck(cfg, 5*time.Minute)
	cold := time.Since(start)
	runtime.GC()
	var m1 runtime.MemStats
	runtime.ReadMemStats(&m1)
	ctrlHeap := float64(int64(m1.HeapInuse)-int64(m0.HeapInuse)) / (1 << 20)
	if path := os.Getenv("GOVN_BENCH_HEAP"); path != "" && proc != 0 {
		// The controller process' heap (its pprof endpoint), after a GC.
		resp, err := http.Get("http://" + metrics + "/debug/pprof/heap?gc=1")
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err := os.WriteFile(fmt.Sprintf("%s.proc.%d", path, local), body, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	if path := os.Getenv("GOVN_BENCH_HEAP"); path != "" && proc == 0 {
		// What the in-process controller (and the test's SB client and
		// northd engine) hold after the cold start.
		f, err := os.Create(fmt.Sprintf("%s.%d", path, local))
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.WriteHeapProfile(f); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
	nflows, _ := e.ovs.Ofctl("dump-aggregate", "br-int")
	nOF := 0
	if i := strings.Index(nflows, "flow_count="); i >= 0 {
		nOF, _ = strconv.Atoi(strings.Fields(nflows[i+len("flow_count="):])[0])
	}

	var lat []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// The new port's VIF is plugged before the lsp-add.
		name := fmt.Sprintf("new%d", i)
		vif := fmt.Sprintf("vnew%d", i)
		e.vsctl("add-port", "br-int", vif, "--", "set", "Interface", vif, "type=internal", "external_ids:iface-id="+name)
		time.Sleep(300 * time.Millisecond) // let the controller see the interface
		sw := sws[i%local]
		id := fmt.Sprintf("00000000-0000-0000-0009-%012d", i)
		nb.SetPort(&northd.SwitchPort{UUID: id, Name: name, Addresses: []string{fmt.Sprintf("0e:00:00:%02x:%02x:%02x 10.200.%d.%d", i>>16&0xff, i>>8&0xff, i&0xff, i/250%250, i%250+1)}})
		cp := *sw
		cp.Ports = append(append([]string(nil), sw.Ports...), id)
		sws[i%local] = &cp
		nb.SetSwitch(&cp)
		eng.Run(nb)
		cfg++
		txn, err := st.Sync(eng, northd.SyncOptions{NbCfg: cfg, SvcMonitorMAC: svcMAC})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		res, err := e.sb.Transact(ctx, txn.Ops...)
		if err != nil {
			b.Fatal(err)
		}
		waitAck(cfg, time.Minute)
		took := time.Since(t0)
		b.StopTimer()
		// The port's flows must be installed too. Usually they are by the
		// ack; on a loaded machine a controller run that read the
		// interfaces before the new one got its ofport may acknowledge
		// first, and the next run installs them: then the latency is
		// until the port's table 0 flow is on the switch.
		port := ofportOf(b, e, vif)
		for !e.hasClassifyFlow(port) {
			took = time.Since(t0)
			if took > time.Minute {
				b.Fatalf("no table 0 flow for %s a minute after the lsp-add", vif)
			}
			time.Sleep(2 * time.Millisecond)
		}
		lat = append(lat, took)
		if err := txn.Commit(res); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	// (ResetTimer drops metrics reported before it: report everything here.)
	b.ReportMetric(cold.Seconds(), "cold-start-s")
	b.ReportMetric(float64(nOF), "ofFlows")
	b.ReportMetric(float64(eng.NumFlows()), "lflows")
	if proc == 0 {
		b.ReportMetric(ctrlHeap, "ctrl-heap-MB") // in-process controller: heap growth while it started
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "lspadd-median-ms")
	if proc != 0 {
		rss, hwm := rssMB(proc)
		b.ReportMetric(rss, "ctrl-rss-MB")
		b.ReportMetric(hwm, "ctrl-hwm-MB")
	} else {
		_, hwm := rssMB(os.Getpid())
		b.ReportMetric(hwm, "proc-hwm-MB") // the whole test process: SB test client, northd engine and controller
	}
}

func ofportOf(b *testing.B, e *env, iface string) string {
	out, err := e.ovs.Vsctl("get", "Interface", iface, "ofport")
	if err != nil {
		b.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// benchLogger logs to $GOVN_BENCH_LOG if set (for looking into a slow run).
func benchLogger(b *testing.B) *zap.Logger {
	path := os.Getenv("GOVN_BENCH_LOG")
	if path == "" {
		return zap.NewNop()
	}
	cfg := zap.NewDevelopmentConfig()
	cfg.OutputPaths = []string{path}
	cfg.Level = zap.NewAtomicLevelAt(zap.DebugLevel)
	l, err := cfg.Build()
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// hasClassifyFlow reports whether br-int has a table 0 flow for in_port.
func (e *env) hasClassifyFlow(port string) bool {
	out, err := e.ovs.Ofctl("-O", "OpenFlow15", "--no-stats", "dump-flows", "br-int", "table=0,in_port="+port)
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.Contains(out, "in_port="+port)
}
