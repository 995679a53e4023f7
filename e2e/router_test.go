package e2e

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/govn/govn/controller"
	"github.com/govn/govn/e2e/harness"
)

// addSubnetPod creates pod name on chassis c with MAC 00:00:00:00:<sub>:<n>,
// IP 10.0.<sub>.<n>/24 and default gateway 10.0.<sub>.1 (the router port),
// and adds its logical port to switch ls with addresses addrs ("": its MAC
// and IP).
func (o *ovn) addSubnetPod(c *harness.Chassis, ls, name string, sub, n int, addrs string) *pod {
	o.t.Helper()
	lsp := "lsp-" + name
	hp, err := c.AddPod(harness.PodSpec{Name: name, IfaceID: lsp, MAC: fmt.Sprintf("00:00:00:00:%02x:%02x", sub, n),
		IP:      netip.MustParsePrefix(fmt.Sprintf("10.0.%d.%d/24", sub, n)),
		Gateway: netip.MustParseAddr(fmt.Sprintf("10.0.%d.1", sub))})
	if err != nil {
		o.t.Fatal(err)
	}
	p := &pod{Pod: hp, LSP: lsp}
	if addrs == "" {
		addrs = p.MAC + " " + p.IP.Addr().String()
	}
	o.nbctl("lsp-add", ls, lsp, "--", "lsp-set-addresses", lsp, addrs)
	return p
}

// connectRouter adds router port lrp (MAC 00:00:00:00:ff:<sub>, 10.0.<sub>.1/24)
// to lr and the switch port of type router on ls that peers with it.
func (o *ovn) connectRouter(lr, ls string, sub int) {
	o.t.Helper()
	lrp, lsp := fmt.Sprintf("%s-%s", lr, ls), fmt.Sprintf("%s-%s", ls, lr)
	o.nbctl("lrp-add", lr, lrp, fmt.Sprintf("00:00:00:00:ff:%02x", sub), fmt.Sprintf("10.0.%d.1/24", sub),
		"--", "lsp-add", ls, lsp,
		"--", "lsp-set-type", lsp, "router",
		"--", "lsp-set-addresses", lsp, "router",
		"--", "lsp-set-options", lsp, "router-port="+lrp)
}

var pingTTL = regexp.MustCompile(`ttl=(\d+)`)

// pingTTLs pings dst count times from src and returns the TTLs of the
// replies.
func pingTTLs(src *pod, dst netip.Addr, count int) ([]int, string, error) {
	out, err := src.Exec("ping", "-n", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "1", dst.String())
	var ttls []int
	for _, m := range pingTTL.FindAllStringSubmatch(out, -1) {
		v, _ := strconv.Atoi(m[1])
		ttls = append(ttls, v)
	}
	return ttls, out, err
}

// Two switches (10.0.1.0/24, 10.0.2.0/24) joined by a distributed router;
// pods on different chassis reach each other through it (one hop: TTL 63),
// reach their gateway addresses, and deleting a router port cuts its subnet
// off.
func TestRouterTwoSubnets(t *testing.T) {
	o := startOVN(t, 2)
	ch1, ch2 := o.topo.Chassis[0], o.topo.Chassis[1]
	o.nbctl("ls-add", "ls1", "--", "ls-add", "ls2", "--", "lr-add", "lr0")
	o.connectRouter("lr0", "ls1", 1)
	o.connectRouter("lr0", "ls2", 2)
	a := o.addSubnetPod(ch1, "ls1", "a", 1, 10, "")
	b := o.addSubnetPod(ch2, "ls2", "b", 2, 20, "")
	a2 := o.addSubnetPod(ch2, "ls1", "a2", 1, 11, "")

	// Each pod answers... its router port first (ARP for the gateway, then
	// ICMP echo answered by the router pipeline).
	gw1, gw2 := netip.MustParseAddr("10.0.1.1"), netip.MustParseAddr("10.0.2.1")
	for _, c := range []struct {
		p  *pod
		gw netip.Addr
	}{{a, gw1}, {b, gw2}, {a2, gw1}} {
		if err := c.p.WaitReachable(c.gw, 20*time.Second); err != nil {
			t.Fatalf("%s -> router port %s: %v", c.p.Name, c.gw, err)
		}
	}
	// The other router port is reachable through the router too.
	if err := a.WaitReachable(gw2, 20*time.Second); err != nil {
		t.Fatalf("a -> far router port %s: %v", gw2, err)
	}

	// Across the router and Geneve, both directions.
	o.reach(a, b, 5)
	o.reach(b, a, 5)
	// Same switch across chassis is still plain L2.
	o.reach(a, a2, 3)
	// Routed once: the reply left b with TTL 64 and crossed one router.
	ttls, out, err := pingTTLs(a, b.IP.Addr(), 3)
	if err != nil || len(ttls) == 0 {
		t.Fatalf("a -> b ping: %v\n%s", err, out)
	}
	for _, v := range ttls {
		if v != 63 {
			t.Fatalf("a -> b reply ttl=%d, want 63 (one router hop)\n%s", v, out)
		}
	}
	// Same switch: not routed, TTL untouched.
	if ttls, out, err := pingTTLs(a, a2.IP.Addr(), 2); err != nil || len(ttls) == 0 || ttls[0] != 64 {
		t.Fatalf("a -> a2 (same switch) ttls %v, want 64: %v\n%s", ttls, err, out)
	}

	// A pod whose address the NB does not know ("unknown"): the router has
	// no static ARP entry for it, so the first packet makes it send an ARP
	// request (arp{} through pinctrl on ch1), u answers on ch2, the router
	// pipeline there learns the binding (put_arp through pinctrl on ch2 →
	// SB MAC_Binding), and the controllers turn the row into the
	// MAC-binding flow that get_arp finds from then on.
	u := o.addSubnetPod(ch2, "ls2", "u", 2, 30, "unknown")
	o.eventually(20*time.Second, "SB MAC_Binding for u learned by the router", func() error {
		a.Ping(u.IP.Addr(), 1) // each unanswered echo triggers an ARP request
		mbs, err := o.sbctlErr("--bare", "--columns=logical_port,ip,mac", "find", "MAC_Binding", "ip="+u.IP.Addr().String())
		if err != nil {
			return err
		}
		if !strings.Contains(mbs, u.MAC) || !strings.Contains(mbs, "lr0-ls2") {
			return fmt.Errorf("MAC_Binding for %s: %q, want mac %s on lr0-ls2", u.IP.Addr(), mbs, u.MAC)
		}
		return nil
	})
	o.reach(a, u, 5)
	if ttls, out, err := pingTTLs(a, u.IP.Addr(), 2); err != nil || len(ttls) == 0 || ttls[0] != 63 {
		t.Fatalf("a -> u ttls %v, want 63: %v\n%s", ttls, err, out)
	}
	// The learned binding is a flow on both chassis.
	for _, c := range []*harness.Chassis{ch1, ch2} {
		out, err := c.OVS.Ofctl("--no-stats", "dump-flows", "br-int", "table="+strconv.Itoa(int(controller.TableMACBinding)))
		if err != nil || !strings.Contains(out, u.MAC) {
			t.Fatalf("%s: no MAC-binding flow for %s in table %d: %v\n%s", c.Name, u.MAC, controller.TableMACBinding, err, out)
		}
	}

	// Removing ls2's router port cuts 10.0.2.0/24 off from ls1.
	o.nbctl("lrp-del", "lr0-ls2")
	o.unreachable(a, b, 3)
	o.eventually(settle, "b cannot reach its removed gateway", func() error {
		r, err := b.Ping(gw2, 2)
		if err != nil {
			return err
		}
		if r.Received != 0 {
			return fmt.Errorf("%d of %d answered", r.Received, r.Sent)
		}
		return nil
	})
	// ls1 keeps working.
	o.reach(a, a2, 3)
	if r, err := a.Ping(gw1, 2); err != nil || r.Received == 0 {
		t.Fatalf("a -> its gateway after deleting the other port: %+v %v", r, err)
	}
}

