package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/govn/govn/e2e/harness"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// Systems the driver knows.
const (
	SystemGovn = "govn"
	SystemOVN  = "ovn"
)

// Config is one comparison run.
type Config struct {
	Systems  []string   // SystemGovn, SystemOVN (in this order per size)
	Sizes    []Workload // run in order; each size on fresh deployments
	Samples  int        // single-change samples per scenario (>= 1)
	Recomps  int        // forced recompute samples
	GovnBin  string     // the govn binary
	BoundPod int        // ports of switch 0 bound on the chassis (pods)
	Timeout  time.Duration
	// ProfileDir, if set, receives a CPU profile of govn northd taken over
	// the first ProfileSeconds of the bulk load (northd-PORTS.pprof).
	ProfileDir     string
	ProfileSeconds int
	// ControllerProfileSeconds > 0 (with ProfileDir) also saves a CPU
	// profile of govn controller over that many seconds from the start of
	// the single changes (controller-PORTS.pprof, from its /debug/pprof/).
	ControllerProfileSeconds int
	Logf                     func(format string, args ...any) `json:"-"`
}

// Result is one system at one size.
type Result struct {
	System   string `json:"system"`
	Switches int    `json:"switches"`
	Ports    int    `json:"ports"`
	// Seconds from the first bulk transaction to NB_Global.sb_cfg / hv_cfg.
	BulkSB float64 `json:"bulk_sb_s"`
	BulkHV float64 `json:"bulk_hv_s"`
	// Milliseconds; keys "port-add/sb", "port-add/hv", "port-del/…",
	// "acl-add/…", "as-add-ip/…", "northd-recompute", "northd-recompute-self",
	// "controller-recompute", "controller-recompute-self".
	Latency       map[string]Dist `json:"latency_ms"`
	LogicalFlows  int             `json:"sb_logical_flows"`
	OpenFlowFlows int             `json:"openflow_flows"`
	Daemons       map[string]Proc `json:"daemons"`
	Notes         []string        `json:"notes,omitempty"`
}

// Proc is a daemon's resources (its process tree) at the end of the size.
type Proc struct {
	RSSMB     float64 `json:"rss_mb"`
	HWMMB     float64 `json:"hwm_mb"`
	CPUBulkS  float64 `json:"cpu_bulk_s"`  // CPU used from the bulk start to hv_cfg
	CPUTotalS float64 `json:"cpu_total_s"` // CPU used over the whole size
}

