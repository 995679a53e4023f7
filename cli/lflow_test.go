package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/govn/govn/controller"
)

func runCtl(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(args, &out, &errOut)
	return out.String(), errOut.String(), code
}

// TestLflowCompileLoadsInOVS compiles a conjunctive ACL-style flow and checks
// that ovs-ofctl accepts every line as an OpenFlow 1.5 flow.
func TestLflowCompileLoadsInOVS(t *testing.T) {
	out, errOut, code := runCtl(t, "lflow", "compile",
		"--match", `inport == @web && ip4.src == $clients && tcp.dst == {80, 443}`,
		"--actions", `ct_commit { ct_mark = 1; }; next;`,
		"--port", "p1=1", "--port", "p2=2",
		"--port-group", "web=p1,p2",
		"--address-set", "clients=10.0.0.1,10.0.0.2,10.1.0.0/16",
		"--datapath", "5", "--table", "9", "--priority", "2001")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// 2 ports + 3 addresses + 2 tcp ports dimension flows and one conj_id flow.
	if len(lines) != 8 {
		t.Fatalf("want 8 flows, got %d:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "table=17, priority=2001,") || !strings.Contains(l, "metadata=0x5") {
			t.Errorf("flow not in table 17 (logical ingress 9) with priority 2001 on datapath 5: %s", l)
		}
	}
	if !strings.Contains(out, "conj_id=") || !strings.Contains(out, "ct(commit,zone=reg13[0..15],exec(set_field:0x1->ct_mark)),resubmit(,18)") {
		t.Errorf("missing conj_id flow with the encoded actions:\n%s", out)
	}
	ofctl, err := exec.LookPath("ovs-ofctl")
	if err != nil {
		t.Skip("ovs-ofctl not installed (apt openvswitch-common)")
	}
	cmd := exec.Command(ofctl, "-O", "OpenFlow15", "parse-flows", "-")
	cmd.Stdin = strings.NewReader(out)
	res, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(res), "decode error") {
		t.Fatalf("ovs-ofctl parse-flows rejected the output: %v\n%s", err, res)
	}
}

func TestLflowCompileJSONWithGroups(t *testing.T) {
	out, errOut, code := runCtl(t, "-o", "json", "lflow", "compile",
		"--match", `ip4.dst == 10.0.0.100 && tcp.dst == 80`,
		"--actions", `ct_lb_mark(backends=10.0.0.1:8080,10.0.0.2:8080);`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var res struct {
		Flows  []string `json:"flows"`
		Groups []string `json:"groups"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if len(res.Flows) != 1 || !strings.HasSuffix(res.Flows[0], "actions=group:1") {
		t.Errorf("flows = %q, want one flow ending in group:1", res.Flows)
	}
	if len(res.Groups) != 1 || !strings.Contains(res.Groups[0], "nat(dst=10.0.0.1:8080)") ||
		!strings.Contains(res.Groups[0], "nat(dst=10.0.0.2:8080)") {
		t.Errorf("groups = %q, want one select group with both backends", res.Groups)
	}
}

func TestLflowCheck(t *testing.T) {
	out, errOut, code := runCtl(t, "lflow", "check", "--match", `tcp.dst==80||tcp.dst==443`, "--actions", "ip.ttl--; next;")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "match: tcp.dst == {80, 443}\nactions: ip.ttl--; next;\nprerequisites: ip\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

func TestLflowErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"lflow", "check", "--match", "tcp.dst == 70000"},
			"govnctl: match: 1:12: field \"tcp.dst\" expects a 16-bit value, got \"70000\"\n  tcp.dst == 70000\n             ^\n"},
		{[]string{"lflow", "check", "--actions", "ip.proto = 6;"},
			"govnctl: actions: 1:1: "},
		{[]string{"lflow", "compile", "--match", "ip4", "--port", "p1"},
			"govnctl: --port \"p1\": want NAME=KEY with a 32-bit integer key\n"},
		{[]string{"lflow", "compile", "--match", "ip4", "--table", "40"},
			"govnctl: --table: logical ingress table 40 out of range 0..32\n"},
		{[]string{"-o", "xml", "lflow", "check", "--match", "ip4"},
			"govnctl: -o \"xml\": want table, json or yaml\n"},
	} {
		out, errOut, code := runCtl(t, tc.args...)
		if code != ExitUserError {
			t.Errorf("%q: exit %d, want %d", tc.args, code, ExitUserError)
		}
		if out != "" {
			t.Errorf("%q: wrote to stdout: %q", tc.args, out)
		}
		if !strings.HasPrefix(errOut, tc.want) {
			t.Errorf("%q: stderr\n%q\nwant prefix\n%q", tc.args, errOut, tc.want)
		}
	}
}

// TestLflowCompileFDBLookup: actions that search the controller's lookup
// tables encode with the same table layout govn controller uses.
func TestLflowCompileFDBLookup(t *testing.T) {
	out, errOut, code := runCtl(t, "lflow", "compile", "--match", "1", "--actions", "outport = get_fdb(eth.dst); next;")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if want := fmt.Sprintf("resubmit(,%d)", controller.TableGetFDB); !strings.Contains(out, want) {
		t.Errorf("get_fdb does not search controller.TableGetFDB (%s):\n%s", want, out)
	}
}
