package run

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"golang.org/x/sys/unix"

	"github.com/govn/govn/northd"
	"github.com/govn/govn/sbdb"
)

// inNetns runs f on a thread inside network namespace ns (/run/netns/ns):
// sockets f creates belong to that namespace.
func inNetns(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // the thread dies with the goroutine, never reused
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%v: %v %s", args, err, out)
	}
}

// loadNorthd computes northd's SB contents for nb and writes them into
// e's SB (replacing the SB_Global the server was created with).
func (e *env) loadNorthd(nb *northd.NB) {
	e.t.Helper()
	eng := northd.NewEngine(nil, nil)
	eng.Run(nb)
	st := northd.NewSBState()
	txn, err := st.Sync(eng, northd.SyncOptions{NbCfg: 1, SvcMonitorMAC: svcMAC})
	if err != nil {
		e.t.Fatal(err)
	}
	ops := append([]ovsdb.Operation{{Op: ovsdb.OperationDelete, Table: sbdb.SBGlobalTable, Where: []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionNotEqual, Value: ovsdb.UUID{GoUUID: noRow}}}}}, txn.Ops...)
	if _, err := e.sb.Transact(context.Background(), ops...); err != nil {
		e.t.Fatal(err)
	}
}

// addNS creates network namespace ns (removed at cleanup) with eth0, the
// peer of veth in e's OVS namespace, added to bridge (with iface-id, if
// set), and the given MAC, address and default gateway (if valid).
func (e *env) addNS(t *testing.T, ns, veth, bridge, ifaceID, mac, cidr, gw string) {
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run(t, "ip", "-n", e.ovs.Netns(), "link", "add", "name", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
	run(t, "ip", "-n", e.ovs.Netns(), "link", "set", veth, "up")
	run(t, "ip", "-n", ns, "link", "set", "eth0", "address", mac)
	run(t, "ip", "-n", ns, "addr", "add", cidr, "dev", "eth0")
	run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	if gw != "" {
		run(t, "ip", "-n", ns, "route", "add", "default", "via", gw)
	}
	run(t, "ip", "netns", "exec", ns, "ethtool", "-K", "eth0", "tx", "off")
	args := []string{"add-port", bridge, veth}
	if ifaceID != "" {
		args = append(args, "--", "set", "Interface", veth, "external_ids:iface-id="+ifaceID)
	}
	e.vsctl(args...)
}

// serveTCP answers every connection to port in ns with "name <peer IP>".
func serveTCP(t *testing.T, ns, name string, port int) {
	serveNet(t, ns, name, "tcp4", fmt.Sprintf(":%d", port))
}

// serveNet answers every connection to addr (network tcp4 or tcp6) in ns with
// "name <peer IP>".
func serveNet(t *testing.T, ns, name, network, addr string) {
	var l net.Listener
	if err := inNetns(ns, func() (err error) { l, err = net.Listen(network, addr); return err }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
			fmt.Fprintf(c, "%s %s\n", name, host)
			c.Close()
		}
	}()
}

// requestTCP connects from ns to addr and returns the server's line.
func requestTCP(ns, addr string) (string, error) { return requestNet(ns, "tcp4", addr) }

