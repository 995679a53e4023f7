package e2e

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/govn/govn/e2e/harness"
)

// The external network of the NAT scenarios: 172.20.0.0/24 on physnet
// "physnet", its host at .1, the router's external port at .254 and a
// floating IP at .100. The host has no route to the pods' 10.0.1.0/24: only
// NAT lets them talk.
var (
	extHostIP   = netip.MustParsePrefix("172.20.0.1/24")
	extRouterIP = netip.MustParseAddr("172.20.0.254")
	floatingIP  = netip.MustParseAddr("172.20.0.100")
)

const (
	extRouterMAC = "00:00:00:00:ff:fe"
	podGWMAC     = "00:00:00:00:ff:01" // connectRouter's MAC for subnet 1
)

// natTopology is ls1 (10.0.1.0/24, pods a and f on ch2, b on ch1) behind a
// router "gw" whose external port gw-ext (172.20.0.254/24) is on switch
// "ext", which reaches the external host through the localnet port
// "ln-ext" (on ch1; with a distributed gateway port on ch2 too).
// gatewayRouter picks how the router is bound to ch1: options:chassis (a
// gateway router, every port l3gateway) or a distributed router with a
// gateway chassis on its external port (a chassisredirect port cr-gw-ext).
type natTopology struct {
	o       *ovn
	a, b, f *pod
	ext     *harness.External
}

func startNATTopology(t *testing.T, gatewayRouter bool) *natTopology {
	o := startOVN(t, 2)
	ch1, ch2 := o.topo.Chassis[0], o.topo.Chassis[1]
	// A gateway router's external network needs only its chassis; with a
	// distributed gateway port every chassis is on the physical network
	// (the usual deployment): only the gateway chassis may answer on it, and
	// nothing may loop between the tunnels and the localnet ports.
	attached := []*harness.Chassis{ch1}
	if !gatewayRouter {
		attached = append(attached, ch2)
	}
	ext, err := o.topo.AddExternal(harness.ExternalSpec{Name: "ext", IP: extHostIP, Physnet: "physnet",
		Chassis: attached})
	if err != nil {
		t.Fatal(err)
	}
	o.nbctl("ls-add", "ls1", "--", "ls-add", "ext", "--", "lr-add", "gw")
	if gatewayRouter {
		o.nbctl("set", "Logical_Router", "gw", "options:chassis="+ch1.Name)
	}
	o.connectRouter("gw", "ls1", 1)
	o.nbctl("lrp-add", "gw", "gw-ext", extRouterMAC, extRouterIP.String()+"/24",
		"--", "lsp-add", "ext", "ext-gw",
		"--", "lsp-set-type", "ext-gw", "router",
		"--", "lsp-set-addresses", "ext-gw", "router",
		"--", "lsp-set-options", "ext-gw", "router-port=gw-ext",
		"--", "lsp-add", "ext", "ln-ext",
		"--", "lsp-set-type", "ln-ext", "localnet",
		"--", "lsp-set-addresses", "ln-ext", "unknown",
		"--", "lsp-set-options", "ln-ext", "network_name=physnet")
	if !gatewayRouter {
		o.nbctl("lrp-set-gateway-chassis", "gw-ext", ch1.Name, "20")
	}
	n := &natTopology{o: o, ext: ext,
		a: o.addSubnetPod(ch2, "ls1", "a", 1, 10, ""),
		f: o.addSubnetPod(ch2, "ls1", "f", 1, 20, ""),
		b: o.addSubnetPod(ch1, "ls1", "b", 1, 30, ""),
	}
	if _, err := ext.Serve("tcp", 9000); err != nil {
		t.Fatal(err)
	}
	if _, err := ext.Serve("udp", 9053); err != nil {
		t.Fatal(err)
	}
	o.serve("tcp", 80, n.a, n.f)
	o.serve("udp", 53, n.f)
	return n
}

// TestNATDistributedGatewayPort runs testNAT through a distributed router whose
// external port has a gateway chassis (lrp-set-gateway-chassis): NAT happens
// on ch1, where cr-gw-ext lives.
func TestNATDistributedGatewayPort(t *testing.T) { testNAT(t, false) }

