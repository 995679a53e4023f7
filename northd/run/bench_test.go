package run

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

var (
	buildOnce sync.Once
	govnBin   string
	buildErr  error
)

// buildGovn builds bin/govn once per test binary run.
func buildGovn(b testing.TB) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "govnbench")
		if err != nil {
			buildErr = err
			return
		}
		govnBin = filepath.Join(dir, "govn")
		out, err := exec.Command("go", "build", "-o", govnBin, "github.com/govn/govn/cmd/govn").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return govnBin
}

// scrape returns the value of a metric line (name with labels, exactly as
// printed) from a Prometheus text endpoint.
func scrape(b testing.TB, addr, metric string) float64 {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, metric+" ") {
			v, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(l, metric)), 64)
			if err != nil {
				b.Fatal(err)
			}
			return v
		}
	}
	return -1
}

// procStatus reads a kB field of /proc/PID/status, in MB.
func procStatus(pid int, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, field+":") {
			f := strings.Fields(l)
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return -1
}

// BenchmarkNorthd is make bench-northd: real NB and SB ovsdb-servers, the
// govn northd binary as a separate process, 100 switches × {1k, 5k, 10k}
// ports (each "MAC IPv4"). It reports: bulk-s (one NB transaction creating
// everything until ovn-nbctl --wait=sb sync returns), recompute-ms (full
// recompute forced with SIGHUP, as measured by northd), lspadd-ms (median
// wall time of ovn-nbctl --wait=sb lsp-add + lsp-set-addresses), lflows
// (SB Logical_Flow rows), rss-MB and hwm-MB (northd's VmRSS and VmHWM).
// Run with -benchtime=1x; each size does its own setup.
func BenchmarkNorthd(b *testing.B) {
	if _, err := exec.LookPath("ovn-nbctl"); err != nil {
		b.Skip("ovn-nbctl not installed")
	}
	dbservertest.RequireOVS(b)
	bin := buildGovn(b)
	for _, ports := range []int{1000, 5000, 10000} {
		b.Run(fmt.Sprintf("ports=%d", ports), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchOnce(b, bin, 100, ports)
			}
		})
	}
}

