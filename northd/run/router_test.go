package run

import (
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/govn/govn/internal/dbserver/dbservertest"
)

// routerTopology builds, with the real ovn-nbctl and --wait=sb, two
// switches joined by router lr0, plus a static route behind b-gw.
func routerTopology(e *env) {
	e.nbctl("--wait=sb", "ls-add", "sw-a", "--", "ls-add", "sw-b",
		"--", "lsp-add", "sw-a", "a1", "--", "lsp-set-addresses", "a1", "00:00:00:00:0a:01 10.0.1.11 fd00:a::11",
		"--", "lsp-add", "sw-b", "b1", "--", "lsp-set-addresses", "b1", "00:00:00:00:0b:01 10.0.2.11 fd00:b::11",
		"--", "lsp-add", "sw-b", "b-gw", "--", "lsp-set-addresses", "b-gw", "00:00:00:00:0b:fe 10.0.2.254")
	e.nbctl("--wait=sb", "lr-add", "lr0",
		"--", "lrp-add", "lr0", "lrp-a", "00:00:00:00:ff:01", "10.0.1.1/24", "fd00:a::1/64",
		"--", "lrp-add", "lr0", "lrp-b", "00:00:00:00:ff:02", "10.0.2.1/24", "fd00:b::1/64",
		"--", "lsp-add", "sw-a", "a-rtr", "--", "lsp-set-type", "a-rtr", "router",
		"--", "lsp-set-addresses", "a-rtr", "router", "--", "lsp-set-options", "a-rtr", "router-port=lrp-a",
		"--", "lsp-add", "sw-b", "b-rtr", "--", "lsp-set-type", "b-rtr", "router",
		"--", "lsp-set-addresses", "b-rtr", "router", "--", "lsp-set-options", "b-rtr", "router-port=lrp-b")
	e.nbctl("--wait=sb", "lr-route-add", "lr0", "192.168.0.0/16", "10.0.2.254")
}

// TestRouterNbctl: router rows written by the real ovn-nbctl become a
// router datapath, patch port bindings paired with the switch ports, and
// the router pipeline; deleting the route and the router removes them.
func TestRouterNbctl(t *testing.T) {
	e := newEnv(t)
	e.start()
	routerTopology(e)

	dp := e.sbctl("--bare", "--columns=external_ids", "find", "Datapath_Binding", "external_ids:name=lr0")
	lr := strings.TrimSpace(e.nbctl("--bare", "--columns=_uuid", "find", "Logical_Router", "name=lr0"))
	if !strings.Contains(dp, "logical-router="+lr) {
		t.Fatalf("router datapath external_ids = %q, want logical-router=%s", dp, lr)
	}
	for port, want := range map[string][]string{
		"lrp-a": {"patch", "peer=a-rtr", "00:00:00:00:ff:01 10.0.1.1/24"},
		"lrp-b": {"patch", "peer=b-rtr", "00:00:00:00:ff:02 10.0.2.1/24"},
		"a-rtr": {"patch", "peer=lrp-a", "router"},
	} {
		got := e.sbctl("--bare", "--columns=type,options,mac", "find", "Port_Binding", "logical_port="+port)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Errorf("Port_Binding %s = %q, want %q in it", port, got, w)
			}
		}
	}
	flows := e.lflows("lr0")
	for _, w := range []string{
		`table=0 (lr_in_admission ), priority=50 , match=(eth.dst == 00:00:00:00:ff:01 && inport == "lrp-a"), action=(xreg0[0..47] = 00:00:00:00:ff:01; next;)`,
		`table=13(lr_in_ip_routing ), priority=74 , match=(ip4.dst == 10.0.2.0/24), action=(ip.ttl--; reg8[0..15] = 0; reg0 = ip4.dst; reg1 = 10.0.2.1; eth.src = 00:00:00:00:ff:02; outport = "lrp-b"; flags.loopback = 1; next;)`,
		`table=13(lr_in_ip_routing ), priority=49 , match=(reg7 == 0 && ip4.dst == 192.168.0.0/16), action=(ip.ttl--; reg8[0..15] = 0; reg0 = 10.0.2.254; reg1 = 10.0.2.1; eth.src = 00:00:00:00:ff:02; outport = "lrp-b"; flags.loopback = 1; next;)`,
		`table=17(lr_in_arp_resolve ), priority=100 , match=(outport == "lrp-b" && reg0 == 10.0.2.11), action=(eth.dst = 00:00:00:00:0b:01; next;)`,
		`table=6 (lr_out_delivery ), priority=100 , match=(outport == "lrp-b"), action=(output;)`,
	} {
		if !strings.Contains(flows, w) {
			t.Errorf("lflow-list lr0 lacks\n  %s\ngot:\n%s", w, flows)
		}
	}
	if sw := e.lflows("sw-a"); !strings.Contains(sw, `match=(eth.dst == 00:00:00:00:ff:01), action=(outport = "a-rtr"; output;)`) {
		t.Errorf("sw-a does not forward the router MAC to a-rtr:\n%s", sw)
	}

	// A second route with the same prefix makes an ECMP group.
	e.nbctl("--wait=sb", "--ecmp", "lr-route-add", "lr0", "192.168.0.0/16", "10.0.2.11")
	if f := e.lflows("lr0"); !strings.Contains(f, "reg8[16..31] = select(1, 2);") {
		t.Errorf("no ECMP select after a second route for the prefix:\n%s", f)
	}
	e.nbctl("--wait=sb", "lr-route-del", "lr0", "192.168.0.0/16")
	if f := e.lflows("lr0"); strings.Contains(f, "192.168.0.0/16") {
		t.Errorf("route flows left after lr-route-del:\n%s", f)
	}
	e.nbctl("--wait=sb", "lr-del", "lr0")
	if got := e.sbctl("--bare", "--columns=_uuid", "find", "Datapath_Binding", "external_ids:name=lr0"); strings.TrimSpace(got) != "" {
		t.Errorf("router datapath left after lr-del: %q", got)
	}
	if got := e.sbctl("--bare", "--columns=_uuid", "find", "Port_Binding", "logical_port=lrp-a"); strings.TrimSpace(got) != "" {
		t.Errorf("router port binding left after lr-del: %q", got)
	}
	if n := strings.Count(e.sbctl("lflow-list"), "lr_in_"); n != 0 {
		t.Errorf("%d router flows left after lr-del", n)
	}
}

