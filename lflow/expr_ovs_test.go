package lflow_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/govn/govn/internal/ovstest"
	"github.com/govn/govn/lflow/bits"
	"github.com/govn/govn/lflow/expr"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// update is accepted so `go test ./lflow/... -update` works.
var update = flag.Bool("update", false, "rewrite golden files")

// aclMatches is a realistic set of ACL-style logical flow matches
// (network policies, port security, ARP/ND, ct states).
func aclMatches(n int) []string {
	tmpl := []string{
		`outport == @pg_web && ip4 && ip4.src == $as_clients && tcp.dst == {80, 443}`,
		`inport == "lsp%d" && ip4.dst == 10.%d.2.0/24 && 1024 <= tcp.dst <= 2048`,
		`outport == "lsp%d" && ip6 && ip6.src == fd00:%x::/64 && udp.dst == 53`,
		`ct.est && !ct.rel && !ct.new && !ct.inv && ct.rpl && ct_mark.blocked == 0`,
		`ct.new && ip4 && ip4.dst == 10.0.%d.10 && tcp.dst == %d`,
		`inport == "lsp%d" && eth.src == 00:00:00:00:%02x:01 && arp && arp.sha == 00:00:00:00:%02x:01`,
		`outport == @pg_db && ip4.src == {10.1.%d.0/24, $as_clients} && tcp.dst == {5432, 3306} && ct.new`,
		`inport == "lsp%d" && nd_ns && nd.target == fe80::%x`,
		`ip4 && ip4.src == $pg_web_ip4 && icmp4.type == 8`,
		`outport == "lsp%d" && ip && !ip.later_frag && (udp.dst == 67 || udp.dst == 547)`,
		`ip4.src != 10.%d.0.0/16 && tcp.dst == 22 && inport == "lsp%d"`,
		`reg0[7] == 1 && (outport == @pg_web || outport == @pg_db) && ip4 && sctp.dst == %d`,
	}
	out := make([]string, 0, n)
	for i := 0; i < n; i++ {
		t := tmpl[i%len(tmpl)]
		k := i/len(tmpl) + 1
		args := make([]any, strings.Count(t, "%"))
		for j := range args {
			args[j] = k % 250
		}
		out = append(out, fmt.Sprintf(t, args...))
	}
	return out
}

func aclOptions(conjBase uint32) *expr.Options {
	ports := make(map[string]uint32, 300)
	for k := uint32(1); k < 300; k++ {
		ports[fmt.Sprintf("lsp%d", k)] = k
	}
	return &expr.Options{
		Ports: func(name string) (uint32, bool) {
			k, ok := ports[name]
			return k, ok
		},
		AddressSets: func(name string) ([]string, bool) {
			switch name {
			case "as_clients":
				return []string{"10.2.0.1", "10.2.0.2", "10.2.0.3", "10.3.0.0/16"}, true
			case "pg_web_ip4":
				return []string{"10.0.0.11", "10.0.0.12"}, true
			}
			return nil, false
		},
		PortGroups: func(name string) ([]string, bool) {
			switch name {
			case "pg_web":
				return []string{"lsp1", "lsp2", "lsp3"}, true
			case "pg_db":
				return []string{"lsp4", "lsp5"}, true
			}
			return nil, false
		},
		ConjIDBase: conjBase,
	}
}

// compileACLs compiles the matches into flows in table 44, one priority per
// 4 logical flows, the way a controller would (datapath key in metadata,
// distinct conjunction ids, a cookie per logical flow).
func compileACLs(t testing.TB, matches []string) []of.Flow {
	c := expr.NewCompiler(symtab.Default())
	var flows []of.Flow
	conj := uint32(1)
	var base of.Match
	base.Set(symtab.DatapathField, bits.From64(1), bits.Ones(64))
	for i, m := range matches {
		if i%3 == 0 {
			// ct() needs IP: the action's prerequisite joins the match,
			// as the action encoder's prerequisites do.
			m = "ip && (" + m + ")"
		}
		res, err := c.CompileString(m, aclOptions(conj))
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		conj += uint32(res.NConj())
		acts := of.Actions{of.Resubmit{Table: 45}}
		if i%3 == 0 {
			acts = of.Actions{of.CT{Commit: true, Table: 45, Zone: symtab.ZoneSubfield(symtab.CTZoneField),
				Exec: of.Actions{of.SetField{Dst: of.Sub(of.CTMark, 0, 1), Value: bits.From64(0)}}}}
		}
		flows = append(flows, res.Flows(44, uint16(1000+i), uint64(0x1000+i), base, acts)...)
	}
	return flows
}

// TestCompiledFlowsParse checks every compiled ACL flow with the real
// ovs-ofctl parser (no daemon).
func TestCompiledFlowsParse(t *testing.T) {
	path, err := exec.LookPath("ovs-ofctl")
	if err != nil {
		t.Skip("ovs-ofctl not installed")
	}
	text := of.FlowsString(compileACLs(t, aclMatches(120)))
	cmd := exec.Command(path, "-O", "OpenFlow15", "parse-flows", "-")
	cmd.Stdin = strings.NewReader(text)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("parse-flows: %v\n%s", err, stderr.String())
	}
	if strings.Contains(out.String(), "decode error") || strings.Contains(stderr.String(), "WARN") {
		t.Fatalf("parse-flows complained:\n%s%s", stderr.String(), out.String())
	}
	if n, want := strings.Count(out.String(), "OFPT_FLOW_MOD"), strings.Count(text, "\n"); n != want {
		t.Fatalf("parse-flows parsed %d flows, want %d", n, want)
	}
}

