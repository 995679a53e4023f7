// Package dbservertest starts real ovsdb-servers (through dbserver) for tests.
package dbservertest

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/internal/dbserver"
)

// ShortTempDir returns a new directory with a short path (unix socket paths
// must stay under 108 bytes; t.TempDir() can be long), removed at cleanup.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "gv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		// The kernel may hand out a just-closed port again: a test that
		// asks for several ports (a Raft cluster's members) must get
		// distinct ones.
		if !portsGiven[port] {
			portsGiven[port] = true
			return port
		}
	}
	t.Fatal("no unused free port after 100 tries")
	return 0
}

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// RequireOVS skips the test if ovsdb-server/ovsdb-tool/ovsdb-client are not installed.
func RequireOVS(t testing.TB) {
	t.Helper()
	for _, b := range []string{"ovsdb-server", "ovsdb-tool", "ovsdb-client"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not installed (apt install openvswitch-switch): %v", b, err)
		}
	}
}

// Start runs a dbserver for db in dir (a new short temp dir if empty), with
// cfg applied, and stops it at cleanup.
func Start(t testing.TB, db dbserver.Database, dir string, cfg func(*dbserver.Config)) *dbserver.Server {
	t.Helper()
	RequireOVS(t)
	if dir == "" {
		dir = ShortTempDir(t)
	}
	c := dbserver.Config{DB: db, DataDir: dir, Logger: zaptest.NewLogger(t)}
	if cfg != nil {
		cfg(&c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := dbserver.Start(ctx, c)
	if err != nil {
		t.Fatalf("start %s: %v", db.Name, err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// Run runs a command (e.g. ovn-nbctl) and fails the test on error. It also
// fails the test if the command warns that the server's schema lacks a table
// or column it knows ("database needs upgrade?"): our schemas must be complete
// for OVN's tools. It returns stdout.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, stderr, err := RunOutput(name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	if strings.Contains(stderr, "needs upgrade?") {
		t.Errorf("%s %s warns about our schema:\n%s", name, strings.Join(args, " "), stderr)
	}
	return out
}

// RunErr runs a command and returns stdout, or an error with stderr.
func RunErr(name string, args ...string) (string, error) {
	out, _, err := RunOutput(name, args...)
	return out, err
}

// RunOutput runs a command and returns stdout and stderr; the error includes stderr.
func RunOutput(name string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.Command(name, args...)
	var errBuf strings.Builder
	cmd.Stderr = &errBuf
	out, err := cmd.Output()
	stderr = errBuf.String()
	if err != nil {
		return string(out), stderr, &cmdError{err: err, stderr: strings.TrimSpace(stderr)}
	}
	return string(out), stderr, nil
}

type cmdError struct {
	err    error
	stderr string
}

func (e *cmdError) Error() string { return e.err.Error() + ": " + e.stderr }

// ProcessGone reports whether pid no longer runs (absent or a zombie).
func ProcessGone(pid int) bool {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return true
	}
	// Field 3 is the state; the command name (field 2) is in parentheses.
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] == 'Z' || s[i+2] == 'X'
	}
	return false
}
