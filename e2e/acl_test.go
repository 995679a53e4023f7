package e2e

import (
	"fmt"
	"testing"
)

// An ACL dropping tcp/23 from one pod blocks nc to port 23 but not to port
// 80 (and not port 23 from another pod); allow-related lets replies through
// while a new connection the other way is dropped.
func TestACL(t *testing.T) {
	o := startOVN(t, 2)
	ch1, ch2 := o.topo.Chassis[0], o.topo.Chassis[1]
	o.nbctl("ls-add", "ls1")
	a := o.addPod(ch1, "ls1", "a", 1)
	b := o.addPod(ch2, "ls1", "b", 2)
	c := o.addPod(ch2, "ls1", "c", 3)
	for _, l := range []struct {
		p    *pod
		port int
	}{{b, 23}, {b, 80}, {a, 80}} {
		// A server with a normal listen backlog: nc -l listens with a
		// backlog of 1, and the half-open connections the blocked phases
		// leave behind push the kernel into SYN cookies.
		if _, err := l.p.Serve("tcp", l.port); err != nil {
			t.Fatal(err)
		}
	}
	o.reach(a, b, 2)
	// Controls: before any ACL, the ports the scenario blocks are open.
	o.tcpOK(a, b, 23)
	o.tcpOK(b, a, 80)
	o.tcpOK(c, a, 80)

	t.Log("ACL: from-lport drop tcp/23 from a")
	o.nbctl("acl-add", "ls1", "from-lport", "1002", `inport == "lsp-a" && tcp.dst == 23`, "drop")
	o.tcpBlocked(a, b, 23)
	o.tcpOK(a, b, 80)
	o.tcpOK(c, b, 23) // only a's traffic is dropped
	o.reach(a, b, 2)  // and only tcp/23
	o.nbctl("acl-del", "ls1")
	o.tcpOK(a, b, 23)

	t.Log("ACL: to-lport drop everything to a")
	o.nbctl("acl-add", "ls1", "to-lport", "1000", `outport == "lsp-a" && ip4`, "drop")
	// Replies to a are dropped too: a cannot connect anywhere.
	o.tcpBlocked(a, b, 80)
	o.unreachable(a, b, 2)

	t.Log("ACL: + from-lport allow-related from a")
	o.nbctl("acl-add", "ls1", "from-lport", "1000", `inport == "lsp-a" && ip4`, "allow-related")
	// Connections a opens get their replies through (conntrack)...
	o.tcpOK(a, b, 80)
	o.reach(a, b, 2)
	// ...while new connections towards a stay dropped.
	o.tcpBlocked(b, a, 80)
	o.tcpBlocked(c, a, 80)
	o.unreachable(b, a, 2)
}

// Port security on a port drops frames with a spoofed source MAC; without
// port security the same frames are delivered (the control).
func TestPortSecurity(t *testing.T) {
	o := startOVN(t, 2)
	ch1, ch2 := o.topo.Chassis[0], o.topo.Chassis[1]
	o.nbctl("ls-add", "ls1")
	a := o.addPod(ch1, "ls1", "a", 1)
	b := o.addPod(ch2, "ls1", "b", 2)
	o.nbctl("lsp-set-port-security", a.LSP, a.MAC+" "+a.IP.Addr().String())
	o.reach(a, b, 2)

	// a spoofs its source MAC; a static neighbour entry for b lets it send
	// echo requests without ARP. Count what reaches b's kernel.
	spoofed := "00:00:00:00:00:99"
	for _, args := range [][]string{
		{"ip", "neigh", "replace", b.IP.Addr().String(), "lladdr", b.MAC, "dev", "eth0", "nud", "permanent"},
		{"ip", "link", "set", "eth0", "address", spoofed},
	} {
		if _, err := a.Exec(args...); err != nil {
			t.Fatal(err)
		}
	}
	sendSpoofed := func() int {
		t.Helper()
		before, err := icmpInEchos(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Ping(b.IP.Addr(), 3); err != nil {
			t.Fatal(err)
		}
		after, err := icmpInEchos(b)
		if err != nil {
			t.Fatal(err)
		}
		return after - before
	}
	if n := sendSpoofed(); n != 0 {
		t.Fatalf("with port security, %d echo requests from spoofed MAC %s reached b, want 0", n, spoofed)
	}
	// Control: without port security the same frames get through.
	o.nbctl("lsp-set-port-security", a.LSP)
	o.eventually(settle, "spoofed frames reach b without port security", func() error {
		if n := sendSpoofed(); n != 3 {
			return fmt.Errorf("%d of 3 echo requests from spoofed MAC %s reached b", n, spoofed)
		}
		return nil
	})
	// Back to the real MAC with port security: traffic flows again.
	o.nbctl("lsp-set-port-security", a.LSP, a.MAC+" "+a.IP.Addr().String())
	if _, err := a.Exec("ip", "link", "set", "eth0", "address", a.MAC); err != nil {
		t.Fatal(err)
	}
	o.reach(a, b, 2)
}