// A static route sends a prefix to a pod acting as its gateway; a packet
// whose TTL runs out in the router gets ICMP time exceeded from the router
// port (icmp4_error{} through pinctrl).
func TestRouterStaticRouteAndTTLExceeded(t *testing.T) {
	o := startOVN(t, 2)
	ch1, ch2 := o.topo.Chassis[0], o.topo.Chassis[1]
	o.nbctl("ls-add", "ls1", "--", "ls-add", "ls2", "--", "lr-add", "lr0")
	o.connectRouter("lr0", "ls1", 1)
	o.connectRouter("lr0", "ls2", 2)
	a := o.addSubnetPod(ch1, "ls1", "a", 1, 10, "")
	gw := o.addSubnetPod(ch2, "ls2", "gw", 2, 20, "")
	o.reach(a, gw, 2)

	// 192.168.9.0/24 lives behind gw (on its loopback).
	behind := netip.MustParseAddr("192.168.9.1")
	if _, err := gw.Exec("ip", "addr", "add", behind.String()+"/24", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	if err := a.WaitReachable(behind, 2*time.Second); err == nil {
		t.Fatalf("a reaches %s before the route exists", behind)
	}
	o.nbctl("lr-route-add", "lr0", "192.168.9.0/24", gw.IP.Addr().String())
	if err := a.WaitReachable(behind, 20*time.Second); err != nil {
		t.Fatalf("a -> %s via static route to %s: %v", behind, gw.IP.Addr(), err)
	}
	if r, err := a.Ping(behind, 5); err != nil || r.Loss() != 0 {
		t.Fatalf("a -> %s: %+v %v", behind, r, err)
	}
	o.nbctl("lr-route-del", "lr0", "192.168.9.0/24")
	o.eventually(settle, "route removed", func() error {
		if r, err := a.Ping(behind, 2); err != nil || r.Received != 0 {
			return fmt.Errorf("%+v %v", r, err)
		}
		return nil
	})

	// TTL 1 expires in the router: the answer comes from a's gateway.
	o.eventually(10*time.Second, "time exceeded from the router", func() error {
		out, _ := a.Exec("ping", "-n", "-c", "1", "-t", "1", "-W", "1", gw.IP.Addr().String())
		if !strings.Contains(out, "From 10.0.1.1") || !strings.Contains(strings.ToLower(out), "time to live exceeded") {
			return fmt.Errorf("ping -t 1: %q", out)
		}
		return nil
	})
	// traceroute (ICMP probes) shows the router hop, then the destination.
	o.eventually(15*time.Second, "traceroute shows the router hop", func() error {
		out, err := a.Exec("traceroute", "-n", "-I", "-q", "1", "-w", "1", "-m", "4", gw.IP.Addr().String())
		if err != nil {
			return fmt.Errorf("traceroute: %v\n%s", err, out)
		}
		hops := traceHops(out)
		if len(hops) != 2 || hops[0] != "10.0.1.1" || hops[1] != gw.IP.Addr().String() {
			return fmt.Errorf("hops %q, want [10.0.1.1 %s]:\n%s", hops, gw.IP.Addr(), out)
		}
		return nil
	})
}

// traceHops returns the address of each hop line of `traceroute -n -q 1`
// output ("*" for a hop that did not answer).
func traceHops(out string) []string {
	var hops []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		if _, err := strconv.Atoi(f[0]); err != nil {
			continue // the "traceroute to ..." header
		}
		hops = append(hops, f[1])
	}
	return hops
}