// testNAT checks an external host and pods behind a router bound to ch1 (see
// natTopology), with OVN's NAT rules — Docker's masquerade and port
// publishing:
//   - before any NAT, routing works (pods and the external host ping the
//     router's external address) but a pod's connection to the external
//     host gets no answer (the host has no route back);
//   - snat 172.20.0.254 ← 10.0.1.0/24: pods on both chassis reach the
//     external host, which sees 172.20.0.254;
//   - dnat_and_snat 172.20.0.100 ↔ f: the external host reaches f via the
//     floating IP (TCP and UDP; f sees the host's real address, the answer
//     comes back from the floating IP), and f's own connections out leave
//     as 172.20.0.100;
//   - a load balancer on the router (172.20.0.254:8080 → a:80, `docker run -p
//     8080:80`) lets the external host reach a;
//   - deleting the rules stops each of these;
//   - govnctl trace (--ct new) of the floating-IP packet and of a pod's
//     packet out names the DNAT and SNAT flows.
func testNAT(t *testing.T, gatewayRouter bool) {
	n := startNATTopology(t, gatewayRouter)
	o, a, b, f, ext := n.o, n.a, n.b, n.f, n.ext
	extIP := ext.IP.Addr()

	t.Log("routing without NAT")
	for _, p := range []*pod{a, b} {
		if err := p.WaitReachable(extRouterIP, 20*time.Second); err != nil {
			t.Fatalf("%s -> router external port: %v", p.Name, err)
		}
	}
	if err := ext.WaitReachable(extRouterIP, 20*time.Second); err != nil {
		t.Fatalf("external host -> router external port (ARP and ICMP through the localnet port): %v", err)
	}
	if r, err := a.Request("tcp", extIP, 9000, time.Second); err == nil {
		t.Fatalf("a -> external host answered (%s) without NAT: the host should have no route back", r)
	}

	t.Log("snat: pods reach the external host as 172.20.0.254")
	o.nbctl("lr-nat-add", "gw", "snat", extRouterIP.String(), "10.0.1.0/24")
	for _, p := range []*pod{a, b, f} {
		for _, proto := range []string{"tcp", "udp"} {
			port := map[string]int{"tcp": 9000, "udp": 9053}[proto]
			if r := o.answered(p, proto, extIP, port); r.From != ext.Name || r.Peer != extRouterIP {
				t.Fatalf("%s %s -> external host answered %q, want %q", proto, p.Name, r, ext.Name+" "+extRouterIP.String())
			}
		}
	}
	// The floating IP does not exist yet.
	if r, err := ext.Request("tcp", floatingIP, 80, time.Second); err == nil {
		t.Fatalf("external host -> %s answered (%s) before the dnat_and_snat rule", floatingIP, r)
	}

	t.Log("dnat_and_snat: the external host reaches f via its floating IP, f goes out as it")
	o.nbctl("lr-nat-add", "gw", "dnat_and_snat", floatingIP.String(), f.IP.Addr().String())
	for _, proto := range []string{"tcp", "udp"} {
		port := map[string]int{"tcp": 80, "udp": 53}[proto]
		if r := o.answered(ext, proto, floatingIP, port); r.From != f.Name || r.Peer != extIP {
			t.Fatalf("%s external host -> %s:%d answered %q, want %q", proto, floatingIP, port, r, f.Name+" "+extIP.String())
		}
	}
	// Several connections in a row, each answered (the reply is un-DNATed
	// back to the floating IP, or the host's TCP would reset it).
	if rs, err := requestN(ext, "tcp", floatingIP, 80, 10); err != nil {
		t.Fatal(err)
	} else if got := countFrom(rs); got[f.Name] != 10 {
		t.Fatalf("10 connections to the floating IP answered by %v", got)
	}
	o.eventually(settle, "f goes out as its floating IP", func() error {
		r, err := f.Request("tcp", extIP, 9000, 2*time.Second)
		if err != nil {
			return err
		}
		if r.Peer != floatingIP {
			return fmt.Errorf("external host saw f as %s, want %s", r.Peer, floatingIP)
		}
		return nil
	})
	// Others still use the router address.
	if r := o.answered(a, "tcp", extIP, 9000); r.Peer != extRouterIP {
		t.Fatalf("a -> external host seen as %s, want %s", r.Peer, extRouterIP)
	}

	if !o.reference {
		t.Log("govnctl trace names the DNAT and SNAT flows")
		in := fmt.Sprintf(`inport == "ln-ext" && eth.src == %s && eth.dst == %s && ip4.src == %s && ip4.dst == %s && tcp.dst == 80 && tcp.src == 40000`,
			ext.MAC, extRouterMAC, extIP, floatingIP)
		tr := o.trace("ext", in, "--ct", "new")
		if len(tr.visited("lr_in_dnat", "ct_dnat")) == 0 {
			t.Fatalf("trace of the floating-IP packet does not pass ct_dnat in lr_in_dnat:\n%s", tr.dump())
		}
		if d := tr.delivered(); !slices.Equal(d, []string{f.LSP}) {
			t.Fatalf("trace of the floating-IP packet delivered to %v, want [%s]:\n%s", d, f.LSP, tr.dump())
		}
		out := fmt.Sprintf(`inport == "%s" && eth.src == %s && eth.dst == %s && ip4.src == %s && ip4.dst == %s && tcp.dst == 9000 && tcp.src == 40000`,
			a.LSP, a.MAC, podGWMAC, a.IP.Addr(), extIP)
		tr = o.trace("ls1", out, "--ct", "new")
		// ct_snat(IP) on a gateway router, ct_snat_in_czone(IP) at a
		// distributed gateway port.
		snat := false
		for _, f := range tr.visited("lr_out_snat", "ct_snat") {
			snat = snat || strings.Contains(f.Actions, "("+extRouterIP.String()+")")
		}
		if !snat {
			t.Fatalf("trace of a's packet out does not pass ct_snat*(%s) in lr_out_snat:\n%s", extRouterIP, tr.dump())
		}
		if d := tr.delivered(); !slices.Equal(d, []string{"ln-ext"}) {
			t.Fatalf("trace of a's packet out delivered to %v, want [ln-ext]:\n%s", d, tr.dump())
		}
	}

	t.Log("a load balancer on the router publishes a:80 as 172.20.0.254:8080")
	o.nbctl("lb-add", "web", extRouterIP.String()+":8080", a.IP.Addr().String()+":80", "tcp",
		"--", "lr-lb-add", "gw", "web")
	if r := o.answered(ext, "tcp", extRouterIP, 8080); r.From != a.Name || r.Peer != extIP {
		t.Fatalf("external host -> %s:8080 answered %q, want %q", extRouterIP, r, a.Name+" "+extIP.String())
	}
	o.nbctl("lr-lb-del", "gw", "web")
	o.unanswered(ext, "tcp", extRouterIP, 8080)

	t.Log("deleting the rules")
	o.nbctl("lr-nat-del", "gw", "dnat_and_snat", floatingIP.String())
	o.unanswered(ext, "tcp", floatingIP, 80)
	// f falls back to the subnet's SNAT.
	o.eventually(settle, "f goes out as the router address again", func() error {
		r, err := f.Request("tcp", extIP, 9000, 2*time.Second)
		if err != nil {
			return err
		}
		if r.Peer != extRouterIP {
			return fmt.Errorf("external host saw f as %s, want %s", r.Peer, extRouterIP)
		}
		return nil
	})
	o.nbctl("lr-nat-del", "gw", "snat", "10.0.1.0/24")
	o.unanswered(a, "tcp", extIP, 9000)
	o.unanswered(b, "tcp", extIP, 9000)
	// Routing itself is untouched.
	if r, err := a.Ping(extRouterIP, 2); err != nil || r.Received == 0 {
		t.Fatalf("a -> router external port after deleting NAT: %+v %v", r, err)
	}
}

// TestNATGatewayRouter runs testNAT through a gateway router (options:chassis
// = ch1): pods on ch2 reach it through the Geneve tunnel, and its replies go
// back through the same tunnel port.
func TestNATGatewayRouter(t *testing.T) { testNAT(t, true) }
