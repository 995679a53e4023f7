package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/api/server"
	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/nbdb"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

var nbDatabase = dbserver.Database{Name: nbdb.DatabaseName, Schema: nbdb.SchemaJSON, Base: "ovnnb_db", GlobalTable: "NB_Global"}

// apiEnv is a real NB ovsdb-server with a govn API server in front.
type apiEnv struct {
	db  *dbserver.Server
	api *server.Running
}

func startAPI(t *testing.T) *apiEnv {
	t.Helper()
	db := dbservertest.Start(t, nbDatabase, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	api, err := server.Start(ctx, server.Config{NB: []string{db.Endpoint()}, Listen: "127.0.0.1:0", Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Stop)
	return &apiEnv{db: db, api: api}
}

// govnctl runs the CLI in-process against the env's server.
func (e *apiEnv) govnctl(args ...string) (stdout, stderr string, code int) {
	var out, errOut bytes.Buffer
	code = Main(append([]string{"--server", e.api.Addr()}, args...), &out, &errOut)
	return out.String(), errOut.String(), code
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// transcript runs each command line (split on spaces, '…' quoting) and
// records its stdout, stderr and exit code with UUIDs masked.
func (e *apiEnv) transcript(t *testing.T, script string) string {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(script), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		args := splitArgs(t, line)
		out, errOut, code := e.govnctl(args...)
		fmt.Fprintf(&b, "$ govnctl %s\n", line)
		b.WriteString(out)
		if errOut != "" {
			b.WriteString("[stderr] " + errOut)
		}
		fmt.Fprintf(&b, "[exit %d]\n\n", code)
	}
	return uuidRE.ReplaceAllString(b.String(), "<uuid>")
}

// splitArgs splits on spaces; '...' groups words.
func splitArgs(t *testing.T, s string) []string {
	var out []string
	for len(s) > 0 {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			break
		}
		if s[0] == '\'' {
			end := strings.IndexByte(s[1:], '\'')
			if end < 0 {
				t.Fatalf("unterminated quote in %q", s)
			}
			out = append(out, s[1:end+1])
			s = s[end+2:]
			continue
		}
		end := strings.IndexByte(s, ' ')
		if end < 0 {
			end = len(s)
		}
		out = append(out, s[:end])
		s = s[end:]
	}
	return out
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./cli -run %s -update)", err, t.Name())
	}
	if string(want) != got {
		t.Errorf("%s differs from the golden file (go test ./cli -run %s -update to accept):\n--- got ---\n%s", path, t.Name(), got)
	}
}

func TestGovnctlSwitchesGolden(t *testing.T) {
	e := startAPI(t)
	got := e.transcript(t, `
ls add sw0
ls add sw0
ls add sw0 --may-exist
ls add sw1
lsp add sw0 p1 --address '00:00:00:00:00:01 10.0.0.11'
lsp add sw0 p2
lsp set-addresses p2 '00:00:00:00:00:02 10.0.0.12' unknown
lsp set-port-security p2 '00:00:00:00:00:02 10.0.0.12/32'
lsp add sw0 p3 --address '00:00:00:00:00:03 10.0.0.11'
lsp add nosuch p9
lsp set-addresses p1 'zz:00:00:00:00:01'
lsp add sw1 r1 --type router --option router-port=lrp1 --address router
ls list
ls list -o json
lsp list
lsp list sw0 -o json
lsp show p2
ls show sw0
as add web 10.0.0.11 10.0.1.0/24
as add bad 10.0.0.0/33
as list
pg add pg_web p1 p2
pg list -o json
acl add sw0 to-lport 1001 'ip4.src == $web && tcp.dst == 80' allow-related --log --name web
acl add sw0 to-lport 1001 'ip4.src == $web && tcp.dst == 80' allow-related --may-exist
acl add sw0 from-lport 100 'ip4 && tcp.dst == 80 &&& udp' drop
acl add sw0 from-lport 100 'ip4.dst == $nosuch' drop
acl add pg_web --port-group from-lport 900 'inport == @pg_web && ip4' drop
acl add sw0 from-lport 500 'ip4.dst == 10.0.0.12' pass --name to-p2
acl add sw0 from-lport 500 'tcp' drop --tier 1
acl add sw0 from-lport 500 'udp' drop --tier 4
acl list
acl list sw0 -o json
as del web
acl del sw0 to-lport
acl list
acl del sw0 --tier 1
acl del sw0 --tier 5
acl list
lsp del p2
lsp del p2
lsp del p2 --if-exists
ls del sw1
ls list -o yaml
`)
	checkGolden(t, "switches.golden", got)
}

