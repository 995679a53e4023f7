package run

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/northd"
	"github.com/govn/govn/sbdb"
)

// TestGatewayRouterRealPackets: northd's flows for a gateway router bound to
// this chassis (options:chassis) between switch sw (pod p1, 10.0.0.1) and
// switch ext (pod p2, 10.0.0.2, too), whose localnet port reaches an "external" namespace through
// ovn-bridge-mappings physnet:br-ex. The router SNATs 10.0.0.0/24 to its
// own address 172.16.100.1 and maps floating IP 172.16.100.50 to p1
// (dnat_and_snat). Real TCP both ways: the external server sees the SNAT
// address; p1's server, reached at the floating IP, sees the external host.
func TestGatewayRouterRealPackets(t *testing.T) {
	if _, err := exec.LookPath("ethtool"); err != nil {
		t.Skip("ethtool not installed")
	}
	e := newEnv(t, "ch1", "172.16.0.1")
	nb := northd.NewNB()
	nb.SetSvcMonitorMAC(svcMAC)
	id := func(kind, n int) string { return fmt.Sprintf("00000000-0000-0000-%04d-%012d", kind, n) }
	nb.SetPort(&northd.SwitchPort{UUID: id(2, 1), Name: "p1", Addresses: []string{"0a:00:00:00:00:01 10.0.0.1"}})
	nb.SetPort(&northd.SwitchPort{UUID: id(2, 2), Name: "sw-gw", Type: "router", Addresses: []string{"router"},
		Options: map[string]string{"router-port": "gw-sw"}})
	nb.SetPort(&northd.SwitchPort{UUID: id(2, 5), Name: "p2", Addresses: []string{"0a:00:00:00:00:02 10.0.0.2"}})
	nb.SetSwitch(&northd.Switch{UUID: id(1, 1), Name: "sw", Ports: []string{id(2, 1), id(2, 2), id(2, 5)}})
	nb.SetPort(&northd.SwitchPort{UUID: id(2, 3), Name: "ext-gw", Type: "router", Addresses: []string{"router"},
		Options: map[string]string{"router-port": "gw-ext"}})
	nb.SetPort(&northd.SwitchPort{UUID: id(2, 4), Name: "ln", Type: "localnet", Addresses: []string{"unknown"},
		Options: map[string]string{"network_name": "physnet"}})
	nb.SetSwitch(&northd.Switch{UUID: id(1, 2), Name: "ext", Ports: []string{id(2, 3), id(2, 4)}})
	nb.SetRouterPort(&northd.RouterPort{UUID: id(4, 1), Name: "gw-sw", MAC: "0a:00:00:00:00:fe", Networks: []string{"10.0.0.254/24"}})
	nb.SetRouterPort(&northd.RouterPort{UUID: id(4, 2), Name: "gw-ext", MAC: "0a:00:00:00:01:fe", Networks: []string{"172.16.100.1/24"}})
	nb.SetNAT(&northd.NAT{UUID: id(6, 1), Type: "snat", ExternalIP: "172.16.100.1", LogicalIP: "10.0.0.0/24"})
	nb.SetNAT(&northd.NAT{UUID: id(6, 2), Type: "dnat_and_snat", ExternalIP: "172.16.100.50", LogicalIP: "10.0.0.1"})
	nb.SetRouter(&northd.Router{UUID: id(5, 1), Name: "gw", Ports: []string{id(4, 1), id(4, 2)},
		NAT: []string{id(6, 1), id(6, 2)}, Options: map[string]string{"chassis": "ch1"}})
	e.loadNorthd(nb)

	e.vsctl("set", "Open_vSwitch", ".", "external_ids:ovn-bridge-mappings=physnet:br-ex")
	e.vsctl("add-br", "br-ex", "--", "set", "Bridge", "br-ex", "datapath_type=netdev")
	e.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev", "fail_mode=secure")
	// br-ex is a plain L2 switch for the external host.
	if out, err := e.ovs.Ofctl("add-flow", "br-ex", "priority=0,actions=NORMAL"); err != nil {
		t.Fatalf("br-ex NORMAL: %v %s", err, out)
	}
	prefix := fmt.Sprintf("gvgw%d", os.Getpid()%100000)
	pod, pod2, ext := prefix+"-p1", prefix+"-p2", prefix+"-ex"
	e.addNS(t, pod, "vp1", "br-int", "p1", "0a:00:00:00:00:01", "10.0.0.1/24", "10.0.0.254")
	e.addNS(t, pod2, "vp2", "br-int", "p2", "0a:00:00:00:00:02", "10.0.0.2/24", "10.0.0.254")
	e.addNS(t, ext, "vex", "br-ex", "", "0a:00:00:00:02:0a", "172.16.100.10/24", "")
	serveTCP(t, ext, "ext", 8080)
	serveTCP(t, pod, "p1", 8080)
	startController(t, e, Options{Conditional: true})

	// The localnet patch pair exists; the router ports are claimed.
	eventually(t, "l3gateway claims", func() string {
		for _, n := range []string{"gw-sw", "sw-gw", "gw-ext", "ext-gw"} {
			if p := e.port(n); p == nil || p.Type != "l3gateway" || e.chassisName(p.Chassis) != "ch1" {
				return fmt.Sprintf("port %s = %+v", n, p)
			}
		}
		return ""
	})
	var got string
	eventually(t, "p1 → external host (SNAT)", func() string {
		var err error
		if got, err = requestTCP(pod, "172.16.100.10:8080"); err != nil {
			return err.Error()
		}
		return ""
	})
	// p1 has a floating IP: dnat_and_snat translates its source to it.
	if got != "ext 172.16.100.50" {
		t.Errorf("external server saw %q, want \"ext 172.16.100.50\" (p1's floating IP)", got)
	}
	// p2 has none: the router's SNAT to its own address (masquerade).
	eventually(t, "p2 → external host (SNAT)", func() string {
		var err error
		if got, err = requestTCP(pod2, "172.16.100.10:8080"); err != nil {
			return err.Error()
		}
		return ""
	})
	if got != "ext 172.16.100.1" {
		t.Errorf("external server saw %q from p2, want \"ext 172.16.100.1\" (the router's SNAT)", got)
	}
	eventually(t, "external host → floating IP (DNAT)", func() string {
		var err error
		if got, err = requestTCP(ext, "172.16.100.50:8080"); err != nil {
			return err.Error()
		}
		return ""
	})
	if got != "p1 172.16.100.10" {
		t.Errorf("p1 saw %q, want \"p1 172.16.100.10\"", got)
	}
	if out, _ := e.ovs.Vsctl("show"); !strings.Contains(out, "patch-br-int-to-ln") {
		t.Errorf("no localnet patch port:\n%s", out)
	}
}