func benchOnce(b *testing.B, bin string, switches, ports int) {
	b.StopTimer()
	nbS := dbservertest.Start(b, nbDatabase, "", nil)
	sbS := dbservertest.Start(b, sbDatabase, "", nil)
	nbctl := func(args ...string) string {
		return dbservertest.Run(b, "ovn-nbctl", append([]string{"--db=" + nbS.Endpoint(), "--timeout=600"}, args...)...)
	}
	nbctl("init")
	metrics := fmt.Sprintf("127.0.0.1:%d", dbservertest.FreePort(b))
	cmd := exec.Command(bin, "--log-level=warn", "northd", "--nb", nbS.Endpoint(), "--sb", sbS.Endpoint(), "--metrics-addr", metrics)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	pid := cmd.Process.Pid
	nbctl("--wait=sb", "sync")

	// Bulk create in one NB transaction.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c, err := nbdb.NewClient(ctx, []string{nbS.Endpoint()}, ovsdbclient.WithoutMonitor())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var ops []ovsdb.Operation
	per := ports / switches
	n := 0
	for s := 0; s < switches; s++ {
		sw := &nbdb.LogicalSwitch{UUID: ovsdbclient.NamedUUID(), Name: fmt.Sprintf("sw%d", s)}
		for p := 0; p < per; p++ {
			n++
			lsp := &nbdb.LogicalSwitchPort{UUID: ovsdbclient.NamedUUID(), Name: fmt.Sprintf("sw%d-p%d", s, p),
				Addresses: []string{fmt.Sprintf("0a:00:00:%02x:%02x:%02x 10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff, s, p/250, p%250+1)}}
			sw.Ports = append(sw.Ports, lsp.UUID)
			if ops, err = ovsdbclient.CreateOps(c, ops, lsp); err != nil {
				b.Fatal(err)
			}
		}
		if ops, err = ovsdbclient.CreateOps(c, ops, sw); err != nil {
			b.Fatal(err)
		}
	}
	b.StartTimer()
	t0 := time.Now()
	if _, err := c.Transact(ctx, ops...); err != nil {
		b.Fatal(err)
	}
	nbctl("--wait=sb", "sync")
	bulk := time.Since(t0)

	// Forced full recompute.
	before := scrape(b, metrics, `govn_northd_recompute_total{type="full"}`)
	_ = cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(2 * time.Minute)
	for scrape(b, metrics, `govn_northd_recompute_total{type="full"}`) <= before {
		if time.Now().After(deadline) {
			b.Fatal("no full recompute after SIGHUP")
		}
		time.Sleep(20 * time.Millisecond)
	}
	recompute := scrape(b, metrics, `govn_northd_last_recompute_seconds{type="full"}`)

	// Baseline: the same command without --wait (ovn-nbctl's own cost:
	// it reads the NB tables it needs at every start).
	var base []time.Duration
	for i := 0; i < 5; i++ {
		name := fmt.Sprintf("nowait%d", i)
		t := time.Now()
		nbctl("lsp-add", "sw8", name, "--", "lsp-set-addresses", name, fmt.Sprintf("0e:00:00:00:01:%02x 10.251.0.%d", i+1, i+1))
		base = append(base, time.Since(t))
	}
	sort.Slice(base, func(i, j int) bool { return base[i] < base[j] })
	nbctl("--wait=sb", "sync")
	roundsBefore := scrape(b, metrics, "govn_northd_round_duration_seconds_count")
	roundSecBefore := scrape(b, metrics, "govn_northd_round_duration_seconds_sum")

	// Single port adds with --wait=sb.
	var lat []time.Duration
	for i := 0; i < 7; i++ {
		name := fmt.Sprintf("extra%d", i)
		t := time.Now()
		nbctl("--wait=sb", "lsp-add", "sw7", name, "--", "lsp-set-addresses", name, fmt.Sprintf("0e:00:00:00:00:%02x 10.250.0.%d", i+1, i+1))
		lat = append(lat, time.Since(t))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	// The same through an ovn-nbctl daemon (ovn-nbctl --detach -u SOCK),
	// which keeps its copy of the NB instead of downloading it per command.
	dir := dbservertest.ShortTempDir(b)
	sock := filepath.Join(dir, "nbctl.ctl")
	pidf := filepath.Join(dir, "nbctl.pid")
	nbctl("--detach", "--pidfile="+pidf, "-u", sock, "-vconsole:off", "--log-file="+filepath.Join(dir, "nbctl.log"))
	defer func() {
		if data, err := os.ReadFile(pidf); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil {
				_ = syscall.Kill(pid, syscall.SIGTERM)
			}
		}
	}()
	var daemon []time.Duration
	for i := 0; i < 9; i++ {
		name := fmt.Sprintf("daemon%d", i)
		t := time.Now()
		dbservertest.Run(b, "ovn-nbctl", "-u", sock, "--wait=sb", "lsp-add", "sw6", name, "--", "lsp-set-addresses", name, fmt.Sprintf("0e:00:00:00:03:%02x 10.253.0.%d", i+1, i+1))
		daemon = append(daemon, time.Since(t))
	}
	sort.Slice(daemon, func(i, j int) bool { return daemon[i] < daemon[j] })
	b.ReportMetric(float64(daemon[len(daemon)/2].Microseconds())/1000, "lspadd-daemon-ms")

	// The same through libovsdb: northd's own latency, without ovn-nbctl
	// start-up (insert + nb_cfg bump in one transaction, until sb_cfg).
	wc, err := nbdb.NewClient(ctx, []string{nbS.Endpoint()}, ovsdbclient.WithTables(nbdb.NBGlobalTable))
	if err != nil {
		b.Fatal(err)
	}
	defer wc.Close()
	var direct []time.Duration
	for i := 0; i < 9; i++ {
		d, err := addPortWait(ctx, wc, "sw9", fmt.Sprintf("direct%d", i), fmt.Sprintf("0e:00:00:00:02:%02x 10.252.0.%d", i+1, i+1))
		if err != nil {
			b.Fatal(err)
		}
		direct = append(direct, d)
	}
	sort.Slice(direct, func(i, j int) bool { return direct[i] < direct[j] })
	b.ReportMetric(float64(direct[len(direct)/2].Microseconds())/1000, "lspadd-direct-ms")
	lflows := scrape(b, metrics, "govn_northd_logical_flows")
	rounds := scrape(b, metrics, "govn_northd_round_duration_seconds_count") - roundsBefore
	roundSec := scrape(b, metrics, "govn_northd_round_duration_seconds_sum") - roundSecBefore
	b.StopTimer()
	b.ReportMetric(float64(base[len(base)/2].Microseconds())/1000, "nbctl-nowait-ms")
	if rounds > 0 {
		b.ReportMetric(roundSec/rounds*1000, "round-ms")
	}

	b.ReportMetric(bulk.Seconds(), "bulk-s")
	b.ReportMetric(recompute*1000, "recompute-ms")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "lspadd-ms")
	b.ReportMetric(lflows, "lflows")
	if dir := os.Getenv("NORTHD_BENCH_HEAP_DIR"); dir != "" {
		// Keep a heap profile of northd for inspection.
		if resp, err := http.Get("http://" + metrics + "/debug/pprof/heap"); err == nil {
			f, _ := os.Create(filepath.Join(dir, fmt.Sprintf("northd-heap-%d.pb.gz", ports)))
			_, _ = io.Copy(f, resp.Body)
			f.Close()
			resp.Body.Close()
		}
	}
	b.ReportMetric(procStatus(pid, "VmRSS"), "rss-MB")
	b.ReportMetric(procStatus(pid, "VmHWM"), "hwm-MB")
	if errs := scrape(b, metrics, "govn_northd_sb_transaction_errors_total"); errs != 0 {
		b.Errorf("%v failed SB transactions", errs)
	}
}

// addPortWait adds a port to a switch and bumps nb_cfg in one transaction,
// then waits until NB_Global.sb_cfg reaches it; it returns the elapsed time.
func addPortWait(ctx context.Context, c *ovsdbclient.Client, sw, name, addr string) (time.Duration, error) {
	var g *nbdb.NBGlobal
	for _, m := range c.Cache().Table(nbdb.NBGlobalTable).RowsShallow() {
		g = m.(*nbdb.NBGlobal)
	}
	if g == nil {
		return 0, fmt.Errorf("no NB_Global")
	}
	lsp := &nbdb.LogicalSwitchPort{UUID: ovsdbclient.NamedUUID(), Name: name, Addresses: []string{addr}}
	ops, err := ovsdbclient.CreateOps(c, nil, lsp)
	if err != nil {
		return 0, err
	}
	ops = append(ops,
		ovsdb.Operation{Op: ovsdb.OperationMutate, Table: nbdb.LogicalSwitchTable,
			Where:     []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: sw}},
			Mutations: []ovsdb.Mutation{{Column: "ports", Mutator: ovsdb.MutateOperationInsert, Value: ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: lsp.UUID}}}}}},
		ovsdb.Operation{Op: ovsdb.OperationMutate, Table: nbdb.NBGlobalTable,
			Where:     []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: g.UUID}}},
			Mutations: []ovsdb.Mutation{{Column: "nb_cfg", Mutator: ovsdb.MutateOperationAdd, Value: 1}}},
		ovsdb.Operation{Op: ovsdb.OperationSelect, Table: nbdb.NBGlobalTable, Columns: []string{"nb_cfg"},
			Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: g.UUID}}}},
	)
	t := time.Now()
	res, err := c.Transact(ctx, ops...)
	if err != nil {
		return 0, err
	}
	want := int(res[len(res)-1].Rows[0]["nb_cfg"].(float64))
	for {
		for _, m := range c.Cache().Table(nbdb.NBGlobalTable).RowsShallow() {
			if m.(*nbdb.NBGlobal).SbCfg >= want {
				return time.Since(t), nil
			}
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		time.Sleep(200 * time.Microsecond)
	}
}