func TestGovnctlExitCodes(t *testing.T) {
	e := startAPI(t)
	if _, errOut, code := e.govnctl("ls", "add", "sw0"); code != ExitOK {
		t.Fatalf("ls add: %d %s", code, errOut)
	}
	// User error: one line, exit 1.
	_, errOut, code := e.govnctl("lsp", "add", "sw0", "p1", "--address", "00:00:00:00:00:zz")
	if code != ExitUserError || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "govnctl: invalid addresses[0]") {
		t.Errorf("bad MAC: exit %d, stderr %q", code, errOut)
	}
	// Bad flag value: exit 1.
	if _, errOut, code := e.govnctl("ls", "list", "-o", "xml"); code != ExitUserError {
		t.Errorf("-o xml: exit %d %q", code, errOut)
	}
	// Server unreachable: exit 2.
	var out, errBuf bytes.Buffer
	code = Main([]string{"--server", "127.0.0.1:1", "--timeout", "2s", "ls", "list"}, &out, &errBuf)
	if code != ExitServer || !strings.Contains(errBuf.String(), "cannot reach the govn API at 127.0.0.1:1") || strings.Count(errBuf.String(), "\n") != 1 {
		t.Errorf("unreachable: exit %d, stderr %q", code, errBuf.String())
	}
	// GOVN_SERVER is the default for --server.
	t.Setenv("GOVN_SERVER", e.api.Addr())
	out.Reset()
	errBuf.Reset()
	if code := Main([]string{"ls", "list"}, &out, &errBuf); code != ExitOK || !strings.Contains(out.String(), "sw0") {
		t.Errorf("GOVN_SERVER: exit %d, out %q, err %q", code, out.String(), errBuf.String())
	}
	// Shell completion script and dynamic name completion.
	out.Reset()
	if code := Main([]string{"completion", "bash"}, &out, &errBuf); code != ExitOK || !strings.Contains(out.String(), "govnctl") {
		t.Errorf("completion bash: exit %d", code)
	}
	out.Reset()
	if code := Main([]string{"__complete", "ls", "del", ""}, &out, &errBuf); code != ExitOK || !strings.HasPrefix(out.String(), "sw0\n") {
		t.Errorf("dynamic completion: exit %d, out %q", code, out.String())
	}
}

