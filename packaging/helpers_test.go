// Package packaging holds the tests of govn's deployment files: the Docker
// image and compose file, the systemd units and the Raft cluster script.
// They run the real files with the real govn binary: the compose file's
// commands through the image's entrypoint (chassis in network namespaces
// instead of containers), the units through `systemd-analyze verify`, the
// cluster script on loopback.
package packaging

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovstest"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds govn and govnctl once per test binary.
func binaries(t *testing.T) (govn, govnctl string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "gvbin")
		if buildErr != nil {
			return
		}
		for _, p := range []string{"govn", "govnctl"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, p), "github.com/govn/govn/cmd/"+p).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", p, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "govn"), filepath.Join(binDir, "govnctl")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// needOVN skips unless the OVS/OVN tools are installed.
func needOVN(t *testing.T, root bool) {
	t.Helper()
	for _, b := range []string{"ovsdb-server", "ovsdb-tool", "ovsdb-client", "ovn-nbctl", "ovn-sbctl", "ovs-vsctl", "ip"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not in PATH (hack/deps.sh installs it)", b)
		}
	}
	if root && os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, ovs-vswitchd)")
	}
}

// shortDir is a private directory with a short path (unix sockets).
func shortDir(t *testing.T, prefix string) string {
	t.Helper()
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !t.Failed() || os.Getenv("GOVN_KEEP") == "" {
			os.RemoveAll(d)
		}
	})
	return d
}

// freePort returns a free TCP port on 127.0.0.1, never one handed out before
// in this test process.
func freePort(t *testing.T) int { t.Helper(); return dbservertest.FreePort(t) }

func randHex(t *testing.T) string {
	var b [2]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

func repoRoot(t *testing.T) string {
	t.Helper()
	d, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// runOut runs a command and returns its stdout, failing the test on error.
func runOut(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(env, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func runErr(env []string, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s%s", name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// proc is a background process a test started; its output goes to a log.
type proc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
	err    error
}

// startProc starts argv with extra environment, output in dir/name.log; the
// process is killed (by pid) at cleanup if still running.
func startProc(t *testing.T, dir, name string, env []string, argv ...string) *proc {
	t.Helper()
	p := &proc{name: name, log: filepath.Join(dir, name+".log"), exited: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = append(os.Environ(), env...)
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(15 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
		}
		if t.Failed() {
			t.Logf("--- %s (%s):\n%s", p.name, strings.Join(argv, " "), p.tail(25))
		}
	})
	return p
}

func (p *proc) tail(n int) string {
	b, _ := os.ReadFile(p.log)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and returns the exit error (nil: status 0).
func (p *proc) stop(t *testing.T, d time.Duration) error {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(d):
		t.Fatalf("%s did not exit within %v of SIGTERM\n%s", p.name, d, p.tail(20))
		return nil
	}
}

// pidsDead fails the test for every pid file whose process still runs.
func pidsDead(t *testing.T, pids map[string]int) {
	t.Helper()
	for name, pid := range pids {
		deadline := time.Now().Add(5 * time.Second)
		for ovstest.Alive(pid) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if ovstest.Alive(pid) {
			t.Errorf("%s (pid %d) still running", name, pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
