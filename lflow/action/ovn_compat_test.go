package action_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/lflow/action"
	"github.com/govn/govn/lflow/symtab"
)

// ovnOnlyOurs lists canonical forms OVN's own parser (ovn 23.03) rejects:
// extensions of ours. Each is explained; the test fails if one of them
// starts being accepted (so the list stays true) or if anything else is
// rejected.
var ovnOnlyOurs = map[string]string{
	"ct_dnat(10.0.0.5:8080);": "govn extension: DNAT to an address and port (OVN 23.03 takes an address only)",
	"ct_dnat([fd00::5]:80);":  "govn extension: DNAT to an IPv6 address and port",
}

// ovnAcceptsWeReject lists inputs OVN 23.03 accepts but govn rejects, with
// the reason.
var ovnAcceptsWeReject = map[string]string{
	"reg0[0..3] = 16;":                                                            "govn checks that assigned values fit the field",
	"ct_commit(ct_mark=0x100000000);":                                             "govn checks that assigned values fit the field",
	"ct_commit { next; };":                                                        "govn allows only ct_mark/ct_label assignments inside ct_commit { }",
	"ct_lb_mark(backends=10.0.0.1:80,fd00::1);":                                   "govn rejects mixed IPv4/IPv6 backends (no flow can satisfy both prerequisites)",
	"ct_lb_mark(backends=10.0.0.1:80; hash_fields=\"ip_src,foo\");":               "govn checks hash_fields names (OVS would reject the group)",
	"reg0[0..7] = 0x100/0x100;":                                                   "govn checks that assigned values fit the field",
	"reg0[1] = check_pkt_larger(65536);":                                          "govn limits the length to 16 bits, as OVS's check_pkt_larger does",
	"ct_lb(backends=10.0.0.2:80; skip_snat);":                                     "symtab has no ct_label.skip_snat bit (ct_lb is the legacy form; use ct_lb_mark)",
	"reg0[3] = put_dhcp_opts(offerip = 10.0.0.2, domain_search_list = \"a..b\");": "govn checks DHCP option values when parsing (OVN only when encoding the reply)",
	"reg0[3] = put_dhcp_opts(offerip = {10.0.0.2, 10.0.0.3});":                    "govn checks DHCP option values when parsing",
	"reg0[3] = put_dhcp_opts(offerip = 10.0.0.2, classless_static_route = {30.0.0.0/255.0.255.0, 10.0.0.1});": "govn checks DHCP option values when parsing",
	"reg0[3] = put_dhcp_opts(offerip = 10.0.0.2, offerip = 10.0.0.3);":                                        "govn rejects duplicate DHCP options",
	"reg0[3] = put_dhcp_opts(offerip = 10.0.0.2, classless_static_route = {30.0.0.0/24});":                    "govn checks DHCP option values when parsing",
	"reg0[3] = put_dhcp_opts(offerip = 10.0.0.2, mtu = 70000);":                                               "govn checks DHCP option values when parsing",
	"reg0[3] = put_dhcpv6_opts(ia_addr = {fd00::1, fd00::2});":                                                "govn checks DHCPv6 option values when parsing",
	"reg0[3] = put_dhcpv6_opts(server_id = fd00::1);":                                                         "govn checks DHCPv6 option values when parsing",
	"reg0[3] = put_dhcpv6_opts(ia_addr = 10.0.0.1);":                                                          "govn checks DHCPv6 option values when parsing",
	"reg0 = 0x5/0x0;": "govn rejects an assignment whose mask selects no bits",
}

