package harness

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// An external network attached to two chassis: each chassis' provider
// bridge is a plain L2 switch joining the external host, the chassis' bridge
// mappings name it, and hosts on it (here: an internal port of br-ex in each
// chassis namespace, standing in for what OVN would attach) reach the
// external host and each other. Serve/Request carry TCP and UDP answers with
// the server's name and the peer it saw; a closed port is refused at once.
func TestExternalNetworkAndServe(t *testing.T) {
	topo := Start(t, Options{Chassis: 2})
	ch1, ch2 := topo.Chassis[0], topo.Chassis[1]
	ext, err := topo.AddExternal(ExternalSpec{Name: "ext", IP: netip.MustParsePrefix("172.20.0.1/24"),
		Physnet: "physnet", Chassis: []*Chassis{ch1, ch2}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := topo.AddExternal(ExternalSpec{Name: "ext2", IP: netip.MustParsePrefix("172.21.0.1/24"),
		Physnet: "physnet", Chassis: []*Chassis{ch1}}); err == nil || !strings.Contains(err.Error(), "already maps") {
		t.Fatalf("second external network on the same physnet: %v, want an 'already maps' error", err)
	}
	for _, c := range []*Chassis{ch1, ch2} {
		m, err := c.bridgeMappings()
		if err != nil || len(m) != 1 || m[0] != "physnet:br-ex" {
			t.Fatalf("%s ovn-bridge-mappings %q (%v), want [physnet:br-ex]", c.Name, m, err)
		}
	}
	// A host on br-ex in each chassis namespace.
	hostIP := map[*Chassis]netip.Addr{ch1: netip.MustParseAddr("172.20.0.11"), ch2: netip.MustParseAddr("172.20.0.12")}
	for c, ip := range hostIP {
		if _, err := c.OVS.Vsctl("add-port", "br-ex", "exhost", "--", "set", "Interface", "exhost", "type=internal"); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"ip", "addr", "add", ip.String() + "/24", "dev", "exhost"},
			{"ip", "link", "set", "exhost", "mtu", "1400", "up"},
		} {
			if _, err := c.Exec(args...); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ext.WaitReachable(hostIP[ch1], 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := ext.WaitReachable(hostIP[ch2], 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if r, err := ext.Ping(hostIP[ch2], 3); err != nil || r.Loss() != 0 {
		t.Fatalf("ext -> ch2 host: %+v %v", r, err)
	}
	// ch1's host reaches ch2's through the external segment.
	if r, err := ping(ch1.Netns, "ch1", hostIP[ch2], 3, 200*time.Millisecond); err != nil || r.Loss() != 0 {
		t.Fatalf("ch1 host -> ch2 host over the external network: %+v %v", r, err)
	}

	tcp, err := ext.Serve("tcp", 8080)
	if err != nil {
		t.Fatal(err)
	}
	udp, err := ext.Serve("udp", 5353)
	if err != nil {
		t.Fatal(err)
	}
	for _, proto := range []string{"tcp", "udp"} {
		port := map[string]int{"tcp": 8080, "udp": 5353}[proto]
		r, err := request(ch2.Netns, "ch2", proto, ext.IP.Addr(), port, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if r.From != "ext" || r.Peer != hostIP[ch2] {
			t.Fatalf("%s reply %q, want \"ext %s\"", proto, r, hostIP[ch2])
		}
	}
	for _, s := range []*Server{tcp, udp} {
		cs := s.Conns()
		if len(cs) != 1 || cs[0].Peer.Addr() != hostIP[ch2] || cs[0].Local != netip.AddrPortFrom(ext.IP.Addr(), uint16(s.Port)) {
			t.Fatalf("%s server saw %+v, want one connection from %s", s.Proto, cs, hostIP[ch2])
		}
	}
	// Nothing listens on 8081: refused (RST), quickly.
	start := time.Now()
	_, err = request(ch1.Netns, "ch1", "tcp", ext.IP.Addr(), 8081, 5*time.Second)
	if !errors.Is(err, ErrRefused) || time.Since(start) > 2*time.Second {
		t.Fatalf("tcp to a closed port: %v after %v, want ErrRefused at once", err, time.Since(start))
	}
	// No host at .99: a timeout, not a refusal.
	_, err = request(ch1.Netns, "ch1", "tcp", netip.MustParseAddr("172.20.0.99"), 8080, time.Second)
	if err == nil || errors.Is(err, ErrRefused) {
		t.Fatalf("tcp to an absent host: %v, want a timeout", err)
	}
	if err := tcp.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := request(ch2.Netns, "ch2", "tcp", ext.IP.Addr(), 8080, 2*time.Second); !errors.Is(err, ErrRefused) {
		t.Fatalf("after Close: %v, want refused", err)
	}
}