// requestNet connects from ns to addr over network (tcp4 or tcp6) and returns
// the server's line.
func requestNet(ns, network, addr string) (string, error) {
	var c net.Conn
	err := inNetns(ns, func() (err error) {
		c, err = net.DialTimeout(network, addr, 2*time.Second)
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// TestLBVIPRealPackets: northd's flows for a switch with load balancer
// 172.30.0.100:80 → pods 1 and 2 (port 8080) and a router as the pods'
// default gateway, on one chassis with three pods in network namespaces. TCP connections to the VIP from pod 3 reach both
// backends; from backend pod 1 they work too, including when pod 1 is
// picked (hairpin: the tables 83..85 this controller fills), where the
// server sees the VIP as the client.
func TestLBVIPRealPackets(t *testing.T) {
	if _, err := exec.LookPath("ethtool"); err != nil {
		t.Skip("ethtool not installed")
	}
	e := newEnv(t, "ch1", "172.16.0.1")
	const vip = "172.30.0.100"
	nb := northd.NewNB()
	nb.SetSvcMonitorMAC(svcMAC)
	sw := &northd.Switch{UUID: "00000000-0000-0000-0001-000000000001", Name: "sw",
		LoadBalancers: []string{"00000000-0000-0000-0003-000000000001"}}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("00000000-0000-0000-0002-%012d", i)
		nb.SetPort(&northd.SwitchPort{UUID: id, Name: fmt.Sprintf("p%d", i),
			Addresses: []string{fmt.Sprintf("0a:00:00:00:00:0%d 10.0.0.%d", i, i)}})
		sw.Ports = append(sw.Ports, id)
	}
	// The pods' default gateway: router lr (10.0.0.254) behind switch port
	// sw-lr. Packets to the VIP carry the router's MAC; the switch load
	// balances them before its L2 lookup.
	sw.Ports = append(sw.Ports, "00000000-0000-0000-0002-000000000009")
	nb.SetPort(&northd.SwitchPort{UUID: "00000000-0000-0000-0002-000000000009", Name: "sw-lr", Type: "router",
		Addresses: []string{"router"}, Options: map[string]string{"router-port": "lr-sw"}})
	nb.SetSwitch(sw)
	nb.SetRouterPort(&northd.RouterPort{UUID: "00000000-0000-0000-0004-000000000001", Name: "lr-sw", MAC: "0a:00:00:00:00:fe", Networks: []string{"10.0.0.254/24"}})
	nb.SetRouter(&northd.Router{UUID: "00000000-0000-0000-0005-000000000001", Name: "lr", Ports: []string{"00000000-0000-0000-0004-000000000001"}})
	nb.SetLoadBalancer(&northd.LoadBalancer{UUID: sw.LoadBalancers[0], Name: "lb1", Protocol: "tcp",
		Vips: map[string]string{vip + ":80": "10.0.0.1:8080,10.0.0.2:8080"}})
	e.loadNorthd(nb)
	var lbs []sbdb.LoadBalancer
	if err := e.sb.List(context.Background(), &lbs); err != nil || len(lbs) != 1 {
		t.Fatalf("SB Load_Balancer rows: %v %v", lbs, err)
	}

	e.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev", "fail_mode=secure")
	prefix := fmt.Sprintf("gvlb%d", os.Getpid()%100000)
	for i := 1; i <= 3; i++ {
		e.addNS(t, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("vp%d", i), "br-int", fmt.Sprintf("p%d", i),
			fmt.Sprintf("0a:00:00:00:00:0%d", i), fmt.Sprintf("10.0.0.%d/24", i), "10.0.0.254")
	}
	// Servers on the backends: answer "pN <peer IP>".
	for i := 1; i <= 2; i++ {
		serveTCP(t, fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("p%d", i), 8080)
	}
	startController(t, e, Options{Conditional: true})
	request := func(from int) (string, error) { return requestTCP(fmt.Sprintf("%s-%d", prefix, from), vip+":80") }
	// Wait for the flows: pod 3 reaches the VIP.
	eventually(t, "VIP reachable from p3", func() string {
		if _, err := request(3); err != nil {
			return err.Error()
		}
		return ""
	})
	seen := map[string]bool{}
	for n := 0; n < 40 && len(seen) < 2; n++ {
		got, err := request(3)
		if err != nil {
			t.Fatalf("p3 → VIP: %v", err)
		}
		if got != "p1 10.0.0.3" && got != "p2 10.0.0.3" {
			t.Fatalf("p3 → VIP answered %q, want a backend that saw 10.0.0.3", got)
		}
		seen[got] = true
	}
	if len(seen) != 2 {
		t.Fatalf("40 connections from p3 reached only %v", seen)
	}
	// From backend p1: every connection works; when p1 serves itself, the
	// hairpinned connection is SNATed to the VIP.
	hair := map[string]bool{}
	for n := 0; n < 40 && len(hair) < 2; n++ {
		got, err := request(1)
		if err != nil {
			t.Fatalf("p1 → VIP (attempt %d, seen %v): %v\n%s", n, hair, err, e.dumpFlows())
		}
		switch got {
		case "p1 " + vip, "p2 10.0.0.1":
			hair[got] = true
		default:
			t.Fatalf("p1 → VIP answered %q, want \"p1 %s\" (hairpin) or \"p2 10.0.0.1\"", got, vip)
		}
	}
	if !hair["p1 "+vip] {
		t.Fatalf("40 connections from p1 never hairpinned to p1: %v", hair)
	}
}