// Run runs every size for every system and returns the results in order.
func Run(ctx context.Context, cfg Config) ([]Result, error) {
	if cfg.Samples < 1 || cfg.Recomps < 1 {
		return nil, errors.New("samples and recomputes must be >= 1")
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	if cfg.BoundPod == 0 {
		cfg.BoundPod = 3
	}
	var out []Result
	for _, w := range cfg.Sizes {
		if err := validate(w); err != nil {
			return out, err
		}
		for _, sys := range cfg.Systems {
			r, err := runOne(ctx, cfg, sys, w)
			if err != nil {
				return out, fmt.Errorf("%s, %d switches x %d ports: %w", sys, w.Switches, w.PortsPerSwitch, err)
			}
			out = append(out, *r)
		}
	}
	return out, nil
}

func runOne(ctx context.Context, cfg Config, sys string, w Workload) (res *Result, err error) {
	logf := func(f string, a ...any) { cfg.Logf("[%s %d] "+f, append([]any{sys, w.Ports()}, a...)...) }
	dir, err := os.MkdirTemp("", "gvb")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	e := &env{dir: dir, nbSock: filepath.Join(dir, "nb", "nb.sock"), sbSock: filepath.Join(dir, "sb", "sb.sock"),
		procs: map[string]*harness.Process{}}
	topo, err := harness.New(harness.Options{Chassis: 1, Logf: logf, ExternalIDs: func(*harness.Chassis) map[string]string {
		return map[string]string{"ovn-remote": "unix:" + e.sbSock}
	}})
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, topo.LogTails(15))
		}
		if cerr := topo.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	e.topo, e.ch = topo, topo.Chassis[0]
	var d deployment
	switch sys {
	case SystemGovn:
		if cfg.GovnBin == "" {
			return nil, errors.New("no govn binary")
		}
		d = &govnDeployment{env: e, bin: cfg.GovnBin}
	case SystemOVN:
		d = &ovnDeployment{env: e}
	default:
		return nil, fmt.Errorf("unknown system %q", sys)
	}
	if err := d.start(); err != nil {
		return nil, err
	}
	nb, err := DialNB(ctx, "unix:"+e.nbSock)
	if err != nil {
		return nil, err
	}
	defer nb.Close()
	// The chassis registers; then an nb_cfg round trip proves hv_cfg works.
	if err := waitFor(60*time.Second, "chassis registered", func() error {
		n, err := sbCount(e.sbSock, "Chassis_Private")
		if err == nil && n == 0 {
			err = errors.New("no Chassis_Private row")
		}
		return err
	}); err != nil {
		return nil, err
	}
	// A freshly started ovn-controller sometimes leaves its first nb_cfg
	// unacknowledged until something else changes: bump again until one
	// round trip completes.
	for attempt := 1; ; attempt++ {
		_, _, _, err := nb.CommitAndWait(ctx, 5*time.Second)
		if err == nil {
			break
		}
		if attempt == 12 {
			return nil, fmt.Errorf("initial nb_cfg round trip: %w", err)
		}
		logf("initial nb_cfg round trip, attempt %d: %v", attempt, err)
		// Seen with ovn-controller 23.03 under load: connected, chassis
		// registered, but never acknowledging any nb_cfg. A restart helps.
		if r, ok := d.(interface{ restartController() error }); ok && attempt%4 == 0 {
			logf("restarting the controller")
			if err := r.restartController(); err != nil {
				return nil, err
			}
		}
	}
	for p := range cfg.BoundPod {
		if _, err := e.ch.AddPod(harness.PodSpec{Name: fmt.Sprintf("b%d", p), IfaceID: PortName(0, p), MAC: portMAC(0, p),
			IP: netip.PrefixFrom(portIP(0, p), 16)}); err != nil {
			return nil, err
		}
	}
	before := map[string]procStats{}
	for n, pid := range d.daemons() {
		before[n], _ = readProcTree(pid)
	}
	res = &Result{System: sys, Switches: w.Switches, Ports: w.Ports(), Latency: map[string]Dist{}, Daemons: map[string]Proc{}}

	// 1. Bulk.
	logf("bulk: %d switches x %d ports", w.Switches, w.PortsPerSwitch)
	batches := bulkBatches(w)
	if g, ok := d.(*govnDeployment); ok && cfg.ProfileDir != "" {
		done := make(chan error, 1)
		path := filepath.Join(cfg.ProfileDir, fmt.Sprintf("northd-%d.pprof", w.Ports()))
		go func() { done <- fetchProfile("http://"+g.metricsAddr+"/debug/pprof/profile", cfg.ProfileSeconds, path) }()
		defer func() {
			if perr := <-done; perr != nil {
				logf("northd profile: %v", perr)
			} else {
				logf("northd profile: %s", path)
			}
		}()
	}
	start := time.Now()
	var sw0 string
	for i, b := range batches {
		if i < len(batches)-1 {
			rs, err := nb.transact(ctx, b...)
			if err != nil {
				return nil, fmt.Errorf("bulk batch %d: %w", i, err)
			}
			if i == 0 {
				sw0 = switchUUID(b, rs, SwitchName(0))
			}
			continue
		}
		cfgN, rs, err := nb.Commit(ctx, b...)
		if err != nil {
			return nil, fmt.Errorf("bulk batch %d: %w", i, err)
		}
		if i == 0 {
			sw0 = switchUUID(b, rs, SwitchName(0))
		}
		if err := nb.Wait(cfgN, false, cfg.Timeout); err != nil {
			return nil, err
		}
		res.BulkSB = time.Since(start).Seconds()
		if err := nb.Wait(cfgN, true, cfg.Timeout); err != nil {
			return nil, err
		}
		res.BulkHV = time.Since(start).Seconds()
	}
	bulkCPU := map[string]time.Duration{}
	for n, pid := range d.daemons() {
		s, _ := readProcTree(pid)
		bulkCPU[n] = s.CPU - before[n].CPU
	}
	if sw0 == "" {
		return nil, errors.New("no UUID for switch 0")
	}
	logf("bulk: sb %.2fs hv %.2fs", res.BulkSB, res.BulkHV)
	// The bound ports must be claimed by the chassis.
	if err := waitFor(60*time.Second, "bound ports claimed", func() error {
		n, err := sbCountWhere(e.sbSock, "Port_Binding", `["up","==",true]`)
		if err == nil && n < cfg.BoundPod {
			err = fmt.Errorf("%d of %d ports up", n, cfg.BoundPod)
		}
		return err
	}); err != nil {
		res.Notes = append(res.Notes, "bound ports not all up: "+err.Error())
	}

	// 2. Single changes on switch 0 (local to the chassis). With ProfileDir
	// and ControllerProfileSeconds, govn's controller is profiled meanwhile
	// (controller-PORTS.pprof).
	var profDone chan error
	if g, ok := d.(*govnDeployment); ok && cfg.ProfileDir != "" && cfg.ControllerProfileSeconds > 0 {
		path := filepath.Join(cfg.ProfileDir, fmt.Sprintf("controller-%d.pprof", w.Ports()))
		profDone = make(chan error, 1)
		go func() {
			body, err := nsGet(g.ch.Netns, fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", controllerMetricsAddr,
				cfg.ControllerProfileSeconds), time.Duration(cfg.ControllerProfileSeconds+30)*time.Second)
			if err == nil {
				err = os.WriteFile(path, body, 0o644)
			}
			if err == nil {
				logf("controller profile: %s", path)
			}
			profDone <- err
		}()
		defer func() {
			if profDone != nil {
				<-profDone
			}
		}()
	}
	samples := map[string][]time.Duration{}
	record := func(name string, sb, hv time.Duration) {
		samples[name+"/sb"] = append(samples[name+"/sb"], sb)
		samples[name+"/hv"] = append(samples[name+"/hv"], hv)
	}
	for i := range cfg.Samples {
		sb, hv, rs, err := nb.CommitAndWait(ctx, time.Minute, addPortOps(sw0, fmt.Sprintf("bench-new-%d", i), i)...)
		if err != nil {
			return nil, fmt.Errorf("port add: %w", err)
		}
		record("port-add", sb, hv)
		sb, hv, _, err = nb.CommitAndWait(ctx, time.Minute, delPortOps(sw0, rs[0].UUID.GoUUID)...)
		if err != nil {
			return nil, fmt.Errorf("port delete: %w", err)
		}
		record("port-del", sb, hv)
		sb, hv, _, err = nb.CommitAndWait(ctx, time.Minute, addACLOps(sw0, i)...)
		if err != nil {
			return nil, fmt.Errorf("ACL add: %w", err)
		}
		record("acl-add", sb, hv)
		sb, hv, _, err = nb.CommitAndWait(ctx, time.Minute, addASIPOps(AddressSetName(0), i)...)
		if err != nil {
			return nil, fmt.Errorf("address set add IP: %w", err)
		}
		record("as-add-ip", sb, hv)
	}
	logf("single changes: %d samples each", cfg.Samples)
	if profDone != nil {
		if err := <-profDone; err != nil {
			logf("controller profile: %v", err)
		}
		profDone = nil
	}

	// 3. Forced recomputes.
	for range cfg.Recomps {
		// The trigger is asynchronous: where northd counts its full
		// recomputes, the sample also waits for the count to move, so it
		// never ends on an incremental round that overtook the recompute.
		fulls, countErr := d.northdFullRecomputes()
		start := time.Now()
		if err := d.forceNorthdRecompute(); err != nil {
			return nil, err
		}
		cfgN, _, err := nb.Commit(ctx)
		if err != nil {
			return nil, err
		}
		if err := nb.Wait(cfgN, false, cfg.Timeout); err != nil {
			return nil, err
		}
		if countErr == nil {
			deadline := time.Now().Add(cfg.Timeout)
			for {
				n, err := d.northdFullRecomputes()
				if err != nil {
					return nil, err
				}
				if n > fulls {
					break
				}
				if time.Now().After(deadline) {
					return nil, fmt.Errorf("northd: no full recompute within %v of the trigger", cfg.Timeout)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
		samples["northd-recompute"] = append(samples["northd-recompute"], time.Since(start))
		if s, err := d.northdSelfReported(); err == nil {
			samples["northd-recompute-self"] = append(samples["northd-recompute-self"], s)
		}
		if err := nb.Wait(cfgN, true, cfg.Timeout); err != nil {
			return nil, err
		}
		cfulls, cCountErr := d.controllerFullRecomputes()
		start = time.Now()
		if err := d.forceControllerRecompute(); errors.Is(err, errUnsupported) {
			continue
		} else if err != nil {
			return nil, err
		}
		cfgN, _, err = nb.Commit(ctx)
		if err != nil {
			return nil, err
		}
		if err := nb.Wait(cfgN, true, cfg.Timeout); err != nil {
			return nil, err
		}
		if cCountErr == nil {
			// As for northd: the sample ends only once the full recompute
			// has been counted.
			deadline := time.Now().Add(cfg.Timeout)
			for {
				n, err := d.controllerFullRecomputes()
				if err != nil {
					return nil, err
				}
				if n > cfulls {
					break
				}
				if time.Now().After(deadline) {
					return nil, fmt.Errorf("controller: no full recompute within %v of the trigger", cfg.Timeout)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}
		samples["controller-recompute"] = append(samples["controller-recompute"], time.Since(start))
		if s, err := d.controllerSelfReported(); err == nil {
			samples["controller-recompute-self"] = append(samples["controller-recompute-self"], s)
		}
	}
	for k, v := range samples {
		res.Latency[k] = distOf(v)
	}

	// 4. Counts and resources.
	if res.LogicalFlows, err = sbCount(e.sbSock, "Logical_Flow"); err != nil {
		return nil, err
	}
	out, err := e.ch.OVS.Ofctl("dump-aggregate", "br-int")
	if err != nil {
		return nil, err
	}
	if res.OpenFlowFlows, err = parseFlowCount(out); err != nil {
		return nil, err
	}
	for n, pid := range d.daemons() {
		s, err := readProcTree(pid)
		if err != nil {
			return nil, fmt.Errorf("daemon %s (pid %d): %w", n, pid, err)
		}
		res.Daemons[n] = Proc{RSSMB: float64(s.RSSKB) / 1024, HWMMB: float64(s.HWMKB) / 1024,
			CPUBulkS: bulkCPU[n].Seconds(), CPUTotalS: (s.CPU - before[n].CPU).Seconds()}
	}
	logf("done: %d logical flows, %d OpenFlow flows", res.LogicalFlows, res.OpenFlowFlows)
	return res, nil
}

// switchUUID finds the UUID the server gave the inserted switch named name.
func switchUUID(ops []ovsdb.Operation, rs []ovsdb.OperationResult, name string) string {
	for i, op := range ops {
		if op.Table == "Logical_Switch" && op.Op == "insert" && op.Row["name"] == name && i < len(rs) {
			return rs[i].UUID.GoUUID
		}
	}
	return ""
}

// fetchProfile saves a CPU profile of seconds (>= 1) from a Go pprof handler.
func fetchProfile(url string, seconds int, path string) error {
	resp, err := http.Get(fmt.Sprintf("%s?seconds=%d", url, max(1, seconds)))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func waitFor(d time.Duration, what string, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %v: %w", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sbCount counts the rows of an SB table.
func sbCount(sock, table string) (int, error) { return sbCountWhere(sock, table, "") }

func sbCountWhere(sock, table, cond string) (int, error) {
	where := "[]"
	if cond != "" {
		where = "[" + cond + "]"
	}
	q := fmt.Sprintf(`["OVN_Southbound",{"op":"select","table":%q,"where":%s,"columns":["_uuid"]}]`, table, where)
	out, err := exec.Command("ovsdb-client", "--timeout=60", "transact", "unix:"+sock, q).Output()
	if err != nil {
		return 0, fmt.Errorf("count %s: %w", table, err)
	}
	var r []struct {
		Rows  []json.RawMessage `json:"rows"`
		Error string            `json:"error"`
	}
	if err := json.Unmarshal(out, &r); err != nil || len(r) != 1 {
		return 0, fmt.Errorf("count %s: unexpected answer %.200q", table, out)
	}
	if r[0].Error != "" {
		return 0, fmt.Errorf("count %s: %s", table, r[0].Error)
	}
	return len(r[0].Rows), nil
}

var flowCountRE = regexp.MustCompile(`flow_count=(\d+)`)

func parseFlowCount(out string) (int, error) {
	m := flowCountRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no flow_count in %q", out)
	}
	return strconv.Atoi(m[1])
}

// scrapeMetric returns the value of the sample whose name and labels are
// exactly series.
func scrapeMetric(url, series string) (float64, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	v, err := findMetric(resp.Body, series)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", url, err)
	}
	return v, nil
}

// findMetric reads series (name and labels as exposed) from a Prometheus
// text exposition.
func findMetric(r io.Reader, series string) (float64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s", series)
}
