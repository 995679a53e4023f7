package dbserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/nbdb"
)

var nbDatabase = dbserver.Database{Name: nbdb.DatabaseName, Schema: nbdb.SchemaJSON, Base: nbdb.FileBase, GlobalTable: nbdb.GlobalTable}

func start(t *testing.T, dir string, db dbserver.Database, mut func(*dbserver.Config)) (*dbserver.Server, error) {
	t.Helper()
	cfg := dbserver.Config{DB: db, DataDir: dir, Logger: zaptest.NewLogger(t)}
	if mut != nil {
		mut(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := dbserver.Start(ctx, cfg)
	if err == nil {
		t.Cleanup(func() { _ = s.Stop() })
	}
	return s, err
}

// withExtraColumn returns schema with one more column in Logical_Switch and a
// bumped version, as a later govn release might ship.
// upgradedVersion is the version of the schema withExtraColumn returns
// (above any real nb.ovsschema version).
const upgradedVersion = "99.0.0"

// schemaVersion is a schema's "version" member.
func schemaVersion(t *testing.T, schema []byte) string {
	t.Helper()
	var m struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(schema, &m); err != nil || m.Version == "" {
		t.Fatalf("schema version: %v", err)
	}
	return m.Version
}

func withExtraColumn(t *testing.T, schema []byte) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(schema))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	m["version"] = upgradedVersion
	ls := m["tables"].(map[string]any)["Logical_Switch"].(map[string]any)["columns"].(map[string]any)
	ls["govn_test_extra"] = map[string]any{"type": map[string]any{"key": "string", "min": 0, "max": 1}}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRestartAndSchemaUpgrade: rows survive a restart and a schema upgrade
// (a new column), and the upgrade keeps a backup of the old file.
func TestRestartAndSchemaUpgrade(t *testing.T) {
	dbservertest.RequireOVS(t)
	dir := dbservertest.ShortTempDir(t)
	s, err := start(t, dir, nbDatabase, nil)
	if err != nil {
		t.Fatal(err)
	}
	nbctl := func(s *dbserver.Server, args ...string) string {
		return dbservertest.Run(t, "ovn-nbctl", append([]string{"--db=" + s.Endpoint()}, args...)...)
	}
	nbctl(s, "ls-add", "sw0")
	nbctl(s, "lsp-add", "sw0", "p1")
	nbctl(s, "lsp-set-addresses", "p1", "00:00:00:00:00:01 10.0.0.1")
	nbctl(s, "acl-add", "sw0", "from-lport", "100", "ip4", "drop")
	want := nbctl(s, "show")
	wantACL := nbctl(s, "acl-list", "sw0")
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if !dbservertest.ProcessGone(s.PID()) {
		t.Fatalf("ovsdb-server pid %d still running after Stop", s.PID())
	}

	// Same schema: no conversion, rows intact.
	s, err = start(t, dir, nbDatabase, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := nbctl(s, "show"); got != want {
		t.Errorf("after restart show = %q, want %q", got, want)
	}
	if backups, _ := filepath.Glob(filepath.Join(dir, "*.bak-*")); len(backups) != 0 {
		t.Errorf("restart with the same schema converted the database: %v", backups)
	}
	_ = s.Stop()

	// New schema with one more column: converted, rows intact, column usable.
	upgraded := nbDatabase
	upgraded.Schema = withExtraColumn(t, nbDatabase.Schema)
	s, err = start(t, dir, upgraded, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := nbctl(s, "show"); got != want {
		t.Errorf("after upgrade show = %q, want %q", got, want)
	}
	if got := nbctl(s, "acl-list", "sw0"); got != wantACL {
		t.Errorf("after upgrade acl-list = %q, want %q", got, wantACL)
	}
	if v := dbservertest.Run(t, "ovsdb-tool", "db-version", s.DBPath()); strings.TrimSpace(v) != upgradedVersion {
		t.Errorf("db-version after upgrade = %q", v)
	}
	cols := dbservertest.Run(t, "ovsdb-client", "list-columns", s.Endpoint(), nbdb.DatabaseName, "Logical_Switch")
	if !strings.Contains(cols, "govn_test_extra") {
		t.Errorf("new column missing from server schema:\n%s", cols)
	}
	// ovn-nbctl knows only its compiled-in columns; write the new one directly.
	res := dbservertest.Run(t, "ovsdb-client", "transact", s.Endpoint(), `["OVN_Northbound",{"op":"update","table":"Logical_Switch",`+
		`"where":[["name","==","sw0"]],"row":{"govn_test_extra":"hello"}}]`)
	if !strings.Contains(res, `"count":1`) {
		t.Errorf("update of the new column: %s", res)
	}
	dump := dbservertest.Run(t, "ovsdb-client", "dump", s.Endpoint(), nbdb.DatabaseName, "Logical_Switch", "name", "govn_test_extra", "ports")
	if !strings.Contains(dump, "hello") || !strings.Contains(dump, "sw0") {
		t.Errorf("dump after setting new column:\n%s", dump)
	}
	oldVersion := schemaVersion(t, nbDatabase.Schema)
	backups, _ := filepath.Glob(filepath.Join(dir, "ovnnb_db.db.bak-"+oldVersion+"-*"))
	if len(backups) != 1 {
		t.Errorf("want one backup of the %s database, got %v", oldVersion, backups)
	}
}

func TestMissingBinary(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := start(t, dbservertest.ShortTempDir(t), nbDatabase, nil)
	if err == nil || !strings.Contains(err.Error(), "ovsdb-server not found in PATH") {
		t.Fatalf("want a clear missing-binary error, got %v", err)
	}
	t.Log(err)
}

func TestUnwritableDataDir(t *testing.T) {
	dbservertest.RequireOVS(t)
	file := filepath.Join(t.TempDir(), "plainfile")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := start(t, filepath.Join(file, "db"), nbDatabase, nil)
	if err == nil || !strings.Contains(err.Error(), "cannot be created: not a directory") {
		t.Fatalf("want a clear data-dir error, got %v", err)
	}
	t.Log(err)

	// An existing directory where files cannot be created: for non-root a
	// mode 0500 directory, for root a directory of /proc (refuses even root).
	ro := "/proc/sys"
	if os.Geteuid() != 0 {
		ro = filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
	}
	_, err = start(t, ro, nbDatabase, nil)
	if err == nil || !strings.Contains(err.Error(), "data directory "+ro+" is not writable") {
		t.Fatalf("want a clear not-writable error, got %v", err)
	}
	t.Log(err)
}

func TestPortInUse(t *testing.T) {
	dbservertest.RequireOVS(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = start(t, dbservertest.ShortTempDir(t), nbDatabase, func(c *dbserver.Config) {
		c.Remotes = []string{fmt.Sprintf("ptcp:%d:127.0.0.1", port)}
	})
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("want a port-in-use error, got %v", err)
	}
	t.Log(err)
	_, err = start(t, dbservertest.ShortTempDir(t), nbDatabase, func(c *dbserver.Config) {
		c.ClusterLocal = fmt.Sprintf("tcp:127.0.0.1:%d", port)
	})
	if err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Fatalf("want a port-in-use error for --cluster-local, got %v", err)
	}
	t.Log(err)

	// A free port works and serves OVSDB over TCP.
	free := dbservertest.FreePort(t)
	s, err := start(t, dbservertest.ShortTempDir(t), nbDatabase, func(c *dbserver.Config) {
		c.Remotes = []string{fmt.Sprintf("ptcp:%d:127.0.0.1", free)}
	})
	if err != nil {
		t.Fatal(err)
	}
	dbservertest.Run(t, "ovn-nbctl", fmt.Sprintf("--db=tcp:127.0.0.1:%d", free), "ls-add", "tcp-sw")
	if out := dbservertest.Run(t, "ovn-nbctl", "--db="+s.Endpoint(), "ls-list"); !strings.Contains(out, "tcp-sw") {
		t.Errorf("ls-list over unix: %q", out)
	}
}

func TestBadArguments(t *testing.T) {
	dbservertest.RequireOVS(t)
	dir := dbservertest.ShortTempDir(t)
	for _, tc := range []struct {
		mut  func(*dbserver.Config)
		want string
	}{
		{func(c *dbserver.Config) { c.Remotes = []string{"tcp:1.2.3.4:5"} }, `unsupported kind "tcp"`},
		{func(c *dbserver.Config) { c.Remotes = []string{"ptcp:notaport"} }, `bad port "notaport"`},
		{func(c *dbserver.Config) { c.Remotes = []string{"punix:/" + strings.Repeat("x", 120)} }, "longer than the 107"},
		{func(c *dbserver.Config) { c.Remotes = []string{"pssl:6641"} }, "pssl needs --ssl-private-key"},
		{func(c *dbserver.Config) { c.ClusterLocal = "tcp:localhost:1" }, "literal IP address"},
		{func(c *dbserver.Config) { c.ClusterRemotes = []string{"tcp:127.0.0.1:1"} }, "needs --cluster-local"},
	} {
		_, err := start(t, dir, nbDatabase, tc.mut)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want error containing %q, got %v", tc.want, err)
		}
	}
}

// TestChildDiesUnexpectedly: if ovsdb-server dies, Wait reports it.
func TestChildDiesUnexpectedly(t *testing.T) {
	dbservertest.RequireOVS(t)
	s, err := start(t, dbservertest.ShortTempDir(t), nbDatabase, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(s.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the child was killed")
	}
	err = s.Wait()
	if err == nil || !strings.Contains(err.Error(), "exited unexpectedly") || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("want an unexpected-exit error, got %v", err)
	}
	t.Log(err)
}

// TestGovnBinary builds the govn binary and checks that `govn nbdb` and
// `govn sbdb` serve real ovn-nbctl/ovn-sbctl and stop cleanly on SIGTERM
// (exit status 0), taking their ovsdb-server with them.
func TestGovnBinary(t *testing.T) {
	dbservertest.RequireOVS(t)
	bin := filepath.Join(t.TempDir(), "govn")
	build := exec.Command("go", "build", "-o", bin, "github.com/govn/govn/cmd/govn")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/govn: %v\n%s", err, out)
	}
	for _, tc := range []struct{ sub, base, ctl string }{
		{"nbdb", "ovnnb_db", "ovn-nbctl"},
		{"sbdb", "ovnsb_db", "ovn-sbctl"},
	} {
		t.Run(tc.sub, func(t *testing.T) {
			dir := dbservertest.ShortTempDir(t)
			var output bytes.Buffer
			cmd := exec.Command(bin, tc.sub, "--data-dir", dir, "--log-format", "json")
			cmd.Stderr = &output
			cmd.Stdout = &output
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var waitErr error
			exited := make(chan struct{})
			go func() { waitErr = cmd.Wait(); close(exited) }()
			t.Cleanup(func() {
				select {
				case <-exited:
				default:
					_ = cmd.Process.Kill()
					<-exited
				}
			})
			db := "--db=unix:" + filepath.Join(dir, tc.base+".sock")
			deadline := time.Now().Add(20 * time.Second)
			for {
				if _, err := dbservertest.RunErr(tc.ctl, db, "--timeout=2", "show"); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("govn %s did not serve %s; output:\n%s", tc.sub, db, output.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			if tc.sub == "nbdb" {
				dbservertest.Run(t, tc.ctl, db, "ls-add", "bin-sw")
				if out := dbservertest.Run(t, tc.ctl, db, "ls-list"); !strings.Contains(out, "bin-sw") {
					t.Errorf("ls-list: %q", out)
				}
			} else {
				dbservertest.Run(t, tc.ctl, db, "chassis-add", "bin-ch", "geneve", "192.0.2.9")
				if out := dbservertest.Run(t, tc.ctl, db, "show"); !strings.Contains(out, "bin-ch") {
					t.Errorf("show: %q", out)
				}
			}
			pidText, err := os.ReadFile(filepath.Join(dir, tc.base+".pid"))
			if err != nil {
				t.Fatal(err)
			}
			childPID, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
			if err != nil || dbservertest.ProcessGone(childPID) {
				t.Fatalf("ovsdb-server pid %q not running: %v", pidText, err)
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case <-exited:
				if waitErr != nil {
					t.Fatalf("govn %s exited with %v after SIGTERM; output:\n%s", tc.sub, waitErr, output.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("govn %s did not exit after SIGTERM; output:\n%s", tc.sub, output.String())
			}
			if !dbservertest.ProcessGone(childPID) {
				t.Errorf("ovsdb-server (pid %d) still running after govn exited", childPID)
			}
		})
	}

	// A 3-member cluster from the command line: the first creates it, the
	// others join; ovn-nbctl with all members works; SIGTERM stops each.
	t.Run("nbdb-cluster", func(t *testing.T) {
		type member struct {
			cmd    *exec.Cmd
			dir    string
			exited chan struct{}
			err    error
			out    bytes.Buffer
		}
		var members []*member
		var addrs, dbs []string
		for i := 0; i < 3; i++ {
			m := &member{dir: dbservertest.ShortTempDir(t), exited: make(chan struct{})}
			local := fmt.Sprintf("tcp:127.0.0.1:%d", dbservertest.FreePort(t))
			args := []string{"nbdb", "--data-dir", m.dir, "--cluster-local", local, "--election-timer", "1000"}
			for _, a := range addrs {
				args = append(args, "--cluster-remote", a)
			}
			m.cmd = exec.Command(bin, args...)
			m.cmd.Stdout, m.cmd.Stderr = &m.out, &m.out
			if err := m.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { m.err = m.cmd.Wait(); close(m.exited) }()
			t.Cleanup(func() {
				select {
				case <-m.exited:
				default:
					_ = m.cmd.Process.Kill()
					<-m.exited
				}
			})
			members, addrs = append(members, m), append(addrs, local)
			dbs = append(dbs, "unix:"+filepath.Join(m.dir, "ovnnb_db.sock"))
		}
		for i, m := range members {
			sock := "unix:" + filepath.Join(m.dir, "ovnnb_db.sock")
			deadline := time.Now().Add(30 * time.Second)
			for {
				if _, err := dbservertest.RunErr("ovsdb-client", "--timeout=2", "wait", sock, "OVN_Northbound", "connected"); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("member %d did not join; output:\n%s", i, m.out.String())
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
		db := "--db=" + strings.Join(dbs, ",")
		dbservertest.Run(t, "ovn-nbctl", db, "ls-add", "cluster-sw")
		for _, d := range dbs {
			// Reads may go to any member; each converges on the write.
			deadline := time.Now().Add(10 * time.Second)
			for {
				out, _ := dbservertest.RunErr("ovn-nbctl", "--db="+d, "--no-leader-only", "ls-list")
				if strings.Contains(out, "cluster-sw") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s does not have the write: %q", d, out)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		for i := len(members) - 1; i >= 0; i-- {
			m := members[i]
			_ = m.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-m.exited:
				if m.err != nil {
					t.Errorf("member %d exited with %v after SIGTERM; output:\n%s", i, m.err, m.out.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("member %d did not exit after SIGTERM", i)
			}
		}
	})

	// A port in use is a one-line error and exit status 1, no stack trace.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	bad := exec.Command(bin, "nbdb", "--data-dir", dbservertest.ShortTempDir(t),
		"--remote", fmt.Sprintf("ptcp:%d:127.0.0.1", l.Addr().(*net.TCPAddr).Port))
	out, err := bad.CombinedOutput()
	var ee *exec.ExitError
	if err == nil || !errorsAs(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("want exit status 1, got %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "already in use") || strings.Contains(string(out), "goroutine") {
		t.Errorf("want a clear error, got:\n%s", out)
	}
}

func errorsAs(err error, target **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*target = e
	}
	return ok
}

// TestClusteredSchemaUpgrade: a clustered database is converted online (with
// ovsdb-client convert) when the member restarts with a new schema.
func TestClusteredSchemaUpgrade(t *testing.T) {
	dbservertest.RequireOVS(t)
	dir := dbservertest.ShortTempDir(t)
	local := fmt.Sprintf("tcp:127.0.0.1:%d", dbservertest.FreePort(t))
	cluster := func(c *dbserver.Config) { c.ClusterLocal = local }
	s, err := start(t, dir, nbDatabase, cluster)
	if err != nil {
		t.Fatal(err)
	}
	dbservertest.Run(t, "ovsdb-client", "--timeout=30", "wait", s.Endpoint(), nbdb.DatabaseName, "connected")
	dbservertest.Run(t, "ovn-nbctl", "--db="+s.Endpoint(), "ls-add", "csw")
	if out := dbservertest.Run(t, "ovsdb-tool", "db-is-clustered", s.DBPath()); out != "" {
		t.Logf("db-is-clustered: %s", out)
	}
	_ = s.Stop()

	upgraded := nbDatabase
	upgraded.Schema = withExtraColumn(t, nbDatabase.Schema)
	s, err = start(t, dir, upgraded, cluster)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		cols, _ := dbservertest.RunErr("ovsdb-client", "list-columns", s.Endpoint(), nbdb.DatabaseName, "Logical_Switch")
		if strings.Contains(cols, "govn_test_extra") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("clustered database not converted online; columns:\n%s", cols)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out := dbservertest.Run(t, "ovn-nbctl", "--db="+s.Endpoint(), "ls-list"); !strings.Contains(out, "(csw)") {
		t.Errorf("rows lost in online conversion: ls-list = %q", out)
	}
	if v := dbservertest.Run(t, "ovsdb-client", "get-schema-version", s.Endpoint(), nbdb.DatabaseName); strings.TrimSpace(v) != upgradedVersion {
		t.Errorf("schema version after online conversion: %q", v)
	}
}

// TestAlreadyRunning: a second server on the same data directory or socket
// is refused with a clear error, and the first keeps serving.
func TestAlreadyRunning(t *testing.T) {
	dbservertest.RequireOVS(t)
	dir := dbservertest.ShortTempDir(t)
	first, err := start(t, dir, nbDatabase, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = start(t, dir, nbDatabase, nil)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("another ovsdb-server (pid %d) is already running", first.PID())) {
		t.Fatalf("second server on the same directory: want a clear error, got %v", err)
	}
	t.Log(err)
	_, err = start(t, dbservertest.ShortTempDir(t), nbDatabase, func(c *dbserver.Config) {
		c.Remotes = []string{"punix:" + first.UnixSocket()}
	})
	if err == nil || !strings.Contains(err.Error(), "another process already serves") {
		t.Fatalf("second server on the same socket: want a clear error, got %v", err)
	}
	t.Log(err)
	dbservertest.Run(t, "ovn-nbctl", "--db="+first.Endpoint(), "ls-add", "still-here")

	// A stale socket (server gone) is replaced.
	if err := first.Stop(); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", first.UnixSocket())
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	again, err := start(t, dir, nbDatabase, nil)
	if err != nil {
		t.Fatalf("restart over a stale socket: %v", err)
	}
	if out := dbservertest.Run(t, "ovn-nbctl", "--db="+again.Endpoint(), "ls-list"); !strings.Contains(out, "still-here") {
		t.Errorf("ls-list after restart: %q", out)
	}
}