// TestDistributedGatewayRealPackets: the same topology with a distributed
// router whose port to ext is a distributed gateway port (Gateway_Chassis
// ch1): its chassisredirect port is active on this chassis, so output to it
// continues as the gateway port (and the localnet). SNAT and a floating IP
// out, DNAT in, real TCP.
func TestDistributedGatewayRealPackets(t *testing.T) {
	if _, err := exec.LookPath("ethtool"); err != nil {
		t.Skip("ethtool not installed")
	}
	e := newEnv(t, "ch1", "172.16.0.1")
	nb := northd.NewNB()
	nb.SetSvcMonitorMAC(svcMAC)
	id := func(kind, n int) string { return fmt.Sprintf("00000000-0000-0000-%04d-%012d", kind, n) }
	nb.SetPort(&northd.SwitchPort{UUID: id(2, 1), Name: "p1", Addresses: []string{"0a:00:00:00:00:01 10.0.0.1"}})
	nb.SetPort(&northd.SwitchPort{UUID: id(2, 5), Name: "p2", Addresses: []string{"0a:00:00:00:00:02 10.0.0.2"}})
	nb.SetPort(&northd.SwitchPort{UUID: id(2, 2), Name: "sw-lr", Type: "router", Addresses: []string{"router"},
		Options: map[string]string{"router-port": "lr-sw"}})
	nb.SetSwitch(&northd.Switch{UUID: id(1, 1), Name: "sw", Ports: []string{id(2, 1), id(2, 2), id(2, 5)}})
	nb.SetPort(&northd.SwitchPort{UUID: id(2, 3), Name: "ext-lr", Type: "router", Addresses: []string{"router"},
		Options: map[string]string{"router-port": "lr-ext"}})
	nb.SetPort(&northd.SwitchPort{UUID: id(2, 4), Name: "ln", Type: "localnet", Addresses: []string{"unknown"},
		Options: map[string]string{"network_name": "physnet"}})
	nb.SetSwitch(&northd.Switch{UUID: id(1, 2), Name: "ext", Ports: []string{id(2, 3), id(2, 4)}})
	nb.SetGatewayChassis(&northd.GatewayChassis{UUID: id(7, 1), Name: "lr-ext-ch1", ChassisName: "ch1", Priority: 10})
	nb.SetRouterPort(&northd.RouterPort{UUID: id(4, 1), Name: "lr-sw", MAC: "0a:00:00:00:00:fe", Networks: []string{"10.0.0.254/24"}})
	nb.SetRouterPort(&northd.RouterPort{UUID: id(4, 2), Name: "lr-ext", MAC: "0a:00:00:00:01:fe", Networks: []string{"172.16.100.1/24"},
		GatewayChassis: []string{id(7, 1)}})
	nb.SetNAT(&northd.NAT{UUID: id(6, 1), Type: "snat", ExternalIP: "172.16.100.1", LogicalIP: "10.0.0.0/24"})
	nb.SetNAT(&northd.NAT{UUID: id(6, 2), Type: "dnat_and_snat", ExternalIP: "172.16.100.50", LogicalIP: "10.0.0.1"})
	nb.SetRouter(&northd.Router{UUID: id(5, 1), Name: "lr", Ports: []string{id(4, 1), id(4, 2)}, NAT: []string{id(6, 1), id(6, 2)}})
	e.loadNorthd(nb)

	e.vsctl("set", "Open_vSwitch", ".", "external_ids:ovn-bridge-mappings=physnet:br-ex")
	e.vsctl("add-br", "br-ex", "--", "set", "Bridge", "br-ex", "datapath_type=netdev")
	e.vsctl("add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev", "fail_mode=secure")
	if out, err := e.ovs.Ofctl("add-flow", "br-ex", "priority=0,actions=NORMAL"); err != nil {
		t.Fatalf("br-ex NORMAL: %v %s", err, out)
	}
	prefix := fmt.Sprintf("gvdg%d", os.Getpid()%100000)
	pod, pod2, ext := prefix+"-p1", prefix+"-p2", prefix+"-ex"
	e.addNS(t, pod, "vp1", "br-int", "p1", "0a:00:00:00:00:01", "10.0.0.1/24", "10.0.0.254")
	e.addNS(t, pod2, "vp2", "br-int", "p2", "0a:00:00:00:00:02", "10.0.0.2/24", "10.0.0.254")
	e.addNS(t, ext, "vex", "br-ex", "", "0a:00:00:00:02:0a", "172.16.100.10/24", "")
	serveTCP(t, ext, "ext", 8080)
	serveTCP(t, pod, "p1", 8080)
	startController(t, e, Options{Conditional: true})

	// northd resolves HA_Chassis.chassis when the chassis registers (it ran
	// before ch1 existed here): do what its next run does.
	var ch1 string
	eventually(t, "ch1 registered", func() string {
		ch, err := ovsdbclient.Lookup(e.sb, &sbdb.Chassis{Name: "ch1"})
		if err != nil {
			return err.Error()
		}
		ch1 = ch.UUID
		return ""
	})
	var has []sbdb.HAChassis
	if err := e.sb.List(context.Background(), &has); err != nil || len(has) != 1 {
		t.Fatalf("HA_Chassis rows: %v %v", has, err)
	}
	has[0].Chassis = &ch1
	e.transact(ovsdbclient.UpdateOps(e.sb, nil, &has[0], &has[0].Chassis))
	eventually(t, "cr port claimed", func() string {
		if p := e.port("cr-lr-ext"); p == nil || p.Type != "chassisredirect" || e.chassisName(p.Chassis) != "ch1" {
			return fmt.Sprintf("cr-lr-ext = %+v", p)
		}
		return ""
	})
	for _, c := range []struct{ what, from, to, want string }{
		{"p1 → external (floating IP)", pod, "172.16.100.10:8080", "ext 172.16.100.50"},
		{"p2 → external (SNAT)", pod2, "172.16.100.10:8080", "ext 172.16.100.1"},
		{"external → floating IP (DNAT)", ext, "172.16.100.50:8080", "p1 172.16.100.10"},
	} {
		var got string
		eventually(t, c.what, func() string {
			var err error
			if got, err = requestTCP(c.from, c.to); err != nil {
				return err.Error()
			}
			return ""
		})
		if got != c.want {
			t.Errorf("%s: server answered %q, want %q", c.what, got, c.want)
		}
	}
}
