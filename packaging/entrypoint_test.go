package packaging

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govn/govn/internal/ovstest"
)

// TestEntrypointCompose runs docker-compose.yml's deployment without Docker:
// every service's command line goes through the image's entrypoint
// (packaging/docker/entrypoint.sh) with the freshly built govn; the central
// services in this namespace (data volumes → a temporary directory, ports →
// free loopback ports), each started once the previous one's compose health
// check passes; each chassis in its own network namespace with an underlay
// veth "eth0" carrying its address, as a container would have. Then: both
// chassis register with their underlay addresses as Geneve endpoints, the
// address moved to br-phy, the Geneve tunnels exist, the chassis health
// checks pass, a logical switch made through the API (govnctl) carries a
// ping between pods on the two chassis, and SIGTERM stops every entrypoint
// with status 0, each chassis unregistering and stopping its Open vSwitch.
func TestEntrypointCompose(t *testing.T) {
	needOVN(t, true)
	for _, b := range []string{"ovs-vswitchd", "ovs-appctl", "ethtool", "ping"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skipf("%s not in PATH (hack/deps.sh installs it)", b)
		}
	}
	govn, govnctl := binaries(t)
	root := repoRoot(t)
	ep := filepath.Join(root, "packaging", "docker", "entrypoint.sh")
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	compose := parseCompose(t, raw)
	dir := shortDir(t, "gvk")
	env := []string{"GOVN=" + govn, "GOVNCTL=" + govnctl}

	// Container → test host: volumes under dir, listeners on free loopback
	// ports (the same port number maps to the same free port everywhere).
	ports := map[string]string{}
	port := func(p string) string {
		if _, ok := ports[p]; !ok {
			ports[p] = strconv.Itoa(freePort(t))
		}
		return ports[p]
	}
	ptcp := regexp.MustCompile(`^ptcp:(\d+):0\.0\.0\.0$`)
	hostPort := regexp.MustCompile(`^(?:0\.0\.0\.0|127\.0\.0\.1):(\d+)$`)
	rewrite := func(args []string) []string {
		out := make([]string, len(args))
		for i, a := range args {
			a = strings.ReplaceAll(a, "/var/lib/govn", dir)
			if m := ptcp.FindStringSubmatch(a); m != nil {
				a = "ptcp:" + port(m[1]) + ":127.0.0.1"
			} else if m := hostPort.FindStringSubmatch(a); m != nil {
				a = "127.0.0.1:" + port(m[1])
			} else if i > 0 && args[i-1] == "healthz" {
				a = port(a)
			}
			out[i] = a
		}
		return out
	}
	// healthcheck turns a compose health check into a command here.
	healthcheck := func(name string, inNetns string) []string {
		s := compose.Services[name]
		if s.Healthcheck == nil || len(s.Healthcheck.Test) < 2 || s.Healthcheck.Test[0] != "CMD" {
			t.Fatalf("%s: health check %v: want [CMD …]", name, s.Healthcheck)
		}
		argv := s.Healthcheck.Test[1:]
		if inNetns == "" {
			argv = rewrite(argv)
		}
		if argv[0] == "govn-entrypoint" {
			argv = append([]string{"bash", ep}, argv[1:]...)
		}
		if inNetns != "" {
			argv = append([]string{"ip", "netns", "exec", inNetns}, argv...)
		}
		return argv
	}

	// Central services, in compose's depends_on order.
	for _, d := range []string{"nb", "sb"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			t.Fatal(err)
		}
	}
	central := map[string]*proc{}
	for _, name := range []string{"nbdb", "sbdb", "northd", "api"} {
		argv := append([]string{"bash", ep}, rewrite(compose.Services[name].Command)...)
		p := startProc(t, dir, name, env, argv...)
		central[name] = p
		hc := healthcheck(name, "")
		eventually(t, 60*time.Second, name+" health check "+strings.Join(hc, " "), func() error {
			if !p.running() {
				t.Fatalf("%s exited: %v\n%s", name, p.err, p.tail(20))
			}
			_, err := runErr(env, hc[0], hc[1:]...)
			return err
		})
	}
	nb := "unix:" + filepath.Join(dir, "nb", "ovnnb_db.sock")
	sb := "unix:" + filepath.Join(dir, "sb", "ovnsb_db.sock")
	api := "127.0.0.1:" + ports["6690"]
	if ports["6690"] == "" {
		t.Fatalf("compose api does not listen on 6690 (ports %v)", ports)
	}
	sbctl := func(args ...string) (string, error) {
		return runErr(nil, "ovn-sbctl", append([]string{"--db=" + sb, "--timeout=5"}, args...)...)
	}

	// Underlay and chassis namespaces.
	prefix := "gvk" + randHex(t)
	var namespaces []string
	t.Cleanup(func() {
		for i := len(namespaces) - 1; i >= 0; i-- {
			if out, err := exec.Command("ip", "netns", "del", namespaces[i]).CombinedOutput(); err != nil {
				t.Errorf("ip netns del %s: %v %s", namespaces[i], err, out)
			}
		}
	})
	netns := func(name string) string {
		ns := prefix + "-" + name
		runOut(t, nil, "ip", "netns", "add", ns)
		namespaces = append(namespaces, ns)
		runOut(t, nil, "ip", "-n", ns, "link", "set", "lo", "up")
		return ns
	}
	ul := netns("ul")
	runOut(t, nil, "ip", "-n", ul, "link", "add", "br-ul", "type", "bridge")
	runOut(t, nil, "ip", "-n", ul, "link", "set", "br-ul", "up")

	type chassis struct {
		name, ns, ovsDir, ip string
		p                    *proc
		pids                 map[string]int
	}
	var chs []*chassis
	// Whatever happens, no Open vSwitch of ours survives the test.
	t.Cleanup(func() {
		for _, c := range chs {
			for _, d := range []string{"ovs-vswitchd", "ovsdb-server"} {
				if pid, err := ovstest.ReadPidfile(filepath.Join(c.ovsDir, d+".pid")); err == nil && ovstest.Alive(pid) {
					_ = ovstest.StopPid(pid, 5*time.Second)
				}
			}
		}
	})
	for i, name := range []string{"chassis1", "chassis2"} {
		s := compose.Services[name]
		c := &chassis{name: s.Environment["GOVN_SYSTEM_ID"], ns: netns(fmt.Sprintf("c%d", i+1)),
			ovsDir: filepath.Join(dir, name), ip: fmt.Sprintf("10.231.0.%d", i+1)}
		if c.name == "" {
			t.Fatalf("%s: no GOVN_SYSTEM_ID", name)
		}
		if err := os.MkdirAll(c.ovsDir, 0o750); err != nil {
			t.Fatal(err)
		}
		uln := fmt.Sprintf("ul%d", i+1)
		for _, args := range [][]string{
			{"-n", ul, "link", "add", uln, "type", "veth", "peer", "name", "eth0", "netns", c.ns},
			{"-n", ul, "link", "set", uln, "master", "br-ul", "up"},
			{"-n", c.ns, "addr", "add", c.ip + "/24", "dev", "eth0"},
			{"-n", c.ns, "link", "set", "eth0", "up"},
		} {
			runOut(t, nil, "ip", args...)
		}
		cenv := append(append([]string{}, env...), "OVS_RUNDIR="+c.ovsDir, "OVS_DBDIR="+c.ovsDir, "OVS_LOGDIR="+c.ovsDir)
		for k, v := range s.Environment {
			if k == "GOVN_SB_REMOTE" {
				// The container reaches sbdb over TCP at its compose
				// address; a namespace reaches it by its unix socket.
				v = sb
			}
			cenv = append(cenv, k+"="+v)
		}
		argv := append([]string{"ip", "netns", "exec", c.ns, "bash", ep}, s.Command...)
		c.p = startProc(t, dir, name, cenv, argv...)
		chs = append(chs, c)
	}
	for _, c := range chs {
		hc := healthcheck(c.name, c.ns)
		eventually(t, 60*time.Second, c.name+" health check", func() error {
			if !c.p.running() {
				t.Fatalf("%s entrypoint exited: %v\n%s", c.name, c.p.err, c.p.tail(30))
			}
			_, err := runErr(nil, hc[0], hc[1:]...)
			return err
		})
		c.pids = map[string]int{}
		for _, d := range []string{"ovs-vswitchd", "ovsdb-server"} {
			pid, err := ovstest.ReadPidfile(filepath.Join(c.ovsDir, d+".pid"))
			if err != nil {
				t.Fatal(err)
			}
			c.pids[c.name+" "+d] = pid
		}
		// The underlay address moved from eth0 to br-phy.
		if out := runOut(t, nil, "ip", "-n", c.ns, "-4", "-o", "addr", "show", "dev", "br-phy"); !strings.Contains(out, c.ip+"/24") {
			t.Errorf("%s: br-phy lacks %s/24: %s", c.name, c.ip, out)
		}
		if out := runOut(t, nil, "ip", "-n", c.ns, "-4", "-o", "addr", "show", "dev", "eth0"); strings.TrimSpace(out) != "" {
			t.Errorf("%s: eth0 still has an address: %s", c.name, out)
		}
	}
	// Both chassis registered with their underlay addresses; each has a
	// Geneve tunnel to the other.
	eventually(t, 30*time.Second, "chassis registered with their encaps", func() error {
		out, err := sbctl("--bare", "--columns=chassis_name,ip", "list", "Encap")
		if err != nil {
			return err
		}
		for _, c := range chs {
			if !strings.Contains(out, c.name) || !strings.Contains(out, c.ip) {
				return fmt.Errorf("encaps %q lack %s/%s", out, c.name, c.ip)
			}
		}
		return nil
	})
	for i, c := range chs {
		other := chs[1-i]
		eventually(t, 30*time.Second, c.name+" Geneve tunnel to "+other.name, func() error {
			out, err := runErr(nil, "ovs-vsctl", "--db=unix:"+filepath.Join(c.ovsDir, "db.sock"), "--timeout=5",
				"--bare", "--columns=options", "find", "Interface", "type=geneve")
			if err != nil {
				return err
			}
			if !regexp.MustCompile(`remote_ip="?` + regexp.QuoteMeta(other.ip) + `"?(\s|$)`).MatchString(out) {
				return fmt.Errorf("geneve interfaces: %q", out)
			}
			return nil
		})
	}
	// A health check that cannot pass does not pass.
	if _, err := runErr(nil, "ip", "netns", "exec", chs[0].ns, "bash", ep, "healthz", "9", "/healthz"); err == nil {
		t.Error("healthz on a closed port succeeded")
	}

	// A switch through the API (the api service), one pod per chassis.
	gctl := func(args ...string) {
		t.Helper()
		runOut(t, nil, govnctl, append([]string{"--server", api}, args...)...)
	}
	gctl("ls", "add", "sw0")
	for i, c := range chs {
		n := i + 1
		lsp, mac, ip := fmt.Sprintf("p%d", n), fmt.Sprintf("00:00:00:00:00:0%d", n), fmt.Sprintf("10.0.0.%d", n)
		gctl("lsp", "add", "sw0", lsp)
		gctl("lsp", "set-addresses", lsp, mac+" "+ip)
		pod := netns(lsp)
		veth := "v" + lsp
		for _, args := range [][]string{
			{"-n", c.ns, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", pod},
			{"-n", pod, "link", "set", "eth0", "address", mac, "mtu", "1400", "up"},
			{"-n", pod, "addr", "add", ip + "/24", "dev", "eth0"},
			{"-n", c.ns, "link", "set", veth, "up"},
		} {
			runOut(t, nil, "ip", args...)
		}
		runOut(t, nil, "ip", "netns", "exec", pod, "ethtool", "-K", "eth0", "tx", "off")
		runOut(t, nil, "ovs-vsctl", "--db=unix:"+filepath.Join(c.ovsDir, "db.sock"), "--timeout=10",
			"add-port", "br-int", veth, "--", "set", "Interface", veth, "external_ids:iface-id="+lsp)
	}
	if out := runOut(t, nil, "ovn-nbctl", "--db="+nb, "--timeout=10", "show"); !strings.Contains(out, "p2") {
		t.Errorf("ovn-nbctl show lacks the ports:\n%s", out)
	}
	eventually(t, 60*time.Second, "pod p1 on chassis1 pings pod p2 on chassis2 through Geneve", func() error {
		_, err := runErr(nil, "ip", "netns", "exec", prefix+"-p1", "ping", "-c", "1", "-W", "1", "10.0.0.2")
		return err
	})

	// SIGTERM: each chassis entrypoint exits 0, unregisters, stops OVS.
	for _, c := range chs {
		if err := c.p.stop(t, 30*time.Second); err != nil {
			t.Errorf("%s entrypoint on SIGTERM: %v (want exit 0)\n%s", c.name, err, c.p.tail(20))
		}
		pidsDead(t, c.pids)
		out, err := sbctl("--bare", "--columns=name", "list", "Chassis")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, c.name) {
			t.Errorf("%s still registered after its entrypoint stopped: %q", c.name, out)
		}
	}
	for _, name := range []string{"api", "northd", "sbdb", "nbdb"} {
		if err := central[name].stop(t, 30*time.Second); err != nil {
			t.Errorf("%s entrypoint on SIGTERM: %v (want exit 0)", name, err)
		}
	}
}

