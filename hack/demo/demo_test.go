package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govn/govn/e2e/harness"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds govn, govnctl and this demo into a temporary directory
// (once per test binary).
func binaries(t *testing.T) (govn, govnctl, demo string) {
	t.Helper()
	if err := harness.Available(); err != nil {
		t.Skipf("demo: %v", err)
	}
	for _, tool := range []string{"ovn-sbctl", "ovs-ofctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("demo: %s not found", tool)
		}
	}
	buildOnce.Do(func() {
		root, err := harness.RepoRoot()
		if err != nil {
			buildErr = err
			return
		}
		if binDir, buildErr = os.MkdirTemp("", "gvdemobin"); buildErr != nil {
			return
		}
		for _, b := range []struct{ out, pkg string }{{"govn", "./cmd/govn"}, {"govnctl", "./cmd/govnctl"}, {"govn-demo", "./hack/demo"}} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, b.out), b.pkg)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "govn"), filepath.Join(binDir, "govnctl"), filepath.Join(binDir, "govn-demo")
}

// syncBuffer is an output buffer the test reads while the demo writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var (
	nsRe  = regexp.MustCompile(`namespace (gv[0-9a-f]{4})-c1`)
	dirRe = regexp.MustCompile(`--data-dir (/\S+)/db `)
)

// assertGone checks that nothing of a demo run survives: no namespace with
// its topology prefix, no process whose command line names its directories,
// and the central directory removed.
func assertGone(t *testing.T, out string, wantDirGone bool) {
	t.Helper()
	m := nsRe.FindStringSubmatch(out)
	d := dirRe.FindStringSubmatch(out)
	if m == nil || d == nil {
		t.Fatalf("demo output names no topology or data directory:\n%s", out)
	}
	prefix, dir := m[1]+"-", d[1]
	ns, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(ns), "\n") {
		if strings.HasPrefix(l, prefix) {
			t.Errorf("namespace %s survived the demo", strings.Fields(l)[0])
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		st, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "stat"))
		if f := strings.Fields(string(st)); len(f) > 2 && f[2] == "Z" {
			continue // a zombie: dead, not yet reaped by PID 1
		}
		t.Errorf("process %s survived the demo: %s", filepath.Dir(p), bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
	}
	if _, err := os.Stat(dir); wantDirGone && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("central directory %s not removed (%v)", dir, err)
	}
}

// TestDemo runs `make demo`'s program end to end: it must pass every
// expectation it checks (exit 0) and leave nothing behind.
func TestDemo(t *testing.T) {
	govn, govnctl, demo := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, demo, "--govn", govn, "--govnctl", govnctl)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	s := string(out)
	for _, want := range []string{
		"govn is up (data directory",
		"Chassis ch1", "Chassis ch2", // ovn-sbctl show
		"$ govnctl ls add demo",
		"switch ", "(demo)", "port pod3", // govnctl show
		"5 packets transmitted, 5 received, 0% packet loss",
		"connected: tcp/80 is allowed",
		"tcp/23 is dropped by the ACL",
		`/* dropped by ACL "no-telnet-to-pod3" (`,
		`output("pod3");`,
		"table=0 (ls_in_check_port_sec)",
		"flow_count=",
		"all clean.",
		"demo passed in",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if n := strings.Count(s, " 0% packet loss"); n != 2 {
		t.Errorf("want 2 loss-free pings (across Geneve and on one chassis), got %d", n)
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", s)
	}
	assertGone(t, s, true)
}

// TestDemoInterrupted sends SIGINT while the demo runs (chassis and pods
// built, daemons running): it must exit 130 after tearing everything down.
func TestDemoInterrupted(t *testing.T) {
	govn, govnctl, demo := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, demo, "--govn", govn, "--govnctl", govnctl)
	var out syncBuffer
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	reached, drained := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(pr)
		once := sync.Once{}
		for sc.Scan() {
			out.Write(append(sc.Bytes(), '\n'))
			if strings.Contains(sc.Text(), "== 3. the logical network") {
				once.Do(func() { close(reached) })
			}
		}
	}()
	select {
	case <-reached:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Fatalf("demo did not reach step 3 in 60 s:\n%s", out.String())
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("interrupted demo: %v, want exit status 130", err)
	}
	<-drained
	s := out.String()
	if !strings.Contains(s, "all clean.") || strings.Contains(s, "demo passed") {
		t.Errorf("interrupted demo did not tear down cleanly (or claims success)")
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", s)
	}
	assertGone(t, s, true)
}

// TestDemoFailure: when a step fails (here every govnctl command, through a
// govnctl that always exits 1) the demo exits 1 naming the step, and still
// tears everything down (keeping the central logs for inspection).
func TestDemoFailure(t *testing.T) {
	govn, _, demo := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, demo, "--govn", govn, "--govnctl", "/bin/false").CombinedOutput()
	s := string(out)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("demo with a failing govnctl: %v, want exit status 1", err)
	}
	for _, want := range []string{"demo FAILED: govnctl ls add demo: exit status 1", "all clean.", "central logs kept in "} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(s, "demo passed") {
		t.Error("a failed demo claims success")
	}
	if t.Failed() {
		t.Logf("demo output:\n%s", s)
	}
	assertGone(t, s, false)
	if d := dirRe.FindStringSubmatch(s); d != nil {
		os.RemoveAll(d[1])
	}
}
