package packaging

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// unitCommand expands a unit's ExecStart the way systemd does, from the
// unit's Environment= defaults (no /etc/default/govn): ${VAR} is one word,
// $VAR splits on whitespace, an unset variable is empty.
func unitCommand(t *testing.T, unit string) []string {
	t.Helper()
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	var exec string
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Environment="); ok {
			for _, kv := range strings.Fields(v) {
				k, val, _ := strings.Cut(kv, "=")
				env[k] = val
			}
		}
		if v, ok := strings.CutPrefix(line, "ExecStart="); ok {
			exec = v
		}
	}
	if exec == "" {
		t.Fatalf("%s: no ExecStart", unit)
	}
	braced := regexp.MustCompile(`\$\{([A-Z_]+)\}`)
	plain := regexp.MustCompile(`^\$([A-Z_]+)$`)
	var argv []string
	for _, w := range strings.Fields(exec) {
		if m := plain.FindStringSubmatch(w); m != nil {
			argv = append(argv, strings.Fields(env[m[1]])...)
			continue
		}
		argv = append(argv, braced.ReplaceAllStringFunc(w, func(s string) string {
			return env[braced.FindStringSubmatch(s)[1]]
		}))
	}
	return argv
}

// TestSystemdUnitsRun starts the four central units' ExecStart command lines
// with their default settings (the data directory moved to a temporary one,
// the API to a free port), in their dependency order, and checks that they
// form a working central: govnctl writes through the API, northd turns it
// into a southbound datapath, and SIGTERM (systemctl stop) ends each with
// status 0 (so Restart=on-failure does not restart a stopped daemon).
func TestSystemdUnitsRun(t *testing.T) {
	needOVN(t, false)
	govn, govnctl := binaries(t)
	units := filepath.Join(repoRoot(t), "packaging", "systemd")
	dir := shortDir(t, "gvs")
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	procs := map[string]*proc{}
	for _, name := range []string{"nbdb", "sbdb", "northd", "api"} {
		argv := unitCommand(t, filepath.Join(units, "govn-"+name+".service"))
		if argv[0] != "/usr/local/bin/govn" {
			t.Fatalf("govn-%s: ExecStart %v", name, argv)
		}
		argv[0] = govn
		for i, a := range argv {
			a = strings.ReplaceAll(a, "/var/lib/govn", dir)
			argv[i] = strings.ReplaceAll(a, "127.0.0.1:6690", api)
		}
		p := startProc(t, dir, name, nil, argv...)
		procs[name] = p
		if name == "nbdb" || name == "sbdb" {
			sock := filepath.Join(dir, name[:2], "ovn"+name[:2]+"_db.sock")
			eventually(t, 60*time.Second, "govn-"+name+" serves "+sock, func() error {
				if !p.running() {
					t.Fatalf("govn-%s exited: %v\n%s", name, p.err, p.tail(20))
				}
				_, err := runErr(nil, "ovsdb-client", "--timeout=2", "list-dbs", "unix:"+sock)
				return err
			})
		}
	}
	eventually(t, 60*time.Second, "govnctl reaches govn-api", func() error {
		if !procs["api"].running() {
			t.Fatalf("govn-api exited: %v\n%s", procs["api"].err, procs["api"].tail(20))
		}
		_, err := runErr(nil, govnctl, "--server", api, "ls", "add", "unit0")
		return err
	})
	sb := "unix:" + filepath.Join(dir, "sb", "ovnsb_db.sock")
	eventually(t, 30*time.Second, "govn-northd makes the switch's datapath", func() error {
		out, err := runErr(nil, "ovn-sbctl", "--db="+sb, "--timeout=5", "--bare", "--columns=external_ids", "list", "Datapath_Binding")
		if err != nil || !strings.Contains(out, "unit0") {
			return fmt.Errorf("datapaths %q: %v", out, err)
		}
		return nil
	})
	for _, name := range []string{"api", "northd", "sbdb", "nbdb"} {
		if err := procs[name].stop(t, 30*time.Second); err != nil {
			t.Errorf("govn-%s on SIGTERM: %v, want exit 0", name, err)
		}
	}
}
