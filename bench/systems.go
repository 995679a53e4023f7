package bench

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/govn/govn/e2e/harness"
)

// errUnsupported marks a measurement a system offers no trigger for.
var errUnsupported = errors.New("not supported")

// deployment is one system's central databases, northd and chassis
// controller, running on a harness topology.
type deployment interface {
	// start launches NB, SB, northd and the controller of chassis ch.
	start() error
	// daemons returns the pid of each daemon (its process tree is measured).
	daemons() map[string]int
	// forceNorthdRecompute makes northd recompute everything on its next run.
	forceNorthdRecompute() error
	// forceControllerRecompute does the same for the chassis controller.
	forceControllerRecompute() error
	// northdSelfReported returns northd's own time of its last full
	// recompute, or errUnsupported.
	northdSelfReported() (time.Duration, error)
	// northdFullRecomputes counts northd's full recomputes so far, or
	// errUnsupported.
	northdFullRecomputes() (float64, error)
	// controllerFullRecomputes counts the controller's full recomputes so
	// far, or errUnsupported; controllerSelfReported is its own time of the
	// last one.
	controllerFullRecomputes() (float64, error)
	controllerSelfReported() (time.Duration, error)
}

// env is what both deployments share.
type env struct {
	topo   *harness.Topology
	ch     *harness.Chassis
	dir    string // short private directory (sockets, databases)
	nbSock string
	sbSock string
	procs  map[string]*harness.Process
}

func (e *env) startProc(name string, envv []string, args ...string) error {
	p, err := e.topo.StartProcess(harness.ProcessSpec{Name: name, Env: envv, Args: args})
	if err != nil {
		return err
	}
	e.procs[name] = p
	return nil
}

func (e *env) daemons() map[string]int {
	m := map[string]int{}
	for n, p := range e.procs {
		m[n] = p.Pid
	}
	return m
}

