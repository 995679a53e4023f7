package packaging

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// composeService is the part of a compose service the tests look at.
type composeService struct {
	Image       string            `json:"image"`
	Command     []string          `json:"command"`
	Environment map[string]string `json:"environment"`
	Privileged  bool              `json:"privileged"`
	CapAdd      []string          `json:"cap_add"`
	Volumes     []string          `json:"volumes"`
	Networks    json.RawMessage   `json:"networks"`
	DependsOn   json.RawMessage   `json:"depends_on"`
	Healthcheck *struct {
		Test []string `json:"test"`
	} `json:"healthcheck"`
}

type composeFile struct {
	Services map[string]composeService `json:"services"`
	Volumes  map[string]any            `json:"volumes"`
	Networks map[string]any            `json:"networks"`
}

func parseCompose(t *testing.T, b []byte) composeFile {
	t.Helper()
	var c composeFile
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose file: %v", err)
	}
	return c
}

// composeValidator returns the argv prefix of an offline compose validator:
// `docker compose` (v2 plugin) or Debian's docker-compose (v1).
func composeValidator() ([]string, string) {
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}, ""
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}, ""
	}
	return nil, "neither `docker compose` nor docker-compose is installed (hack/deps-docker.sh installs docker-compose)"
}

// entrypointRoles are the roles packaging/docker/entrypoint.sh accepts.
var entrypointRoles = []string{"nbdb", "sbdb", "northd", "api", "controller", "up", "chassis", "healthz", "govnctl"}

// checkFlags fails if a --flag in args is not a flag of `govn ROLE`.
func checkFlags(t *testing.T, govn, role string, args []string) {
	t.Helper()
	help := runOut(t, nil, govn, role, "--help")
	for _, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		name, _, _ := strings.Cut(a, "=")
		if !strings.Contains(help, "  "+name+" ") && !strings.Contains(help, ", "+name+" ") {
			t.Errorf("govn %s has no flag %s (used in %v)", role, name, args)
		}
	}
}

// TestComposeConfig validates docker-compose.yml with a real compose
// implementation (client only, no engine) and checks the deployment it
// describes: the central services, two privileged chassis pointed at the
// southbound database's address, named volumes for the databases, a health
// check on every service, and commands the image's entrypoint and govn accept.
func TestComposeConfig(t *testing.T) {
	validator, why := composeValidator()
	if validator == nil {
		t.Skip(why)
	}
	root := repoRoot(t)
	argv := append(validator, "--project-directory", root, "-f", filepath.Join(root, "docker-compose.yml"), "config")
	out := runOut(t, nil, argv[0], argv[1:]...)
	c := parseCompose(t, []byte(out))

	want := []string{"api", "chassis1", "chassis2", "nbdb", "northd", "sbdb"}
	var got []string
	for name := range c.Services {
		got = append(got, name)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("services %v, want %v", got, want)
	}
	for _, v := range []string{"nb-data", "sb-data"} {
		if _, ok := c.Volumes[v]; !ok {
			t.Errorf("named volume %s missing", v)
		}
	}
	if !slices.Contains(c.Services["nbdb"].Volumes, "nb-data:/var/lib/govn/nb:rw") &&
		!slices.Contains(c.Services["nbdb"].Volumes, "nb-data:/var/lib/govn/nb") {
		t.Errorf("nbdb volumes %v: want nb-data on /var/lib/govn/nb", c.Services["nbdb"].Volumes)
	}
	// The chassis reach the southbound database at sbdb's fixed address on
	// the port sbdb listens on.
	var sbNet struct {
		Govn struct {
			IPv4 string `json:"ipv4_address"`
		} `json:"govn"`
	}
	if err := json.Unmarshal(c.Services["sbdb"].Networks, &sbNet); err != nil || sbNet.Govn.IPv4 == "" {
		t.Fatalf("sbdb networks %s: want a fixed ipv4_address on govn (%v)", c.Services["sbdb"].Networks, err)
	}
	sbPort := ""
	for _, a := range c.Services["sbdb"].Command {
		if m := regexp.MustCompile(`^ptcp:(\d+)`).FindStringSubmatch(a); m != nil {
			sbPort = m[1]
		}
	}
	govn, _ := binaries(t)
	for name, s := range c.Services {
		if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 {
			t.Errorf("%s: no health check", name)
		}
		if len(s.Command) == 0 || !slices.Contains(entrypointRoles, s.Command[0]) {
			t.Errorf("%s: command %v: first word must be an entrypoint role %v", name, s.Command, entrypointRoles)
			continue
		}
		role := s.Command[0]
		if role == "chassis" {
			role = "controller"
			if !s.Privileged || !slices.Contains(s.CapAdd, "NET_ADMIN") {
				t.Errorf("%s: want privileged with NET_ADMIN", name)
			}
			if want := "tcp:" + sbNet.Govn.IPv4 + ":" + sbPort; s.Environment["GOVN_SB_REMOTE"] != want {
				t.Errorf("%s: GOVN_SB_REMOTE=%q, want %q", name, s.Environment["GOVN_SB_REMOTE"], want)
			}
		}
		checkFlags(t, govn, role, s.Command[1:])
	}
	if c.Services["chassis1"].Environment["GOVN_SYSTEM_ID"] == c.Services["chassis2"].Environment["GOVN_SYSTEM_ID"] {
		t.Error("the chassis share a system-id")
	}

	// A broken file fails validation (the validator really validates).
	bad := filepath.Join(t.TempDir(), "bad.yml")
	if err := os.WriteFile(bad, []byte("services:\n  x:\n    image: a\n    privileged: maybe\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	argv = append(validator, "-f", bad, "config")
	if _, err := runErr(nil, argv[0], argv[1:]...); err == nil {
		t.Errorf("%v accepted privileged: maybe", argv)
	}
}

// TestDockerfile checks the image recipe against this machine: every file it
// copies exists, the entrypoint it names is the one the compose file's
// health checks call, and its Debian packages provide every program the
// entrypoint runs (looked up with dpkg -S on this Debian).
func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	stages := strings.Count(df, "\nFROM ") + map[bool]int{true: 1}[strings.HasPrefix(df, "FROM ")]
	if stages < 2 {
		t.Errorf("Dockerfile has %d stages, want a multi-stage build", stages)
	}
	var packages []string
	sc := bufio.NewScanner(strings.NewReader(strings.ReplaceAll(df, "\\\n", " ")))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 3 && f[0] == "COPY" && !strings.HasPrefix(f[1], "--from") {
			for _, src := range f[1 : len(f)-1] {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("COPY %s: %v", src, err)
				}
			}
		}
		if i := slices.Index(f, "--no-install-recommends"); i >= 0 {
			for _, p := range f[i+1:] {
				if p == "&&" {
					break
				}
				packages = append(packages, p)
			}
		}
	}
	if !strings.Contains(df, `ENTRYPOINT ["/usr/local/bin/govn-entrypoint"]`) ||
		!strings.Contains(df, "COPY packaging/docker/entrypoint.sh /usr/local/bin/govn-entrypoint") {
		t.Error("the image's entrypoint is not packaging/docker/entrypoint.sh at /usr/local/bin/govn-entrypoint")
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("dpkg not available: cannot map programs to packages")
	}
	for _, prog := range []string{"ovsdb-server", "ovsdb-tool", "ovsdb-client", "ovs-vsctl", "ovs-vswitchd", "ovs-appctl", "ip", "awk", "hostname"} {
		path, err := exec.LookPath(prog)
		if err != nil {
			t.Errorf("%s: %v", prog, err)
			continue
		}
		resolved, _ := filepath.EvalSymlinks(path)
		owner := ""
		for _, p := range []string{path, resolved, strings.TrimPrefix(resolved, "/usr")} {
			if out, err := exec.Command("dpkg", "-S", p).Output(); err == nil {
				owner, _, _ = strings.Cut(strings.TrimSpace(string(out)), ":")
				break
			}
		}
		essential := map[string]bool{"mawk": true, "hostname": true} // in every Debian image
		if owner == "" {
			t.Errorf("%s (%s): no Debian package owns it", prog, path)
		} else if !slices.Contains(packages, owner) && !essential[owner] {
			t.Errorf("%s comes from Debian package %s, which the Dockerfile does not install (%v)", prog, owner, packages)
		}
	}
}