// TestEntrypointImageDefault runs the image's default command (the
// Dockerfile's CMD: govn up) through the entrypoint, with the data volume in
// a temporary directory and the API on a free loopback port: govnctl reaches
// the API it announces, and SIGTERM ends it with status 0. An unknown role
// is refused.
func TestEntrypointImageDefault(t *testing.T) {
	needOVN(t, false)
	govn, govnctl := binaries(t)
	root := repoRoot(t)
	ep := filepath.Join(root, "packaging", "docker", "entrypoint.sh")
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CMD (\[.*\])$`).FindSubmatch(df)
	if m == nil {
		t.Fatal("Dockerfile has no CMD [...] line")
	}
	var cmd []string
	if err := json.Unmarshal(m[1], &cmd); err != nil {
		t.Fatalf("CMD %s: %v", m[1], err)
	}
	dir := shortDir(t, "gvi")
	api := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	for i, a := range cmd {
		a = strings.ReplaceAll(a, "/var/lib/govn", dir)
		if strings.HasPrefix(a, "0.0.0.0:") {
			a = api
		}
		cmd[i] = a
	}
	if !slices.Contains(cmd, dir) || !slices.Contains(cmd, api) {
		t.Fatalf("CMD %v: want --data-dir /var/lib/govn and an API on 0.0.0.0", cmd)
	}
	env := []string{"GOVN=" + govn, "GOVNCTL=" + govnctl}
	p := startProc(t, dir, "up", env, append([]string{"bash", ep}, cmd...)...)
	eventually(t, 60*time.Second, "govn up announces the API", func() error {
		if !p.running() {
			t.Fatalf("entrypoint exited: %v\n%s", p.err, p.tail(20))
		}
		b, _ := os.ReadFile(p.log)
		if !strings.Contains(string(b), "export GOVN_SERVER="+api) {
			return fmt.Errorf("output so far:\n%s", b)
		}
		return nil
	})
	runOut(t, env, "bash", ep, "govnctl", "--server", api, "ls", "add", "img0")
	if out := runOut(t, nil, govnctl, "--server", api, "show"); !strings.Contains(out, "(img0)") {
		t.Errorf("govnctl show lacks img0:\n%s", out)
	}
	if err := p.stop(t, 30*time.Second); err != nil {
		t.Errorf("entrypoint (govn up) on SIGTERM: %v, want exit 0\n%s", err, p.tail(10))
	}

	out, err := exec.Command("bash", ep, "bogus").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `unknown role "bogus"`) {
		t.Errorf("entrypoint bogus: %v %q", err, out)
	}
}