// waitDB waits until an ovsdb-server answers on sock.
func (e *env) waitDB(sock string) error {
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := exec.Command("ovsdb-client", "--timeout=2", "list-dbs", "unix:"+sock).CombinedOutput()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("database at %s not ready: %v: %s\n%s", sock, err, out, e.topo.LogTails(20))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ovnDeployment is OVN 23.03 from the distribution: ovsdb-server with OVN's
// schemas, ovn-northd and ovn-controller.
type ovnDeployment struct{ *env }

func (o *ovnDeployment) ctl(name string) string {
	if name == "controller" {
		return filepath.Join(o.dir, "ctrl", fmt.Sprintf("ovn-controller.%d.ctl", o.procs["ovn-controller"].Pid))
	}
	return filepath.Join(o.dir, name+".ctl")
}

func (o *ovnDeployment) start() error {
	envv := []string{"OVS_RUNDIR=" + o.dir, "OVS_DBDIR=" + o.dir, "OVS_LOGDIR=" + o.dir,
		"OVN_RUNDIR=" + o.dir, "OVN_DBDIR=" + o.dir, "OVN_LOGDIR=" + o.dir}
	for _, db := range []struct{ name, schema, sock string }{
		{"nb", "/usr/share/ovn/ovn-nb.ovsschema", o.nbSock},
		{"sb", "/usr/share/ovn/ovn-sb.ovsschema", o.sbSock},
	} {
		file := filepath.Join(o.dir, db.name+".db")
		if out, err := exec.Command("ovsdb-tool", "create", file, db.schema).CombinedOutput(); err != nil {
			return fmt.Errorf("ovsdb-tool create %s: %v: %s", file, err, out)
		}
		if err := os.MkdirAll(filepath.Dir(db.sock), 0o755); err != nil {
			return err
		}
		if err := o.startProc("ovn-"+db.name+"db", envv, "ovsdb-server", file, "--remote=punix:"+db.sock,
			"--unixctl="+o.ctl(db.name), "--no-chdir", "-vconsole:warn"); err != nil {
			return err
		}
		if err := o.waitDB(db.sock); err != nil {
			return err
		}
	}
	if out, err := exec.Command("ovn-nbctl", "--db=unix:"+o.nbSock, "init").CombinedOutput(); err != nil {
		return fmt.Errorf("ovn-nbctl init: %v: %s", err, out)
	}
	if err := o.startProc("ovn-northd", envv, "ovn-northd", "--ovnnb-db=unix:"+o.nbSock, "--ovnsb-db=unix:"+o.sbSock,
		"--unixctl="+o.ctl("northd"), "--no-chdir", "-vconsole:warn"); err != nil {
		return err
	}
	return o.startController()
}

// startController starts ovn-controller on the chassis.
func (o *ovnDeployment) startController() error {
	// ovn-controller has no --unixctl: its control socket is
	// $OVN_RUNDIR/ovn-controller.PID.ctl, in a directory of its own.
	crun := filepath.Join(o.dir, "ctrl")
	if err := os.MkdirAll(crun, 0o755); err != nil {
		return err
	}
	p, err := o.topo.StartProcess(harness.ProcessSpec{Name: "ovn-controller", Netns: o.ch.Netns,
		Env:  append(o.ch.OVS.Env(), "OVN_RUNDIR="+crun, "OVN_LOGDIR="+crun, "OVN_DBDIR="+crun),
		Args: []string{"ovn-controller", o.ch.OVS.DBRemote(), "--no-chdir", "-vconsole:info"}})
	if err != nil {
		return err
	}
	o.procs["ovn-controller"] = p
	return nil
}

// restartController stops ovn-controller (by pid) and starts a new one.
func (o *ovnDeployment) restartController() error {
	if err := o.procs["ovn-controller"].Stop(); err != nil {
		return err
	}
	return o.startController()
}

func (o *ovnDeployment) appctl(target string, args ...string) error {
	out, err := exec.Command("ovn-appctl", append([]string{"-t", o.ctl(target)}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ovn-appctl -t %s %s: %v: %s", target, strings.Join(args, " "), err, out)
	}
	return nil
}

func (o *ovnDeployment) forceNorthdRecompute() error {
	return o.appctl("northd", "inc-engine/recompute")
}
func (o *ovnDeployment) forceControllerRecompute() error {
	return o.appctl("controller", "recompute")
}
func (o *ovnDeployment) northdSelfReported() (time.Duration, error) { return 0, errUnsupported }
func (o *ovnDeployment) northdFullRecomputes() (float64, error)     { return 0, errUnsupported }
func (o *ovnDeployment) controllerFullRecomputes() (float64, error) { return 0, errUnsupported }
func (o *ovnDeployment) controllerSelfReported() (time.Duration, error) {
	return 0, errUnsupported
}

// govnDeployment is govn: govn nbdb, sbdb, northd and controller.
type govnDeployment struct {
	*env
	bin         string
	metricsAddr string
}

func (g *govnDeployment) start() error {
	for _, db := range []struct{ name, sock string }{{"nbdb", g.nbSock}, {"sbdb", g.sbSock}} {
		if err := g.startProc("govn-"+db.name, nil, g.bin, db.name, "--data-dir", filepath.Dir(db.sock),
			"--remote", "punix:"+db.sock); err != nil {
			return err
		}
	}
	for _, s := range []string{g.nbSock, g.sbSock} {
		if err := g.waitDB(s); err != nil {
			return err
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	g.metricsAddr = addr
	if err := g.startProc("govn-northd", nil, g.bin, "northd", "--nb", "unix:"+g.nbSock, "--sb", "unix:"+g.sbSock,
		"--metrics-addr", addr); err != nil {
		return err
	}
	p, err := g.ch.StartProcess("govn-controller", g.bin, "controller", "--metrics-addr", controllerMetricsAddr)
	if err != nil {
		return err
	}
	g.procs["govn-controller"] = p
	return nil
}

func (g *govnDeployment) forceNorthdRecompute() error {
	return syscall.Kill(g.procs["govn-northd"].Pid, syscall.SIGHUP)
}

// controllerMetricsAddr is govn controller's /metrics and /debug/pprof/
// address inside the chassis namespace (its own loopback), reached through
// nsGet.
const controllerMetricsAddr = "127.0.0.1:9476"

// forceControllerRecompute: SIGHUP makes govn controller drop its
// translation caches and recompute every flow.
func (g *govnDeployment) forceControllerRecompute() error {
	return syscall.Kill(g.procs["govn-controller"].Pid, syscall.SIGHUP)
}

func (g *govnDeployment) controllerFullRecomputes() (float64, error) {
	return g.controllerMetric(`govn_controller_recompute_total{type="full"}`)
}

func (g *govnDeployment) controllerSelfReported() (time.Duration, error) {
	v, err := g.controllerMetric(`govn_controller_last_recompute_seconds{type="full"}`)
	if err != nil {
		return 0, err
	}
	return time.Duration(v * float64(time.Second)), nil
}

func (g *govnDeployment) controllerMetric(series string) (float64, error) {
	body, err := nsGet(g.ch.Netns, "http://"+controllerMetricsAddr+"/metrics", 10*time.Second)
	if err != nil {
		return 0, err
	}
	return findMetric(bytes.NewReader(body), series)
}

// nsGet GETs url from inside network namespace netns (curl through ip
// netns exec: the chassis' loopback is not the driver's).
func nsGet(netns, url string, timeout time.Duration) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.Command("ip", "netns", "exec", netns, "curl", "-sSf", "--max-time",
		strconv.Itoa(int(timeout.Seconds())+1), url)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("GET %s in netns %s: %w: %s", url, netns, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (g *govnDeployment) northdSelfReported() (time.Duration, error) {
	v, err := scrapeMetric("http://"+g.metricsAddr+"/metrics", `govn_northd_last_recompute_seconds{type="full"}`)
	if err != nil {
		return 0, err
	}
	return time.Duration(v * float64(time.Second)), nil
}

func (g *govnDeployment) northdFullRecomputes() (float64, error) {
	return scrapeMetric("http://"+g.metricsAddr+"/metrics", `govn_northd_recompute_total{type="full"}`)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// procStats is the memory and CPU of a process and its descendants.
type procStats struct {
	RSSKB, HWMKB int64
	CPU          time.Duration
}

func readProcTree(pid int) (procStats, error) {
	var st procStats
	pids := []int{pid}
	for i := 0; i < len(pids); i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pids[i]))
		for _, t := range tasks {
			b, err := os.ReadFile(t)
			if err != nil {
				continue
			}
			for _, f := range strings.Fields(string(b)) {
				if c, err := strconv.Atoi(f); err == nil {
					pids = append(pids, c)
				}
			}
		}
	}
	for i, p := range pids {
		s, err := readProc(p)
		if err != nil {
			if i == 0 {
				return st, err
			}
			continue
		}
		st.RSSKB += s.RSSKB
		st.HWMKB += s.HWMKB
		st.CPU += s.CPU
	}
	return st, nil
}

// clkTck is USER_HZ, 100 on Linux for every architecture Go supports here.
const clkTck = 100

func readProc(pid int) (procStats, error) {
	var st procStats
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "VmRSS:":
			st.RSSKB, _ = strconv.ParseInt(f[1], 10, 64)
		case "VmHWM:":
			st.HWMKB, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return st, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// Fields after the name start at field 3 (state); utime and stime are
	// fields 14 and 15.
	if len(f) < 13 {
		return st, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	st.CPU = time.Duration(ut+stt) * time.Second / clkTck
	return st, nil
}