func TestGovnctlRoutersGolden(t *testing.T) {
	e := startAPI(t)
	got := e.transcript(t, `
ls add sw0
lsp add sw0 vm1 --address '00:00:00:00:00:11 10.0.0.11'
lsp add sw0 sw0-lr0 --type router --option router-port=lr0-sw0 --address router
lr add lr0
lrp add lr0 lr0-sw0 00:00:00:00:ff:01 10.0.0.1/24
lrp add lr0 lr0-ext 00:00:00:00:ff:02 172.16.0.1/24
lrp add lr0 lr0-bad 00:00:00:00:ff:03 10.0.0.129/25
lrp add lr0 lr0-bad 01:00:00:00:ff:03 192.168.0.1/24
lrp list
route add lr0 0.0.0.0/0 172.16.0.254 --output-port lr0-ext
route add lr0 10.9.0.0/16 fd00::1
route add lr0 192.168.0.0/16 discard
route list
nat add lr0 snat 172.16.0.10 10.0.0.0/24
nat add lr0 dnat_and_snat 172.16.0.11 10.0.0.11 vm1 00:00:00:00:ee:11
nat add lr0 dnat 172.16.0.300 10.0.0.12
nat list
lb add lb0 10.0.0.100:80 10.0.0.11:8080
lb add lb0 10.0.0.100:443 10.0.0.11:8443 --may-exist
lb add lb1 10.0.0.101:80 10.0.0.12
lb list
lb add lb2 10.0.0.102:80 10.0.0.12:80
lb attach lb0 sw0
lb attach lb2 sw0
lb attach lb0 sw0
lb attach lb0 lr0 --router
lb attach nosuch sw0
lb attach lb2 nosuch
lb attach lb2 lr0 --router
ls list
lb detach lb2 sw0
lb detach lb2 sw0
lb detach lb2 lr0 --router
ls list
lr list
show
show -o json
route del lr0 192.168.0.0/16
nat del lr0 snat 10.0.0.0/24
lrp del lr0-ext
route del lr0
lrp del lr0-ext
lb del lb0
lr list -o yaml
lr del lr0
show
`)
	checkGolden(t, "routers.golden", got)
}

// Gateway routers, distributed gateway ports, load balancer options and a
// localnet port with a VLAN (F8's commands).
func TestGovnctlGatewaysGolden(t *testing.T) {
	e := startAPI(t)
	got := e.transcript(t, `
lr add gw --chassis ch1 --option lb_force_snat_ip=router_ip
lr add gw2 --option lb_force_snat_ip=10.0.0.300
lr add gw3 --option nokey
lr set-option gw dnat_force_snat_ip=172.20.0.254 --remove-option lb_force_snat_ip
lr set-option gw chassis=ch2
lr set-option gw
lr set-option nosuch chassis=ch1
lr set-option gw --remove-option nosuchkey --remove-option dnat_force_snat_ip
lr show gw
lr show gw -o json
lr list
lr add dr
lrp add dr dr-ext 00:00:00:00:ff:fe 172.20.0.254/24
lrp set-gateway-chassis dr-ext ch1 20
lrp set-gateway-chassis dr-ext ch2 10
lrp set-gateway-chassis dr-ext ch2 30
lrp set-gateway-chassis dr-ext ch3 32768
lrp set-gateway-chassis dr-ext ch3 high
lrp set-gateway-chassis nosuch ch1 1
lrp get-gateway-chassis dr-ext
lrp get-gateway-chassis dr-ext -o json
lrp list dr
lrp del-gateway-chassis dr-ext ch1
lrp del-gateway-chassis dr-ext ch1
lrp del-gateway-chassis dr-ext ch1 --if-exists
lrp get-gateway-chassis dr-ext
lb add web 172.20.0.254:8080 10.0.1.10:80 --option reject=true --option skip_snat=true --option hairpin_snat_ip=169.254.0.1 --option affinity_timeout=60
lb add bad 172.20.0.254:8081 10.0.1.10:80 --option affinity_timeout=forever
lb add bad 172.20.0.254:8081 10.0.1.10:80 --option hairpin_snat_ip=nope
lb add bad 172.20.0.300:8081 10.0.1.10:80
lb set-option web affinity_timeout=120 --remove-option reject
lb set-option web 'hairpin_snat_ip=1.1.1.1 2.2.2.2'
lb list
lb list -o json
ls add ext
lsp add ext ln-ext --type localnet --address unknown --option network_name=physnet --tag 100
lsp add ext ln-bad --type localnet --tag 5000
lsp show ln-ext
lr add gw4
lrp add gw4 gw4-ext 00:00:00:00:fe:01 172.21.0.1/24
lsp add ext ext-gw4 --type router --address router --option router-port=gw4-ext
lsp list ext
`)
	checkGolden(t, "gateways.golden", got)
}
