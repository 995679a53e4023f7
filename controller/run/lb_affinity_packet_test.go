package run

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/govn/govn/controller"
	"github.com/govn/govn/northd"
)

// TestLBAffinityRealPackets: northd's session-affinity flows and this
// controller's table 86 (flows learned by commit_lb_aff), with real TCP.
// One switch has two load balancers over the same two backends (pods 1
// and 2, port 8080): 172.30.0.100:80 without affinity and 172.30.0.101:80
// with options:affinity_timeout=60, plus 172.30.0.102:80 with a 1-second
// timeout. Connections from one client (pod 3) to the plain VIP reach
// both backends; pod 3's and pod 4's connections to the affinity VIP each
// reach the backend of their own session (the flow learned in table 86,
// idle_timeout 60); and the learned flow of the 1-second VIP idles out.
func TestLBAffinityRealPackets(t *testing.T) {
	if _, err := exec.LookPath("ethtool"); err != nil {
		t.Skip("ethtool not installed")
	}
	e := newEnv(t, "ch1", "172.16.0.1")
	const plain, sticky, short, sticky6 = "172.30.0.100", "172.30.0.101", "172.30.0.102", "fd01::101"
	nb := northd.NewNB()
	nb.SetSvcMonitorMAC(svcMAC)
	lbIDs := []string{"00000000-0000-0000-0003-000000000001", "00000000-0000-0000-0003-000000000002", "00000000-0000-0000-0003-000000000003"}
	sw := &northd.Switch{UUID: "00000000-0000-0000-0001-000000000001", Name: "sw", LoadBalancers: lbIDs}
	for i := 1; i <= 4; i++ {
		id := fmt.Sprintf("00000000-0000-0000-0002-%012d", i)
		nb.SetPort(&northd.SwitchPort{UUID: id, Name: fmt.Sprintf("p%d", i),
			Addresses: []string{fmt.Sprintf("0a:00:00:00:00:0%d 10.0.0.%d fd00::%d", i, i, i)}})
		sw.Ports = append(sw.Ports, id)
	}
	sw.Ports = append(sw.Ports, "00000000-0000-0000-0002-000000000009")
	nb.SetPort(&northd.SwitchPort{UUID: "00000000-0000-0000-0002-000000000009", Name: "sw-lr", Type: "router",
		Addresses: []string{"router"}, Options: map[string]string{"router-port": "lr-sw"}})
	nb.SetSwitch(sw)
	nb.SetRouterPort(&northd.RouterPort{UUID: "00000000-0000-0000-0004-000000000001", Name: "lr-sw", MAC: "0a:00:00:00:00:fe", Networks: []string{"10.0.0.254/24", "fd00::fe/64"}})
	nb.SetRouter(&northd.Router{UUID: "00000000-0000-0000-0005-000000000001", Name: "lr", Ports: []string{"00000000-0000-0000-0004-000000000001"}})
	backends := "10.0.0.1:8080,10.0.0.2:8080"
	nb.SetLoadBalancer(&northd.LoadBalancer{UUID: lbIDs[0], Name: "plain", Protocol: "tcp", Vips: map[string]string{plain + ":80": backends}})
	nb.SetLoadBalancer(&northd.LoadBalancer{UUID: lbIDs[1], Name: "sticky", Protocol: "tcp",
		Vips:    map[string]string{sticky + ":80": backends, "[" + sticky6 + "]:80": "[fd00::1]:8080,[fd00::2]:8080"},
		Options: map[string]string{"affinity_timeout": "60"}})
	nb.SetLoadBalancer(&northd.LoadBalancer{UUID: lbIDs[2], Name: "short", Protocol: "tcp", Vips: map[string]string{short + ":80": backends},
		Options: map[string]string{"affinity_timeout": "1"}})
	e.loadNorthd(nb)

	e.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev", "fail_mode=secure")
	prefix := fmt.Sprintf("gvaf%d", os.Getpid()%100000)
	for i := 1; i <= 4; i++ {
		e.addNS(t, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("va%d", i), "br-int", fmt.Sprintf("p%d", i),
			fmt.Sprintf("0a:00:00:00:00:0%d", i), fmt.Sprintf("10.0.0.%d/24", i), "10.0.0.254")
		ns := fmt.Sprintf("%s-%d", prefix, i)
		run(t, "ip", "-n", ns, "addr", "add", fmt.Sprintf("fd00::%d/64", i), "dev", "eth0", "nodad")
		run(t, "ip", "-n", ns, "-6", "route", "add", "default", "via", "fd00::fe")
	}
	for i := 1; i <= 2; i++ {
		serveTCP(t, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("p%d", i), 8080)
		serveTCP6(t, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("p%d", i), 8080)
	}
	startController(t, e, Options{Conditional: true})
	request := func(from int, vip string) (string, error) {
		return requestTCP(fmt.Sprintf("%s-%d", prefix, from), vip+":80")
	}
	eventually(t, "VIPs reachable from p3", func() string {
		for _, vip := range []string{plain, sticky} {
			if _, err := request(3, vip); err != nil {
				return vip + ": " + err.Error()
			}
		}
		return ""
	})
	table := func() string {
		out, err := e.ovs.Ofctl("-O", "OpenFlow15", "--no-stats", "dump-flows", "br-int", fmt.Sprintf("table=%d", controller.TableLBAffinity))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}

	// Without affinity, one client's connections spread.
	seen := map[string]bool{}
	for n := 0; n < 40 && len(seen) < 2; n++ {
		got, err := request(3, plain)
		if err != nil {
			t.Fatalf("p3 → %s: %v", plain, err)
		}
		seen[got] = true
	}
	if len(seen) != 2 {
		t.Fatalf("40 connections from p3 to the plain VIP reached only %v", seen)
	}

	// With affinity, a client's connections all go to the backend its
	// session (the flow learned in table 86) names. OVS adds a learned flow
	// while handling the packet that learns it, but packets of other
	// connections already on the way may still use datapath cache entries
	// computed without it until the revalidators catch up (a few ms; more
	// on a loaded machine) — and such a connection is balanced normally
	// and learned again. So: start the session, wait until a connection
	// follows it, then every one must.
	learned := func(client string) string {
		for _, l := range strings.Split(table(), "\n") {
			if strings.Contains(l, "nw_src="+client+",nw_dst="+sticky+",tp_dst=80") {
				for i := 1; i <= 2; i++ {
					if strings.Contains(l, fmt.Sprintf("set_field:0xa00000%d->reg4,set_field:0x1f90/0xffff->reg8", i)) &&
						strings.Contains(l, "idle_timeout=60") {
						return fmt.Sprintf("p%d", i)
					}
				}
				t.Fatalf("session of %s has an unexpected form: %s", client, l)
			}
		}
		return ""
	}
	check := func(from int) string {
		client := fmt.Sprintf("10.0.0.%d", from)
		connect := func() string {
			got, err := request(from, sticky)
			if err != nil {
				t.Fatalf("p%d → %s: %v", from, sticky, err)
			}
			if !strings.HasSuffix(got, " "+client) {
				t.Fatalf("p%d → %s answered %q: the backend should see %s", from, sticky, got, client)
			}
			return strings.Fields(got)[0]
		}
		connect()
		eventually(t, fmt.Sprintf("p%d's connections follow its session", from), func() string {
			be := learned(client)
			if be == "" {
				return "no session learned for " + client + ":\n" + table()
			}
			if got := connect(); got != be {
				return fmt.Sprintf("reached %s, session says %s", got, be)
			}
			return ""
		})
		be := learned(client)
		for n := 0; n < 30; n++ {
			if got := connect(); got != be {
				t.Fatalf("p%d → %s: connection %d reached %s, its session says %s (table %d:\n%s)",
					from, sticky, n+1, got, be, controller.TableLBAffinity, table())
			}
		}
		return be
	}
	check(3)
	check(4)

	// IPv6: the session's backend is in xxreg1 (where OVN 23.03's switch
	// flows look in xxreg0 and never hit; northd/README).
	eventually(t, "IPv6 VIP reachable from p3", func() string {
		if _, err := requestTCP6(fmt.Sprintf("%s-3", prefix), "["+sticky6+"]:80"); err != nil {
			return err.Error()
		}
		return ""
	})
	learned6 := func() string {
		for _, l := range strings.Split(table(), "\n") {
			if strings.Contains(l, "ipv6_src=fd00::3,ipv6_dst="+sticky6+",tp_dst=80") {
				for i := 1; i <= 2; i++ {
					if strings.Contains(l, fmt.Sprintf("set_field:0xfd00000000000000000000000000000%d->xxreg1", i)) {
						return fmt.Sprintf("p%d", i)
					}
				}
				t.Fatalf("IPv6 session has an unexpected form: %s", l)
			}
		}
		return ""
	}
	connect6 := func() string {
		got, err := requestTCP6(fmt.Sprintf("%s-3", prefix), "["+sticky6+"]:80")
		if err != nil {
			t.Fatalf("p3 → [%s]:80: %v", sticky6, err)
		}
		if !strings.HasSuffix(got, " fd00::3") {
			t.Fatalf("p3 → [%s]:80 answered %q: the backend should see fd00::3", sticky6, got)
		}
		return strings.Fields(got)[0]
	}
	eventually(t, "p3's IPv6 connections follow its session", func() string {
		be := learned6()
		if be == "" {
			return "no IPv6 session learned:\n" + table()
		}
		if got := connect6(); got != be {
			return fmt.Sprintf("reached %s, session says %s", got, be)
		}
		return ""
	})
	be6 := learned6()
	for n := 0; n < 30; n++ {
		if got := connect6(); got != be6 {
			t.Fatalf("p3 → [%s]:80: connection %d reached %s, its session says %s (table %d:\n%s)",
				sticky6, n+1, got, be6, controller.TableLBAffinity, table())
		}
	}

	// A 1-second session idles out.
	if _, err := request(3, short); err != nil {
		t.Fatalf("p3 → %s: %v", short, err)
	}
	if !strings.Contains(table(), "nw_dst="+short) {
		t.Fatalf("no learned session for %s:\n%s", short, table())
	}
	deadline := time.Now().Add(15 * time.Second)
	for strings.Contains(table(), "nw_dst="+short) {
		if time.Now().After(deadline) {
			t.Fatalf("the 1-second session of %s never idled out:\n%s", short, table())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(table(), "nw_dst="+sticky) {
		t.Fatalf("the 60-second sessions went too:\n%s", table())
	}
}

// serveTCP6 answers every IPv6 connection to port in ns with "name <peer IP>".
func serveTCP6(t *testing.T, ns, name string, port int) {
	serveNet(t, ns, name, "tcp6", fmt.Sprintf("[::]:%d", port))
}

// requestTCP6 connects from ns to the IPv6 addr and returns the server's line.
func requestTCP6(ns, addr string) (string, error) { return requestNet(ns, "tcp6", addr) }