// TestCanonicalFormsParseInOVN stores the canonical form of every valid
// golden input as a Logical_Flow in a real OVN Southbound database and runs
// the real ovn-trace over it: ovn-trace parses every logical flow with OVN's
// own action parser and warns about each one it cannot parse.
func TestCanonicalFormsParseInOVN(t *testing.T) {
	for _, tool := range []string{"ovn-sbctl", "ovn-trace", "ovsdb-server", "ovsdb-tool"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	schema, err := os.ReadFile("/usr/share/ovn/ovn-sb.ovsschema")
	if err != nil {
		t.Skipf("OVN schema: %v", err)
	}
	dir, err := os.MkdirTemp("", "gv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := dbserver.Start(ctx, dbserver.Config{
		DB:      dbserver.Database{Name: "OVN_Southbound", Schema: schema, Base: "ovnsb_db", GlobalTable: "SB_Global"},
		DataDir: dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })

	st := symtab.Default()
	args := []string{"--db=" + srv.Endpoint(), "--",
		"--id=@dp", "create", "Datapath_Binding", "tunnel_key=1", "external_ids:name=ls1"}
	for i, name := range []string{"p1", "p2", "lsp-router"} {
		args = append(args, "--", "create", "Port_Binding", "logical_port="+name, "datapath=@dp", "tunnel_key="+strconv.Itoa(i+1))
	}
	// ovn-trace learns DHCP option names and types from DHCP_Options rows
	// (northd writes them in a real deployment).
	for _, o := range action.DHCPOpts {
		args = append(args, "--", "create", "DHCP_Options", "name="+o.Name, "code="+strconv.Itoa(int(o.Code)), "type="+o.Type.String())
	}
	for _, o := range action.DHCPv6Opts {
		args = append(args, "--", "create", "DHCPv6_Options", "name="+o.Name, "code="+strconv.Itoa(int(o.Code)), "type="+o.Type.String())
	}
	// A catch-all flow: ovn-trace 23.03 crashes when a table has flows but
	// none matches the packet. The flows under test never match (reg9).
	args = append(args, "--", "create", "Logical_Flow", "logical_datapath=@dp", "pipeline=ingress",
		"table_id=0", "priority=0", "match=1", `actions="drop;"`)
	canon := map[string]bool{}
	for _, in := range goldenInputs(t) {
		src, _ := testParams(in)
		parsed, err := action.Parse(src, st)
		if err != nil {
			continue
		}
		if _, enc := run(in); enc == nil {
			continue // an encode error case (e.g. a table beyond the pipeline)
		}
		c := parsed.String()
		if canon[c] {
			continue
		}
		canon[c] = true
		args = append(args, "--", "create", "Logical_Flow", "logical_datapath=@dp", "pipeline=ingress",
			"table_id=0", "priority="+strconv.Itoa(100+len(canon)), `match="reg9 == 0x1234"`, "actions="+strconv.Quote(c))
	}
	// Inputs we reject: OVN should reject them as well.
	ourErrors := map[string]bool{}
	for _, in := range goldenInputs(t) {
		src, _ := testParams(in)
		if _, err := action.Parse(src, st); err == nil || canon[src] || ourErrors[src] {
			continue
		}
		ourErrors[src] = true
		args = append(args, "--", "create", "Logical_Flow", "logical_datapath=@dp", "pipeline=ingress",
			"table_id=0", "priority="+strconv.Itoa(100+len(canon)+len(ourErrors)), `match="reg9 == 0x1234"`, "actions="+strconv.Quote(src))
	}
	if len(canon) < 80 {
		t.Fatalf("only %d canonical forms", len(canon))
	}
	if out, err := exec.Command("ovn-sbctl", args...).CombinedOutput(); err != nil {
		t.Fatalf("ovn-sbctl: %v\n%s", err, out)
	}
	cmd := exec.Command("ovn-trace", "--db="+srv.Endpoint(), "ls1", `inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == 00:00:00:00:00:02`)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("ovn-trace: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), `ingress(dp="ls1", inport="p1")`) {
		t.Fatalf("ovn-trace did not trace the datapath:\n%s%s", stdout.String(), stderr.String())
	}
	rejected := map[string]string{}
	for _, l := range strings.Split(stderr.String(), "\n") {
		const marker = ": parsing actions failed ("
		i := strings.Index(l, marker)
		if i < 0 {
			if strings.Contains(l, "WARN") || strings.Contains(l, "ERR") {
				t.Errorf("ovn-trace: %s", l)
			}
			continue
		}
		head := l[:i]
		j := strings.Index(head, "|ovntrace|WARN|")
		if j < 0 {
			t.Errorf("unexpected warning format: %s", l)
			continue
		}
		rejected[head[j+len("|ovntrace|WARN|"):]] = strings.TrimSuffix(l[i+len(marker):], ")")
	}
	for src := range ourErrors {
		if _, ok := rejected[src]; !ok {
			if _, known := ovnAcceptsWeReject[src]; !known {
				t.Errorf("OVN accepts %q, which we reject", src)
			}
		} else {
			delete(rejected, src)
		}
	}
	for c, why := range rejected {
		if _, ok := ovnOnlyOurs[c]; !ok {
			t.Errorf("OVN rejects our canonical form %q: %s", c, why)
		}
	}
	for c := range ovnOnlyOurs {
		if _, ok := rejected[c]; !ok {
			t.Errorf("OVN now accepts %q: remove it from ovnOnlyOurs", c)
		}
	}
	t.Logf("%d canonical forms checked with ovn-trace, %d known OVN-incompatible", len(canon), len(rejected))
}
