package action_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/govn/govn/internal/ovstest"
	"github.com/govn/govn/lflow/action"
)

// goldenInputs returns every input line of the action golden files.
func goldenInputs(t *testing.T) []string {
	t.Helper()
	var ins []string
	for _, name := range []string{"action-parse.txt", "action-errors.txt"} {
		f, err := os.Open("../testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			l := sc.Text()
			if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "=>") {
				continue
			}
			ins = append(ins, l)
		}
		f.Close()
	}
	return ins
}

// matchFor returns an OpenFlow match satisfying the prerequisites of an
// action list, so OVS's consistency checks (e.g. set_field:...->ip_src needs
// an IPv4 match) see what a real flow would have.
func matchFor(prereqs []string) string {
	has := map[string]bool{}
	for _, p := range prereqs {
		has[p] = true
	}
	v6 := has["ip6"] || has["nd"] || has["nd_ns"] || has["nd_na"]
	switch {
	case has["nd_na"]:
		return "icmp6,icmp_type=136,icmp_code=0"
	case has["nd_ns"] || has["nd"]:
		return "icmp6,icmp_type=135,icmp_code=0"
	case has["tcp"] && v6:
		return "tcp6"
	case has["tcp"]:
		return "tcp"
	case has["arp"]:
		return "arp"
	case v6:
		return "ipv6"
	case has["ip4"] || has["ip"]:
		return "ip"
	}
	return "metadata=0x1"
}

// TestEncodingsAcceptedByOVS feeds every golden encoding, as a flow with a
// match built from its prerequisites, to `ovs-ofctl -O OpenFlow15
// parse-flows -`, then installs every group and the flows that use them in a
// real ovs-vswitchd.
func TestEncodingsAcceptedByOVS(t *testing.T) {
	if _, err := exec.LookPath("ovs-ofctl"); err != nil {
		t.Skip("ovs-ofctl not installed")
	}
	var flows bytes.Buffer
	type withGroups struct {
		input  string
		groups []string
		flow   string
	}
	var grouped []withGroups
	n := 0
	for _, in := range goldenInputs(t) {
		src, _ := testParams(in)
		st := symtabDefault()
		parsed, err := action.Parse(src, st)
		if err != nil {
			continue
		}
		_, enc := run(in)
		if enc == nil {
			continue
		}
		flow := fmt.Sprintf("table=10, priority=100, %s actions=%s", matchFor(parsed.Prereqs), enc.Actions)
		fmt.Fprintln(&flows, flow)
		n++
		if len(enc.Groups) > 0 {
			w := withGroups{input: in, flow: flow}
			for _, g := range enc.Groups {
				w.groups = append(w.groups, g.String())
			}
			grouped = append(grouped, w)
		}
	}
	if n < 80 {
		t.Fatalf("only %d encodings found in the golden files", n)
	}
	cmd := exec.Command("ovs-ofctl", "-O", "OpenFlow15", "parse-flows", "-")
	cmd.Stdin = &flows
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ovs-ofctl parse-flows: %v\n%s\ninput:\n%s", err, stderr.String(), flows.String())
	}
	if strings.Contains(out.String(), "decode error") || stderr.Len() > 0 {
		t.Fatalf("ovs-ofctl parse-flows complained:\n%s%s", stderr.String(), out.String())
	}
	if got := strings.Count(out.String(), "OFPT_FLOW_MOD"); got != n {
		t.Fatalf("ovs-ofctl parsed %d flows, want %d:\n%s", got, n, out.String())
	}
	if len(grouped) == 0 {
		t.Fatal("no golden input produced a group")
	}

	// Groups have no offline parser: install them in a real switch.
	v := ovstest.Start(t, ovstest.Options{PrivateNetns: true, Bridges: []string{"br0"}})
	for _, w := range grouped {
		for _, g := range w.groups {
			if _, err := v.Ofctl("-O", "OpenFlow15", "add-group", "br0", g); err != nil {
				t.Errorf("%s: add-group %s: %v", w.input, g, err)
			}
		}
		if _, err := v.Ofctl("-O", "OpenFlow15", "add-flow", "br0", w.flow); err != nil {
			t.Errorf("%s: add-flow %s: %v", w.input, w.flow, err)
		}
		dump, err := v.Ofctl("-O", "OpenFlow15", "dump-groups", "br0")
		if err != nil || !strings.Contains(dump, "type=select") {
			t.Errorf("%s: dump-groups = %q, %v", w.input, dump, err)
		}
		if _, err := v.Ofctl("-O", "OpenFlow15", "del-flows", "br0"); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Ofctl("-O", "OpenFlow15", "del-groups", "br0"); err != nil {
			t.Fatal(err)
		}
	}
}