// TestRouterOVNTrace: the real ovn-trace (OVN 23.03) follows a packet on
// govn's SB from a1 on sw-a through lr0 to b1 on sw-b (TTL decremented,
// router MAC as source), and the router answers ARP and ping itself.
func TestRouterOVNTrace(t *testing.T) {
	if _, err := exec.LookPath("ovn-trace"); err != nil {
		t.Skipf("ovn-trace not installed (apt install ovn-central): %v", err)
	}
	e := newEnv(t)
	e.start()
	routerTopology(e)
	trace := func(dp, flow string) string {
		out, stderr, err := dbservertest.RunOutput("ovn-trace", "--db="+e.sb.Endpoint(), dp, flow)
		if err != nil {
			t.Fatalf("ovn-trace %s: %v\n%s", flow, err, stderr)
		}
		t.Logf("ovn-trace %s:\n%s%s", flow, out, stderr)
		return out
	}
	l2 := `inport == "a1" && eth.src == 00:00:00:00:0a:01 && eth.dst == 00:00:00:00:ff:01`
	out := trace("sw-a", l2+` && ip4.src == 10.0.1.11 && ip4.dst == 10.0.2.11 && ip.ttl == 64 && udp`)
	for _, w := range []string{`ingress(dp="lr0", inport="lrp-a")`, "ip.ttl--;", "eth.src = 00:00:00:00:ff:02;",
		"eth.dst = 00:00:00:00:0b:01;", `ingress(dp="sw-b", inport="b-rtr")`, `output to "b1"`} {
		if !strings.Contains(out, w) {
			t.Errorf("routed a1 → b1 trace lacks %q", w)
		}
	}
	// The static route: to 192.168.1.1 via b-gw.
	out = trace("sw-a", l2+` && ip4.src == 10.0.1.11 && ip4.dst == 192.168.1.1 && ip.ttl == 64 && udp`)
	if !strings.Contains(out, "eth.dst = 00:00:00:00:0b:fe;") || !strings.Contains(out, `output to "b-gw"`) {
		t.Errorf("static route to 192.168.0.0/16 does not reach b-gw")
	}
	// Ping the router: echo reply back to a1.
	out = trace("sw-a", l2+` && ip4.src == 10.0.1.11 && ip4.dst == 10.0.1.1 && ip.ttl == 64 && icmp4.type == 8 && icmp4.code == 0`)
	if !strings.Contains(out, "icmp4.type = 0;") || !strings.Contains(out, `output to "a1"`) {
		t.Errorf("ping to the router's address not answered back to a1")
	}
	// TTL 1: ICMP time exceeded.
	out = trace("sw-a", l2+` && ip4.src == 10.0.1.11 && ip4.dst == 10.0.2.11 && ip.ttl == 1 && udp`)
	if !strings.Contains(out, "icmp4.type = 11;") || strings.Contains(out, `output to "b1"`) {
		t.Errorf("TTL 1 packet not answered with time exceeded")
	}
	// ARP for the router's address, sent to the router port itself.
	out = trace("lr0", `inport == "lrp-a" && eth.src == 00:00:00:00:0a:01 && eth.dst == ff:ff:ff:ff:ff:ff && arp.op == 1 && arp.sha == 00:00:00:00:0a:01 && arp.spa == 10.0.1.11 && arp.tpa == 10.0.1.1`)
	if !strings.Contains(out, "arp.op = 2;") || !strings.Contains(out, `output to "lrp-a"`) {
		t.Errorf("router does not answer ARP for its address")
	}
	// IPv6: a1 → b1 through the router (hop limit decremented), and an
	// unknown IPv6 next hop gets a neighbour solicitation.
	l2v6 := `inport == "a1" && eth.src == 00:00:00:00:0a:01 && eth.dst == 00:00:00:00:ff:01 && ip6.src == fd00:a::11`
	out = trace("sw-a", l2v6+` && ip6.dst == fd00:b::11 && ip.ttl == 64 && udp`)
	for _, w := range []string{"ip.ttl--;", "xxreg0 = ip6.dst;", "eth.src = 00:00:00:00:ff:02;", "eth.dst = 00:00:00:00:0b:01;", `output to "b1"`} {
		if !strings.Contains(out, w) {
			t.Errorf("routed IPv6 a1 → b1 trace lacks %q", w)
		}
	}
	out = trace("sw-a", l2v6+` && ip6.dst == fd00:b::99 && ip.ttl == 64 && udp`)
	if !strings.Contains(out, "nd_ns {") {
		t.Errorf("unknown IPv6 next hop not resolved with a neighbour solicitation")
	}
	out = trace("sw-a", l2v6+` && ip6.dst == fd00:a::1 && ip.ttl == 64 && icmp6.type == 128 && icmp6.code == 0`)
	if !strings.Contains(out, "icmp6.type = 129;") || !strings.Contains(out, `output to "a1"`) {
		t.Errorf("IPv6 ping to the router's address not answered back to a1")
	}

	// An unknown next hop on sw-b: ARP request instead of forwarding.
	out = trace("sw-a", l2+` && ip4.src == 10.0.1.11 && ip4.dst == 10.0.2.99 && ip.ttl == 64 && udp`)
	if !strings.Contains(out, "arp {") || !strings.Contains(out, "arp.tpa = reg0;") {
		t.Errorf("unknown next hop not resolved with an ARP request")
	}
}