// TestSystemdUnits runs `systemd-analyze verify` on every unit (with
// ExecStart pointing at a freshly built govn) and checks that each daemon
// restarts on failure, is ordered after what it needs, reads
// /etc/default/govn, and that every govn flag the units pass exists.
func TestSystemdUnits(t *testing.T) {
	root := repoRoot(t)
	units, err := filepath.Glob(filepath.Join(root, "packaging", "systemd", "*.service"))
	if err != nil || len(units) == 0 {
		t.Fatalf("no units: %v", err)
	}
	govn, _ := binaries(t)
	defaults, err := os.ReadFile(filepath.Join(root, "packaging", "systemd", "govn.default"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{ // unit → ordering it must have
		"govn-nbdb.service": "", "govn-sbdb.service": "",
		"govn-northd.service":     "After=network-online.target govn-nbdb.service govn-sbdb.service",
		"govn-api.service":        "After=network-online.target govn-nbdb.service",
		"govn-controller.service": "After=network-online.target openvswitch-switch.service",
		"govn-up.service":         "",
	}
	dir := t.TempDir()
	var paths []string
	for _, u := range units {
		name := filepath.Base(u)
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		order, known := want[name]
		if !known {
			t.Errorf("unexpected unit %s", name)
		}
		delete(want, name)
		for _, line := range []string{"Restart=on-failure", "EnvironmentFile=-/etc/default/govn", order} {
			if line != "" && !strings.Contains(s, line+"\n") && !strings.Contains(s, line+" ") {
				t.Errorf("%s lacks %q", name, line)
			}
		}
		if strings.Contains(s, "After=govn-") || strings.Contains(order, "govn-nbdb") {
			if !strings.Contains(s, "Requires=govn-nbdb.service") {
				t.Errorf("%s: ordered after govn-nbdb but does not require it", name)
			}
		}
		// ExecStart: govn ROLE flags…; every flag exists, every variable is
		// documented in govn.default.
		for _, line := range strings.Split(s, "\n") {
			exec, ok := strings.CutPrefix(line, "ExecStart=")
			if !ok {
				continue
			}
			f := strings.Fields(exec)
			if len(f) < 2 || f[0] != "/usr/local/bin/govn" {
				t.Errorf("%s: ExecStart %q: want /usr/local/bin/govn ROLE …", name, exec)
				continue
			}
			checkFlags(t, govn, f[1], f[2:])
			for _, m := range regexp.MustCompile(`\$\{?([A-Z_]+)\}?`).FindAllStringSubmatch(exec, -1) {
				if !strings.Contains(string(defaults), m[1]+"=") {
					t.Errorf("%s uses $%s, which govn.default does not document", name, m[1])
				}
			}
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(s, "/usr/local/bin/govn", govn)), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	for name := range want {
		t.Errorf("unit %s missing", name)
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (hack/deps-docker.sh installs systemd): units checked statically only")
	}
	cmd := exec.Command("systemd-analyze", append([]string{"verify"}, paths...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	// verify exits 0 on some problems (it logs them and ignores the
	// setting): any output about our units is a failure too.
	if err != nil || strings.Contains(string(out), ".service") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}
