package run

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/govn/govn/internal/dbserver/dbservertest"
)

// startOVNNorthd runs the real ovn-northd (23.03) on e's databases.
func startOVNNorthd(t *testing.T, e *env) {
	t.Helper()
	if _, err := exec.LookPath("ovn-northd"); err != nil {
		t.Skipf("ovn-northd not installed (apt install ovn-central): %v", err)
	}
	dir := dbservertest.ShortTempDir(t)
	cmd := exec.Command("ovn-northd", "--ovnnb-db="+e.nb.Endpoint(), "--ovnsb-db="+e.sb.Endpoint(),
		"--unixctl="+filepath.Join(dir, "northd.ctl"), "--log-file="+filepath.Join(dir, "northd.log"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
}

// natTopology: pods p1 (10.0.0.11) and p2 (10.0.0.12) on sw-in, router
// rtr between sw-in and the external switch ext (localnet port ln-ext on
// physnet1), default route to 172.16.0.254, and the NAT rules: snat of
// 10.0.0.0/24 to .100, dnat .101 → p1, floating IP .102 ↔ p2, and the same
// in IPv6 (fd00::/64 behind fd01::100..102) (fip: the
// extra arguments of lr-nat-add, e.g. "p2 00:00:00:00:fa:02" for a
// distributed one). gateway chooses a gateway router (options:chassis=hv1)
// or a distributed gateway port (gateway chassis hv1 and hv2).
func natTopology(e *env, gatewayRouter bool, fip ...string) {
	e.nbctl("--wait=sb", "ls-add", "sw-in",
		"--", "lsp-add", "sw-in", "p1", "--", "lsp-set-addresses", "p1", "00:00:00:00:0a:0b 10.0.0.11",
		"--", "lsp-add", "sw-in", "p2", "--", "lsp-set-addresses", "p2", "00:00:00:00:0a:0c 10.0.0.12",
		"--", "ls-add", "ext", "--", "lsp-add", "ext", "ln-ext", "--", "lsp-set-type", "ln-ext", "localnet",
		"--", "lsp-set-addresses", "ln-ext", "unknown", "--", "lsp-set-options", "ln-ext", "network_name=physnet1")
	e.nbctl("--wait=sb", "lr-add", "rtr",
		"--", "lrp-add", "rtr", "rtr-ext", "00:00:00:00:ee:01", "172.16.0.1/24", "fd01::1/64",
		"--", "lrp-add", "rtr", "rtr-in", "00:00:00:00:ee:02", "10.0.0.1/24", "fd00::1/64",
		"--", "lsp-add", "ext", "ext-rtr", "--", "lsp-set-type", "ext-rtr", "router",
		"--", "lsp-set-addresses", "ext-rtr", "router", "--", "lsp-set-options", "ext-rtr", "router-port=rtr-ext",
		"--", "lsp-add", "sw-in", "in-rtr", "--", "lsp-set-type", "in-rtr", "router",
		"--", "lsp-set-addresses", "in-rtr", "router", "--", "lsp-set-options", "in-rtr", "router-port=rtr-in")
	if gatewayRouter {
		e.nbctl("--wait=sb", "set", "Logical_Router", "rtr", "options:chassis=hv1")
	} else {
		e.nbctl("--wait=sb", "lrp-set-gateway-chassis", "rtr-ext", "hv1", "20",
			"--", "lrp-set-gateway-chassis", "rtr-ext", "hv2", "10")
	}
	e.nbctl("--wait=sb", "lr-route-add", "rtr", "0.0.0.0/0", "172.16.0.254")
	e.nbctl("--wait=sb", "lr-nat-add", "rtr", "snat", "172.16.0.100", "10.0.0.0/24")
	e.nbctl("--wait=sb", "lr-nat-add", "rtr", "dnat", "172.16.0.101", "10.0.0.11")
	e.nbctl(append([]string{"--wait=sb", "lr-nat-add", "rtr", "dnat_and_snat", "172.16.0.102", "10.0.0.12"}, fip...)...)
	// The same in IPv6 (a distributed floating IP gets its own MAC).
	e.nbctl("--wait=sb", "lr-nat-add", "rtr", "snat", "fd01::100", "fd00::/64",
		"--", "lr-nat-add", "rtr", "dnat", "fd01::101", "fd00::11")
	if len(fip) == 2 {
		fip = []string{fip[0], "00:00:00:00:fa:03"}
	}
	e.nbctl(append([]string{"--wait=sb", "lr-nat-add", "rtr", "dnat_and_snat", "fd01::102", "fd00::12"}, fip...)...)
	// A stateless floating IP; SNAT of another subnet to the router's own
	// address (its traffic must reach lr_in_unsnat).
	e.nbctl("--wait=sb", "--stateless", "lr-nat-add", "rtr", "dnat_and_snat", "172.16.0.103", "10.0.0.13",
		"--", "lr-nat-add", "rtr", "snat", "172.16.0.1", "10.0.5.0/24")
}

// compareWithOVN runs setup on govn's northd and on the real ovn-northd
// and compares the logical flows of datapath dp and, if sw is not empty,
// the unicast destination lookup of switch sw.
func compareWithOVN(t *testing.T, dp, sw string, setup func(e *env)) {
	t.Helper()
	o := newEnv(t)
	startOVNNorthd(t, o)
	g := newEnv(t)
	g.start()
	setup(g)
	setup(o)
	deadline := time.Now().Add(10 * time.Second)
	var want, got []string
	for {
		want, got = ovnAffinityFix(routerFlows(ovnDropFix(rtrLBSets(o, o.sbctl("lflow-list", dp))))), routerFlows(g.sbctl("lflow-list", dp))
		if strings.Join(want, "\n") == strings.Join(got, "\n") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(want) < 50 {
		t.Fatalf("OVN wrote only %d flows for %s:\n%s", len(want), dp, strings.Join(want, "\n"))
	}
	if d := lineDiffs(want, got); d != "" {
		t.Errorf("%s flows differ from OVN 23.03 (- OVN only, + govn only):\n%s", dp, d)
	}
	if sw != "" {
		// The switch's unicast destination lookup (govn has no
		// _MC_flood_l2 flows yet, so only priority 50 is compared).
		l2 := func(e *env) []string {
			var out []string
			for _, l := range routerFlows(e.sbctl("lflow-list", sw)) {
				if strings.Contains(l, "(ls_in_l2_lkup ), priority=50 ") {
					out = append(out, l)
				}
			}
			return out
		}
		want, got := l2(o), l2(g)
		if len(want) == 0 {
			t.Fatalf("OVN wrote no unicast lookup flows for %s", sw)
		}
		if d := lineDiffs(want, got); d != "" {
			t.Errorf("%s destination lookup differs from OVN 23.03 (- OVN only, + govn only):\n%s", sw, d)
		}
	}
}

// TestNATMatchesOVN: NAT on a gateway router and on a distributed router
// with a gateway port (centralised and distributed floating IP) gives the
// router flows the real ovn-northd 23.03 writes for the same commands.
func TestNATMatchesOVN(t *testing.T) {
	for _, tc := range []struct {
		name    string
		gateway bool
		fip     []string
	}{
		{"gateway-router", true, nil},
		{"distributed", false, nil},
		{"distributed-fip", false, []string{"p2", "00:00:00:00:fa:02"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			compareWithOVN(t, "rtr", "ext", func(e *env) { natTopology(e, tc.gateway, tc.fip...) })
		})
	}
}

// sbRows lists a table's rows as ovn-sbctl shows them (bare values, one
// slice of columns per row).
func sbRows(e *env, table, columns string) [][]string {
	out, err := csv.NewReader(strings.NewReader(e.sbctl("--format=csv", "--data=bare", "--no-headings",
		"--columns="+columns, "list", table))).ReadAll()
	if err != nil {
		panic(err)
	}
	return out
}

// bindingRows lists Port_Binding rows (logical_port, type, options, mac,
// nat_addresses, tag, HA group name) and HA chassis groups (name, then
// each member as chassis-name/priority/chassis row name) as ovn-sbctl
// shows them, sorted, without UUIDs or tunnel keys (which differ between
// two databases).
func bindingRows(e *env) []string {
	chassisName := map[string]string{}
	for _, r := range sbRows(e, "Chassis", "_uuid,name") {
		chassisName[r[0]] = r[1]
	}
	haChassis := map[string]string{}
	for _, r := range sbRows(e, "HA_Chassis", "_uuid,external_ids,priority,chassis") {
		haChassis[r[0]] = r[1] + "/" + r[2] + "/chassis=" + chassisName[r[3]]
	}
	groups := map[string]string{}
	var out []string
	for _, r := range sbRows(e, "HA_Chassis_Group", "_uuid,name,ha_chassis") {
		groups[r[0]] = r[1]
		var members []string
		for _, hc := range strings.Fields(r[2]) {
			members = append(members, haChassis[hc])
		}
		sort.Strings(members)
		out = append(out, "HA_Chassis_Group "+r[1]+": "+strings.Join(members, " "))
	}
	natAddrs := map[string]string{}
	out2, err := csv.NewReader(strings.NewReader(e.sbctl("--format=csv", "--data=json", "--no-headings",
		"--columns=logical_port,nat_addresses", "list", "Port_Binding"))).ReadAll()
	if err != nil {
		panic(err)
	}
	for _, r := range out2 {
		var name string
		if err := json.Unmarshal([]byte(r[0]), &name); err != nil {
			panic(err)
		}
		natAddrs[name] = natAddrCanon(r[1])
	}
	for _, r := range sbRows(e, "Port_Binding", "logical_port,type,options,mac,nat_addresses,tag,ha_chassis_group") {
		r[6] = "ha_chassis_group=" + groups[r[6]]
		r[4] = natAddrs[r[0]]
		out = append(out, strings.Join(r, " | "))
	}
	sort.Strings(out)
	return out
}

// TestGatewayBindingsMatchOVN: localnet, l3gateway (gateway router) and
// chassisredirect + HA_Chassis_Group (distributed gateway port) bindings
// read with the real ovn-sbctl are those the real ovn-northd 23.03 writes
// for the same ovn-nbctl commands, including HA_Chassis.chassis once a
// chassis of that name exists.
func TestGatewayBindingsMatchOVN(t *testing.T) {
	for _, tc := range []struct {
		name    string
		gateway bool
	}{{"gateway-router", true}, {"distributed", false}} {
		t.Run(tc.name, func(t *testing.T) {
			o := newEnv(t)
			startOVNNorthd(t, o)
			g := newEnv(t)
			g.start()
			for _, e := range []*env{o, g} {
				natTopology(e, tc.gateway, "p2", "00:00:00:00:fa:02")
				e.sbctl("chassis-add", "hv1", "geneve", "127.0.0.1")
				e.nbctl("--wait=sb", "lsp-set-options", "ln-ext", "network_name=physnet1", "--", "set", "Logical_Switch_Port", "ln-ext", "tag=42")
			}
			got := sameBindings(t, o, g)
			// nat-addresses=router: the NAT external IPs and LB VIPs too.
			for _, e := range []*env{o, g} {
				e.nbctl("--wait=sb", "lsp-set-options", "ext-rtr", "router-port=rtr-ext", "nat-addresses=router",
					"--", "lb-add", "web", "172.16.0.200:80", "10.0.0.11:8080", "--", "lr-lb-add", "rtr", "web")
			}
			if s := strings.Join(sameBindings(t, o, g), "\n"); !strings.Contains(s, "172.16.0.101") || !strings.Contains(s, "172.16.0.200") {
				t.Errorf("nat-addresses=router did not add the NAT IPs:\n%s", s)
			}
			if !tc.gateway {
				if !strings.Contains(strings.Join(got, "\n"), "hv1/20/chassis=hv1") {
					t.Errorf("HA_Chassis of hv1 does not point at chassis hv1:\n%s", strings.Join(got, "\n"))
				}
			}
			// Removing the gateway removes the cr port and the group
			// (distributed) or the l3gateway types (gateway router).
			for _, e := range []*env{o, g} {
				if tc.gateway {
					e.nbctl("--wait=sb", "remove", "Logical_Router", "rtr", "options", "chassis")
				} else {
					e.nbctl("--wait=sb", "lrp-del-gateway-chassis", "rtr-ext", "hv1", "--", "lrp-del-gateway-chassis", "rtr-ext", "hv2")
				}
			}
			got = sameBindings(t, o, g)
			if s := strings.Join(got, "\n"); strings.Contains(s, "l3gateway") || strings.Contains(s, "chassisredirect") || strings.Contains(s, "HA_Chassis_Group") {
				t.Errorf("gateway bindings left:\n%s", s)
			}
		})
	}
}

// sameBindings waits until govn's bindings (g) are OVN's (o) and returns
// them; it fails the test with the difference if they do not converge.
func sameBindings(t *testing.T, o, g *env) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		want, got := bindingRows(o), bindingRows(g)
		if strings.Join(want, "\n") == strings.Join(got, "\n") {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("bindings differ from OVN 23.03 (- OVN only, + govn only):\n%s", lineDiffs(want, got))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var rtrLBSet = regexp.MustCompile(`\$_rtr_lb_[0-9]+_ip[46]`)

// rtrLBSets replaces OVN's references to a router's load balancer VIP
// address set ($_rtr_lb_<datapath key>_ip4) by the set's addresses, as
// govn writes them.
func rtrLBSets(e *env, flows string) string {
	sets := map[string]string{}
	for _, r := range sbRows(e, "Address_Set", "name,addresses") {
		a := strings.Fields(r[1])
		sort.Strings(a)
		sets["$"+r[0]] = "{" + strings.Join(a, ", ") + "}"
	}
	return rtrLBSet.ReplaceAllStringFunc(flows, func(n string) string {
		if v, ok := sets[n]; ok {
			return v
		}
		return n
	})
}

// TestRouterLBMatchesOVN: load balancers on a gateway router and on a
// distributed router with a gateway port (VIP with port, portless VIP, no
// backends, skip_snat, reject, lb_force_snat_ip), next to NAT, give the
// router flows the real ovn-northd 23.03 writes.
func TestRouterLBMatchesOVN(t *testing.T) {
	for _, tc := range []struct {
		name    string
		gateway bool
	}{{"gateway-router", true}, {"distributed", false}} {
		t.Run(tc.name, func(t *testing.T) {
			compareWithOVN(t, "rtr", "", func(e *env) {
				natTopology(e, tc.gateway, "p2", "00:00:00:00:fa:02")
				e.nbctl("--wait=sb", "lb-add", "lbA", "172.16.0.200:80", "10.0.0.11:8080,10.0.0.12:8080",
					"--", "lb-add", "lbB", "172.16.0.201", "10.0.0.11",
					"--", "lb-add", "lbC", "172.16.0.202:53", "", "udp",
					"--", "lb-add", "lbD", "192.168.77.203:443", "10.0.0.13:443", "--", "set", "load_balancer", "lbD", "options:skip_snat=true",
					"--", "lb-add", "lbE", "172.16.0.204:80", "", "--", "set", "load_balancer", "lbE", "options:reject=true",
					"--", "lr-lb-add", "rtr", "lbA", "--", "lr-lb-add", "rtr", "lbB", "--", "lr-lb-add", "rtr", "lbC",
					"--", "lr-lb-add", "rtr", "lbD", "--", "lr-lb-add", "rtr", "lbE",
					"--", "lb-add", "lb6", "[fd01::200]:80", "[fd00::11]:8080,[fd00::12]:8080", "--", "lb-add", "lb6b", "fd01::201", "fd00::11",
					"--", "lr-lb-add", "rtr", "lb6", "--", "lr-lb-add", "rtr", "lb6b",
					"--", "lb-add", "lbR", "[fd00::1]:8080", "[fd00::11]:80", "--", "lr-lb-add", "rtr", "lbR",
					"--", "set", "Logical_Router", "rtr", `options:lb_force_snat_ip="172.16.0.99 fd01::99"`)
				// Session affinity (ovnAffinityFix: the learn flow's next;).
				e.nbctl("--wait=sb", "lb-add", "lbF", "172.16.0.205:80", "10.0.0.11:80,10.0.0.12:8080",
					"--", "set", "load_balancer", "lbF", "options:affinity_timeout=30",
					"--", "lb-add", "lbF", "[fd01::205]:80", "[fd00::11]:80", "--", "lb-add", "lbF", "172.16.0.206", "10.0.0.12",
					"--", "lr-lb-add", "rtr", "lbF")
			})
		})
	}
}

// TestGatewayRestart: over a northd restart the cr port keeps its tunnel
// key, the HA_Chassis_Group and HA_Chassis rows and the NAT flows are kept
// (same UUIDs), and a chassis registered while northd was down is filled
// into HA_Chassis.chassis.
func TestGatewayRestart(t *testing.T) {
	e := newEnv(t)
	e.start()
	natTopology(e, false, "p2", "00:00:00:00:fa:02")
	keys := e.keys()
	rows := func() string {
		return e.sbctl("--bare", "--columns=_uuid", "list", "HA_Chassis_Group") + "|" +
			e.sbctl("--bare", "--columns=_uuid", "list", "HA_Chassis") + "|" +
			e.sbctl("--bare", "--columns=_uuid", "list", "Logical_Flow")
	}
	before := rows()
	e.stop()
	e.sbctl("chassis-add", "hv2", "geneve", "127.0.0.2")
	e.start()
	e.nbctl("--wait=sb", "sync")
	if after := e.keys(); fmt.Sprint(after) != fmt.Sprint(keys) {
		t.Errorf("tunnel keys changed over a restart:\nbefore %v\nafter  %v", keys, after)
	}
	if _, ok := keys["port:cr-rtr-ext"]; !ok {
		t.Errorf("no cr-rtr-ext binding: %v", keys)
	}
	if after := rows(); !sameFields(after, before) {
		t.Errorf("HA_Chassis_Group / HA_Chassis / Logical_Flow rows were rewritten over a restart")
	}
	hv2 := strings.TrimSpace(e.sbctl("--bare", "--columns=_uuid", "find", "Chassis", "name=hv2"))
	waitFor(t, "HA_Chassis of hv2 pointing at chassis hv2", func() bool {
		return strings.TrimSpace(e.sbctl("--bare", "--columns=chassis", "find", "HA_Chassis", "external_ids:chassis-name=hv2")) == hv2
	})
	// The chassis goes away: the (weak) reference is cleared, and northd
	// keeps the row.
	e.sbctl("chassis-del", "hv2")
	e.nbctl("--wait=sb", "sync")
	if got := strings.TrimSpace(e.sbctl("--bare", "--columns=chassis,priority", "find", "HA_Chassis", "external_ids:chassis-name=hv2")); got != "10" {
		t.Errorf("HA_Chassis of deleted hv2 = %q, want no chassis, priority 10", got)
	}
}

// ovnDropFix: OVN 23.03 writes "flags.force_snat_for_lb = 1; drop;" for a
// VIP without backends on a router with lb_force_snat_ip — actions its own
// parser rejects ("drop" must be the only action), so ovn-controller never
// installs them. govn writes "drop;".
func ovnDropFix(flows string) string {
	return strings.ReplaceAll(flows, "flags.force_snat_for_lb = 1; drop;", "drop;")
}

// natAddrCanon sorts the IPs inside each nat_addresses entry (OVN 23.03
// lists a gateway router's NAT IPs in hash order) and the entries; v is
// the column in OVSDB JSON (a string or ["set", [...]]).
func natAddrCanon(v string) string {
	var raw any
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		panic(err)
	}
	var list []string
	switch x := raw.(type) {
	case string:
		list = []string{x}
	case []any:
		for _, e := range x[1].([]any) {
			list = append(list, e.(string))
		}
	}
	var entries []string
	for _, e := range list {
		f := strings.Fields(e)
		if len(f) > 2 {
			tail := f[1:]
			if strings.HasPrefix(tail[len(tail)-1], "is_chassis_resident") {
				tail = tail[:len(tail)-1]
			}
			sort.Strings(tail)
		}
		entries = append(entries, strings.Join(f, " "))
	}
	sort.Strings(entries)
	return strings.Join(entries, " ; ")
}