// TestACLFlowsLoadIntoVswitchd installs the compiled flows of a realistic
// ACL set into a real ovs-vswitchd bridge and checks the flow count.
func TestACLFlowsLoadIntoVswitchd(t *testing.T) {
	if _, err := exec.LookPath("ovs-vswitchd"); err != nil {
		t.Skip("ovs-vswitchd not installed")
	}
	v := ovstest.Start(t, ovstest.Options{Bridges: []string{"br0"}, PrivateNetns: true})
	flows := compileACLs(t, aclMatches(600))
	unique := map[string]bool{}
	for i := range flows {
		unique[fmt.Sprintf("%d/%d/%s", flows[i].Table, flows[i].Priority, flows[i].Match.String())] = true
	}
	entry := of.Flow{Table: 0, Priority: 0, Actions: of.Actions{of.Resubmit{Table: 44}}}
	if out, err := v.OfctlStdin(entry.String()+"\n"+of.FlowsString(flows), "-O", "OpenFlow15", "--bundle", "add-flows", "br0", "-"); err != nil {
		t.Fatalf("add-flows: %v\n%s", err, out)
	}
	out, err := v.Ofctl("-O", "OpenFlow15", "dump-aggregate", "br0", "table=44")
	if err != nil {
		t.Fatalf("dump-aggregate: %v", err)
	}
	if want := fmt.Sprintf("flow_count=%d", len(unique)); !strings.Contains(out, want) {
		t.Fatalf("dump-aggregate: %s, want %s (%d flows generated)", out, want, len(flows))
	}
	// A packet that the pg_web ACLs accept reaches a conj_id flow (the
	// highest-priority copy of that ACL) and its ct() action; one with
	// another port does not match table 44 at all.
	trace, err := v.Appctl("ofproto/trace", "br0",
		"in_port=LOCAL,metadata=1,reg15=1,tcp,nw_src=10.2.0.1,tp_dst=443")
	if err != nil {
		t.Fatalf("trace: %v\n%s", err, trace)
	}
	if !strings.Contains(trace, "44. conj_id=") || !strings.Contains(trace, "ct(commit,table=45") {
		t.Fatalf("packet did not hit a conjunction:\n%s", trace)
	}
	trace, err = v.Appctl("ofproto/trace", "br0",
		"in_port=LOCAL,metadata=1,reg15=1,tcp,nw_src=10.2.0.1,tp_dst=444")
	if err != nil {
		t.Fatalf("trace: %v\n%s", err, trace)
	}
	if !strings.Contains(trace, "44. No match") {
		t.Fatalf("packet to port 444 matched an ACL:\n%s", trace)
	}
	t.Logf("%d flows from %d logical flows installed", len(unique), 600)
}

// TestGoldenFlowsParse compiles every input of lflow/testdata/expr-flows.txt
// (which covers ARP, ND, VLAN, fragments, ct_state, registers, ...) and
// feeds the flows to the real ovs-ofctl parser.
func TestGoldenFlowsParse(t *testing.T) {
	path, err := exec.LookPath("ovs-ofctl")
	if err != nil {
		t.Skip("ovs-ofctl not installed")
	}
	data, err := os.ReadFile(filepath.Join("testdata", "expr-flows.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ports := map[string]uint32{"lsp1": 1, "lsp2": 2, "lsp3": 3, "lsp123": 0x7b}
	opts := &expr.Options{
		Ports: func(n string) (uint32, bool) { k, ok := ports[n]; return k, ok },
		AddressSets: func(n string) ([]string, bool) {
			return map[string][]string{
				"as1": {"10.0.0.1", "192.168.0.0/16"}, "as_ip6": {"fd00::1"}, "as_mac": {"00:00:00:00:00:01"},
				"empty": {}, "pg_ip4": {"10.1.0.1"},
			}[n], true
		},
		PortGroups:      func(n string) ([]string, bool) { return []string{"lsp1", "lsp2"}, true },
		ChassisResident: func(p string) bool { return p == "lsp1" },
	}
	c := expr.NewCompiler(symtab.Default())
	var sb strings.Builder
	n := 0
	conj := uint32(1)
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, " ") || strings.HasPrefix(line, "#") {
			continue
		}
		opts.ConjIDBase = conj
		res, err := c.CompileString(line, opts)
		if err != nil {
			continue // the file has error cases too
		}
		conj += uint32(res.NConj())
		for _, f := range res.Flows(uint8(i%200), 100, uint64(i), of.Match{}, of.Actions{of.Resubmit{Table: 1}}) {
			sb.WriteString(f.String())
			sb.WriteByte('\n')
			n++
		}
	}
	cmd := exec.Command(path, "-O", "OpenFlow15", "parse-flows", "-")
	cmd.Stdin = strings.NewReader(sb.String())
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("parse-flows: %v\n%s", err, stderr.String())
	}
	if strings.Contains(out.String(), "decode error") || strings.Contains(stderr.String(), "WARN") {
		t.Fatalf("parse-flows complained:\n%s%s", stderr.String(), out.String())
	}
	if got := strings.Count(out.String(), "OFPT_FLOW_MOD"); got != n || n < 100 {
		t.Fatalf("parse-flows parsed %d of %d flows", got, n)
	}
}