// TestRouterRestart: a restarted northd reads its router rows back
// (logical-router datapath, patch ports, router flows) and keeps them:
// same tunnel keys, same Logical_Flow rows, nothing rewritten.
func TestRouterRestart(t *testing.T) {
	e := newEnv(t)
	e.start()
	routerTopology(e)
	keys := e.keys()
	flows := e.sbctl("--bare", "--columns=_uuid", "list", "Logical_Flow")
	lr := e.lflows("lr0")
	e.stop()
	e.start()
	e.nbctl("--wait=sb", "sync")
	if after := e.keys(); fmt.Sprint(after) != fmt.Sprint(keys) {
		t.Errorf("tunnel keys changed over a restart:\nbefore %v\nafter  %v", keys, after)
	}
	if after := e.sbctl("--bare", "--columns=_uuid", "list", "Logical_Flow"); !sameFields(after, flows) {
		t.Errorf("Logical_Flow rows were rewritten over a restart")
	}
	if after := e.lflows("lr0"); after != lr {
		t.Errorf("router flows changed over a restart:\n%s", lineDiffText(lr, after))
	}
}

func sameFields(a, b string) bool {
	fa, fb := strings.Fields(a), strings.Fields(b)
	sort.Strings(fa)
	sort.Strings(fb)
	return strings.Join(fa, " ") == strings.Join(fb, " ")
}

func lineDiffText(a, b string) string { return "before:\n" + a + "\nafter:\n" + b }
