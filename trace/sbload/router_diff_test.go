package sbload_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/govn/govn/trace"
)

// TestNorthdRouterDifferential builds two switches joined by a logical
// router (with a static route) with ovn-nbctl, lets govn's northd write the
// southbound database, and checks that govn trace and the real ovn-trace
// reach the same verdict for routed microflows: the same ports receive the
// packet (or a packet the router generates in reply), or both drop it.
func TestNorthdRouterDifferential(t *testing.T) {
	sb, nbctl := startNorthd(t)
	nbctl.run("--wait=sb", "lr-add", "lr0",
		"--", "lrp-add", "lr0", "lr0-a", "00:00:00:00:ff:01", "10.0.1.1/24",
		"--", "lrp-add", "lr0", "lr0-b", "00:00:00:00:ff:02", "10.0.2.1/24",
		"--", "ls-add", "sw-a", "--", "ls-add", "sw-b",
		"--", "lsp-add", "sw-a", "a-lr0", "--", "lsp-set-type", "a-lr0", "router",
		"--", "lsp-set-addresses", "a-lr0", "router", "--", "lsp-set-options", "a-lr0", "router-port=lr0-a",
		"--", "lsp-add", "sw-b", "b-lr0", "--", "lsp-set-type", "b-lr0", "router",
		"--", "lsp-set-addresses", "b-lr0", "router", "--", "lsp-set-options", "b-lr0", "router-port=lr0-b",
		"--", "lsp-add", "sw-a", "a1", "--", "lsp-set-addresses", "a1", "00:00:00:00:01:11 10.0.1.11",
		"--", "lsp-add", "sw-b", "b1", "--", "lsp-set-addresses", "b1", "00:00:00:00:02:11 10.0.2.11",
		"--", "lsp-add", "sw-b", "bgw", "--", "lsp-set-addresses", "bgw", "00:00:00:00:02:20 10.0.2.20",
		"--", "lr-route-add", "lr0", "192.168.9.0/24", "10.0.2.20")

	tr := loadTracer(t, sb.Endpoint(), "")
	const fromA1 = `inport == "a1" && eth.src == 00:00:00:00:01:11 && eth.dst == 00:00:00:00:ff:01 && ip4.src == 10.0.1.11 && `
	for _, c := range []struct {
		name, microflow string
		delivered       []string // ports receiving a packet; nil: dropped
	}{
		{"routed", fromA1 + `ip4.dst == 10.0.2.11 && ip.ttl == 64 && icmp4.type == 8`, []string{"b1"}},
		{"static_route", fromA1 + `ip4.dst == 192.168.9.5 && ip.ttl == 64 && icmp4.type == 8`, []string{"bgw"}},
		{"router_ping", fromA1 + `ip4.dst == 10.0.2.1 && ip.ttl == 64 && icmp4.type == 8 && icmp4.code == 0`, []string{"a1"}},
		{"ttl_exceeded", fromA1 + `ip4.dst == 10.0.2.11 && ip.ttl == 1 && icmp4.type == 8`, []string{"a1"}},
		{"no_route", fromA1 + `ip4.dst == 172.16.5.5 && ip.ttl == 64 && icmp4.type == 8`, nil},
		{"wrong_router_mac", `inport == "a1" && eth.src == 00:00:00:00:01:11 && eth.dst == 00:00:00:00:ff:99 && ip4.src == 10.0.1.11 && ip4.dst == 10.0.2.11 && ip.ttl == 64 && icmp4.type == 8`, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := tr.Run("sw-a", c.microflow, trace.Options{})
			if err != nil {
				t.Fatal(err)
			}
			var ports []string
			for _, o := range got.Outcomes {
				if o.Verdict == "output" {
					ports = append(ports, o.Port)
				}
			}
			slices.Sort(ports)
			minimal, err := exec.Command("ovn-trace", "--db="+sb.Endpoint(), "--minimal", "sw-a", c.microflow).Output()
			if err != nil {
				t.Fatalf("ovn-trace: %v\n%s", err, minimal)
			}
			theirs := delivered(string(minimal))
			if !slices.Equal(ports, c.delivered) || !slices.Equal(theirs, c.delivered) {
				t.Errorf("delivered: govn %v, ovn-trace %v, want %v\n--- govn\n%s--- ovn-trace\n%s",
					ports, theirs, c.delivered, got.String(trace.Minimal), minimal)
			}
			t.Logf("%s: %s", c.name, strings.Join(outcomeStrings(got), "; "))
		})
	}
}
