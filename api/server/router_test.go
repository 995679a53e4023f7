package server_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	govnv1 "github.com/govn/govn/api/govnv1"
)

func TestRouterPortRouteNATDHCPCRUD(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	lr := govnv1.NewLogicalRouterServiceClient(e.conn)
	lrp := govnv1.NewLogicalRouterPortServiceClient(e.conn)
	rt := govnv1.NewStaticRouteServiceClient(e.conn)
	nat := govnv1.NewNATServiceClient(e.conn)
	dhcp := govnv1.NewDHCPOptionsServiceClient(e.conn)

	must(e.ls.CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0"}}))
	must(e.lsp.CreateLogicalSwitchPort(ctx, &govnv1.CreateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{Name: "vm1", Switch: "sw0", Addresses: []string{"00:00:00:00:00:11 10.0.0.11"}}}))
	r0 := must(lr.CreateLogicalRouter(ctx, &govnv1.CreateLogicalRouterRequest{LogicalRouter: &govnv1.LogicalRouter{Name: "lr0"}}))
	if again := must(lr.CreateLogicalRouter(ctx, &govnv1.CreateLogicalRouterRequest{LogicalRouter: &govnv1.LogicalRouter{Name: "lr0"}, MayExist: true})); again.Uuid != r0.Uuid {
		t.Fatal("may_exist created another router")
	}
	must(lrp.CreateLogicalRouterPort(ctx, &govnv1.CreateLogicalRouterPortRequest{LogicalRouterPort: &govnv1.LogicalRouterPort{
		Name: "lr0-sw0", Router: "lr0", Mac: "00:00:00:00:ff:01", Networks: []string{"10.0.0.1/24", "fd00::1/64"}}}))
	must(lrp.CreateLogicalRouterPort(ctx, &govnv1.CreateLogicalRouterPortRequest{LogicalRouterPort: &govnv1.LogicalRouterPort{
		Name: "lr0-ext", Router: "lr0", Mac: "00:00:00:00:ff:02", Networks: []string{"172.16.0.1/24"}}}))
	route := must(rt.CreateStaticRoute(ctx, &govnv1.CreateStaticRouteRequest{StaticRoute: &govnv1.StaticRoute{
		Router: "lr0", IpPrefix: "0.0.0.0/0", Nexthop: "172.16.0.254", OutputPort: "lr0-ext"}}))
	snat := must(nat.CreateNAT(ctx, &govnv1.CreateNATRequest{Nat: &govnv1.NAT{Router: "lr0", Type: "snat", ExternalIp: "172.16.0.10", LogicalIp: "10.0.0.0/24"}}))
	must(nat.CreateNAT(ctx, &govnv1.CreateNATRequest{Nat: &govnv1.NAT{Router: "lr0", Type: "dnat_and_snat", ExternalIp: "172.16.0.11", LogicalIp: "10.0.0.11",
		LogicalPort: "vm1", ExternalMac: "00:00:00:00:ee:11"}}))
	d := must(dhcp.CreateDHCPOptions(ctx, &govnv1.CreateDHCPOptionsRequest{DhcpOptions: &govnv1.DHCPOptions{Cidr: "10.0.0.0/24",
		Options: map[string]string{"server_id": "10.0.0.1", "server_mac": "00:00:00:00:ff:01", "lease_time": "3600", "router": "10.0.0.1"}}}))
	must(e.lsp.UpdateLogicalSwitchPort(ctx, &govnv1.UpdateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{Name: "vm1", Dhcpv4Options: d.Uuid}, UpdateMask: maskOf("dhcpv4_options")}))

	// Real ovn-nbctl reads it all back.
	show := nbctl(t, e, "show", "lr0")
	contains(t, "ovn-nbctl show lr0", show, "router", "(lr0)", "port lr0-sw0", `mac: "00:00:00:00:ff:01"`, `networks: ["10.0.0.1/24", "fd00::1/64"]`,
		"port lr0-ext", "nat", "snat", "172.16.0.10", "10.0.0.0/24", "dnat_and_snat", "172.16.0.11")
	contains(t, "lr-route-list", nbctl(t, e, "lr-route-list", "lr0"), "0.0.0.0/0", "172.16.0.254", "lr0-ext")
	contains(t, "dhcp-options-get-options", nbctl(t, e, "dhcp-options-get-options", d.Uuid), "lease_time=3600", "server_id=10.0.0.1")
	if out := strings.TrimSpace(nbctl(t, e, "lsp-get-dhcpv4-options", "vm1")); !strings.HasPrefix(out, d.Uuid) {
		t.Errorf("lsp-get-dhcpv4-options: %q", out)
	}

	got := must(lr.GetLogicalRouter(ctx, &govnv1.GetLogicalRouterRequest{Name: "lr0"}))
	if !slices.Equal(got.Ports, []string{"lr0-ext", "lr0-sw0"}) || got.StaticRouteCount != 1 || got.NatCount != 2 {
		t.Errorf("router %v", got)
	}
	// Updates.
	up := must(lrp.UpdateLogicalRouterPort(ctx, &govnv1.UpdateLogicalRouterPortRequest{LogicalRouterPort: &govnv1.LogicalRouterPort{Name: "lr0-ext", Networks: []string{"172.16.0.1/24", "172.17.0.1/24"}}, UpdateMask: maskOf("networks")}))
	if up.Mac != "00:00:00:00:ff:02" || len(up.Networks) != 2 {
		t.Errorf("updated router port %v", up)
	}
	rup := must(rt.UpdateStaticRoute(ctx, &govnv1.UpdateStaticRouteRequest{StaticRoute: &govnv1.StaticRoute{Uuid: route.Uuid, Nexthop: "172.16.0.253"}, UpdateMask: maskOf("nexthop")}))
	if rup.Nexthop != "172.16.0.253" || rup.IpPrefix != "0.0.0.0/0" || rup.Router != "lr0" {
		t.Errorf("updated route %v", rup)
	}
	nup := must(nat.UpdateNAT(ctx, &govnv1.UpdateNATRequest{Nat: &govnv1.NAT{Uuid: snat.Uuid, ExternalIp: "172.16.0.12"}, UpdateMask: maskOf("external_ip")}))
	if nup.ExternalIp != "172.16.0.12" || nup.Router != "lr0" {
		t.Errorf("updated NAT %v", nup)
	}

	// Validation: nothing written.
	cases := []struct {
		name string
		code codes.Code
		msg  string
		f    func() error
	}{
		{"overlapping router port network", codes.FailedPrecondition, "overlaps network 10.0.0.1/24 of port \"lr0-sw0\"", func() error {
			_, err := lrp.CreateLogicalRouterPort(ctx, &govnv1.CreateLogicalRouterPortRequest{LogicalRouterPort: &govnv1.LogicalRouterPort{
				Name: "lr0-x", Router: "lr0", Mac: "00:00:00:00:ff:03", Networks: []string{"10.0.0.129/25"}}})
			return err
		}},
		{"overlap within one port", codes.InvalidArgument, "overlaps", func() error {
			_, err := lrp.CreateLogicalRouterPort(ctx, &govnv1.CreateLogicalRouterPortRequest{LogicalRouterPort: &govnv1.LogicalRouterPort{
				Name: "lr0-x", Router: "lr0", Mac: "00:00:00:00:ff:03", Networks: []string{"192.168.0.1/16", "192.168.1.1/24"}}})
			return err
		}},
		{"router port bad MAC", codes.InvalidArgument, "not an Ethernet address", func() error {
			_, err := lrp.CreateLogicalRouterPort(ctx, &govnv1.CreateLogicalRouterPortRequest{LogicalRouterPort: &govnv1.LogicalRouterPort{
				Name: "lr0-x", Router: "lr0", Mac: "00:00:00:ff:03", Networks: []string{"192.168.0.1/24"}}})
			return err
		}},
		{"router port no network", codes.InvalidArgument, "at least one network", func() error {
			_, err := lrp.CreateLogicalRouterPort(ctx, &govnv1.CreateLogicalRouterPortRequest{LogicalRouterPort: &govnv1.LogicalRouterPort{
				Name: "lr0-x", Router: "lr0", Mac: "00:00:00:00:ff:03"}})
			return err
		}},
		{"router port name taken by switch port", codes.AlreadyExists, "logical switch port", func() error {
			_, err := lrp.CreateLogicalRouterPort(ctx, &govnv1.CreateLogicalRouterPortRequest{LogicalRouterPort: &govnv1.LogicalRouterPort{
				Name: "vm1", Router: "lr0", Mac: "00:00:00:00:ff:03", Networks: []string{"192.168.0.1/24"}}})
			return err
		}},
		{"router port unknown peer", codes.NotFound, "peer", func() error {
			_, err := lrp.CreateLogicalRouterPort(ctx, &govnv1.CreateLogicalRouterPortRequest{LogicalRouterPort: &govnv1.LogicalRouterPort{
				Name: "lr0-x", Router: "lr0", Mac: "00:00:00:00:ff:03", Networks: []string{"192.168.0.1/24"}, Peer: "nosuch"}})
			return err
		}},
		{"update into overlap", codes.FailedPrecondition, "overlaps", func() error {
			_, err := lrp.UpdateLogicalRouterPort(ctx, &govnv1.UpdateLogicalRouterPortRequest{LogicalRouterPort: &govnv1.LogicalRouterPort{Name: "lr0-ext", Networks: []string{"10.0.0.2/24"}}, UpdateMask: maskOf("networks")})
			return err
		}},
		{"route bad prefix", codes.InvalidArgument, "host bits", func() error {
			_, err := rt.CreateStaticRoute(ctx, &govnv1.CreateStaticRouteRequest{StaticRoute: &govnv1.StaticRoute{Router: "lr0", IpPrefix: "10.1.0.1/16", Nexthop: "172.16.0.254"}})
			return err
		}},
		{"route family mismatch", codes.InvalidArgument, "address family", func() error {
			_, err := rt.CreateStaticRoute(ctx, &govnv1.CreateStaticRouteRequest{StaticRoute: &govnv1.StaticRoute{Router: "lr0", IpPrefix: "10.1.0.0/16", Nexthop: "fd00::2"}})
			return err
		}},
		{"route unknown output port", codes.NotFound, "has no port \"lr9\"", func() error {
			_, err := rt.CreateStaticRoute(ctx, &govnv1.CreateStaticRouteRequest{StaticRoute: &govnv1.StaticRoute{Router: "lr0", IpPrefix: "10.1.0.0/16", Nexthop: "172.16.0.254", OutputPort: "lr9"}})
			return err
		}},
		{"route duplicate", codes.AlreadyExists, "already has a route", func() error {
			_, err := rt.CreateStaticRoute(ctx, &govnv1.CreateStaticRouteRequest{StaticRoute: &govnv1.StaticRoute{Router: "lr0", IpPrefix: "0.0.0.0/0", Nexthop: "172.16.0.253"}})
			return err
		}},
		{"route unknown router", codes.NotFound, "logical router \"lr9\" not found", func() error {
			_, err := rt.CreateStaticRoute(ctx, &govnv1.CreateStaticRouteRequest{StaticRoute: &govnv1.StaticRoute{Router: "lr9", IpPrefix: "10.1.0.0/16", Nexthop: "172.16.0.254"}})
			return err
		}},
		{"NAT bad external IP", codes.InvalidArgument, "external_ip", func() error {
			_, err := nat.CreateNAT(ctx, &govnv1.CreateNATRequest{Nat: &govnv1.NAT{Router: "lr0", Type: "dnat", ExternalIp: "172.16.0.300", LogicalIp: "10.0.0.11"}})
			return err
		}},
		{"NAT bad type", codes.InvalidArgument, "snat, dnat, dnat_and_snat", func() error {
			_, err := nat.CreateNAT(ctx, &govnv1.CreateNATRequest{Nat: &govnv1.NAT{Router: "lr0", Type: "masquerade", ExternalIp: "172.16.0.30", LogicalIp: "10.0.0.11"}})
			return err
		}},
		{"NAT distributed without MAC", codes.InvalidArgument, "go together", func() error {
			_, err := nat.CreateNAT(ctx, &govnv1.CreateNATRequest{Nat: &govnv1.NAT{Router: "lr0", Type: "dnat_and_snat", ExternalIp: "172.16.0.30", LogicalIp: "10.0.0.11", LogicalPort: "vm1"}})
			return err
		}},
		{"NAT unknown logical port", codes.NotFound, "logical_port", func() error {
			_, err := nat.CreateNAT(ctx, &govnv1.CreateNATRequest{Nat: &govnv1.NAT{Router: "lr0", Type: "dnat_and_snat", ExternalIp: "172.16.0.30", LogicalIp: "10.0.0.12", LogicalPort: "vm9", ExternalMac: "00:00:00:00:ee:12"}})
			return err
		}},
		{"NAT duplicate", codes.AlreadyExists, "already has a snat rule", func() error {
			_, err := nat.CreateNAT(ctx, &govnv1.CreateNATRequest{Nat: &govnv1.NAT{Router: "lr0", Type: "snat", ExternalIp: "172.16.0.99", LogicalIp: "10.0.0.0/24"}})
			return err
		}},
		{"NAT bad port range", codes.InvalidArgument, "external_port_range", func() error {
			_, err := nat.CreateNAT(ctx, &govnv1.CreateNATRequest{Nat: &govnv1.NAT{Router: "lr0", Type: "snat", ExternalIp: "172.16.0.99", LogicalIp: "10.0.1.0/24", ExternalPortRange: "2000-1000"}})
			return err
		}},
		{"DHCP bad CIDR", codes.InvalidArgument, "host bits", func() error {
			_, err := dhcp.CreateDHCPOptions(ctx, &govnv1.CreateDHCPOptionsRequest{DhcpOptions: &govnv1.DHCPOptions{Cidr: "10.0.0.1/24"}})
			return err
		}},
		{"DHCP bad server_mac", codes.InvalidArgument, "options[server_mac]", func() error {
			_, err := dhcp.CreateDHCPOptions(ctx, &govnv1.CreateDHCPOptionsRequest{DhcpOptions: &govnv1.DHCPOptions{Cidr: "10.0.1.0/24", Options: map[string]string{"server_mac": "nope"}}})
			return err
		}},
		{"DHCP router family", codes.InvalidArgument, "address family", func() error {
			_, err := dhcp.CreateDHCPOptions(ctx, &govnv1.CreateDHCPOptionsRequest{DhcpOptions: &govnv1.DHCPOptions{Cidr: "10.0.1.0/24", Options: map[string]string{"router": "fd00::1"}}})
			return err
		}},
		{"router port output of a route", codes.FailedPrecondition, "output port of static route", func() error {
			_, err := lrp.DeleteLogicalRouterPort(ctx, &govnv1.DeleteLogicalRouterPortRequest{Name: "lr0-ext"})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			err := e.expectNothingWritten(c.code, c.f)
			if msg := status.Convert(err).Message(); !strings.Contains(msg, c.msg) {
				t.Errorf("message %q lacks %q", msg, c.msg)
			}
		})
	}
	e.t = t

	// Deletes.
	if r := must(nat.DeleteNAT(ctx, &govnv1.DeleteNATRequest{Router: "lr0", Type: "snat", Ip: "10.0.0.0/24"})); r.Deleted != 1 {
		t.Errorf("NAT deleted %d", r.Deleted)
	}
	if r := must(rt.DeleteStaticRoute(ctx, &govnv1.DeleteStaticRouteRequest{Router: "lr0", IpPrefix: "0.0.0.0/0"})); r.Deleted != 1 {
		t.Errorf("routes deleted %d", r.Deleted)
	}
	must(lrp.DeleteLogicalRouterPort(ctx, &govnv1.DeleteLogicalRouterPortRequest{Name: "lr0-ext"}))
	must(dhcp.DeleteDHCPOptions(ctx, &govnv1.DeleteDHCPOptionsRequest{Uuid: d.Uuid}))
	if p := must(e.lsp.GetLogicalSwitchPort(ctx, &govnv1.GetLogicalSwitchPortRequest{Name: "vm1"})); p.Dhcpv4Options != "" {
		t.Errorf("port still refers to deleted DHCP options: %v", p)
	}
	must(lr.DeleteLogicalRouter(ctx, &govnv1.DeleteLogicalRouterRequest{Name: "lr0"}))
	for _, table := range []string{"Logical_Router", "Logical_Router_Port", "NAT", "Logical_Router_Static_Route", "DHCP_Options"} {
		if out := nbctl(t, e, "--columns=_uuid", "list", table); strings.TrimSpace(out) != "" {
			t.Errorf("%s rows left: %q", table, out)
		}
	}
}

// TestDuplicatesAndMayExist covers duplicate names and may_exist for the
// remaining named resources, with nothing written on error.
func TestDuplicatesAndMayExist(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	lr := govnv1.NewLogicalRouterServiceClient(e.conn)
	lrp := govnv1.NewLogicalRouterPortServiceClient(e.conn)
	must(lr.CreateLogicalRouter(ctx, &govnv1.CreateLogicalRouterRequest{LogicalRouter: &govnv1.LogicalRouter{Name: "lr0"}}))
	must(lr.CreateLogicalRouter(ctx, &govnv1.CreateLogicalRouterRequest{LogicalRouter: &govnv1.LogicalRouter{Name: "lr1"}}))
	p := must(lrp.CreateLogicalRouterPort(ctx, &govnv1.CreateLogicalRouterPortRequest{LogicalRouterPort: &govnv1.LogicalRouterPort{
		Name: "lrp0", Router: "lr0", Mac: "00:00:00:00:ff:01", Networks: []string{"10.0.0.1/24"}}}))
	if again := must(lrp.CreateLogicalRouterPort(ctx, &govnv1.CreateLogicalRouterPortRequest{MayExist: true, LogicalRouterPort: &govnv1.LogicalRouterPort{
		Name: "lrp0", Router: "lr0", Mac: "00:00:00:00:ff:01", Networks: []string{"10.0.0.1/24"}}})); again.Uuid != p.Uuid {
		t.Error("may_exist router port created a new row")
	}
	lb := must(e.lb.CreateLoadBalancer(ctx, &govnv1.CreateLoadBalancerRequest{LoadBalancer: &govnv1.LoadBalancer{Name: "lb0", Vips: map[string]string{"10.0.0.100": "10.0.0.11"}}}))
	if again := must(e.lb.CreateLoadBalancer(ctx, &govnv1.CreateLoadBalancerRequest{MayExist: true, LoadBalancer: &govnv1.LoadBalancer{Name: "lb0"}})); again.Uuid != lb.Uuid {
		t.Error("may_exist load balancer created a new row")
	}
	if got := must(e.lb.GetLoadBalancer(ctx, &govnv1.GetLoadBalancerRequest{Name: "lb0"})); got.Vips["10.0.0.100"] != "10.0.0.11" {
		t.Errorf("lb %v", got)
	}
	must(e.as.CreateAddressSet(ctx, &govnv1.CreateAddressSetRequest{AddressSet: &govnv1.AddressSet{Name: "as0"}}))
	must(e.pg.CreatePortGroup(ctx, &govnv1.CreatePortGroupRequest{PortGroup: &govnv1.PortGroup{Name: "pg0"}}))
	for _, c := range []struct {
		name string
		code codes.Code
		f    func() error
	}{
		{"router", codes.AlreadyExists, func() error {
			_, err := lr.CreateLogicalRouter(ctx, &govnv1.CreateLogicalRouterRequest{LogicalRouter: &govnv1.LogicalRouter{Name: "lr0"}})
			return err
		}},
		{"router port on another router, even with may_exist", codes.AlreadyExists, func() error {
			_, err := lrp.CreateLogicalRouterPort(ctx, &govnv1.CreateLogicalRouterPortRequest{MayExist: true, LogicalRouterPort: &govnv1.LogicalRouterPort{
				Name: "lrp0", Router: "lr1", Mac: "00:00:00:00:ff:02", Networks: []string{"10.1.0.1/24"}}})
			return err
		}},
		{"load balancer", codes.AlreadyExists, func() error {
			_, err := e.lb.CreateLoadBalancer(ctx, &govnv1.CreateLoadBalancerRequest{LoadBalancer: &govnv1.LoadBalancer{Name: "lb0"}})
			return err
		}},
		{"port group", codes.AlreadyExists, func() error {
			_, err := e.pg.CreatePortGroup(ctx, &govnv1.CreatePortGroupRequest{PortGroup: &govnv1.PortGroup{Name: "pg0"}})
			return err
		}},
		{"router with unknown load balancer", codes.NotFound, func() error {
			_, err := lr.UpdateLogicalRouter(ctx, &govnv1.UpdateLogicalRouterRequest{LogicalRouter: &govnv1.LogicalRouter{Name: "lr0", LoadBalancers: []string{"lb9"}}, UpdateMask: maskOf("load_balancers")})
			return err
		}},
		{"address set update with bad address", codes.InvalidArgument, func() error {
			_, err := e.as.UpdateAddressSet(ctx, &govnv1.UpdateAddressSetRequest{AddressSet: &govnv1.AddressSet{Name: "as0", Addresses: []string{"10.0.0.0/24", "bogus"}}, UpdateMask: maskOf("addresses")})
			return err
		}},
		{"port group update with unknown port", codes.NotFound, func() error {
			_, err := e.pg.UpdatePortGroup(ctx, &govnv1.UpdatePortGroupRequest{PortGroup: &govnv1.PortGroup{Name: "pg0", Ports: []string{"nop"}}, UpdateMask: maskOf("ports")})
			return err
		}},
		{"load balancer update with bad VIP", codes.InvalidArgument, func() error {
			_, err := e.lb.UpdateLoadBalancer(ctx, &govnv1.UpdateLoadBalancerRequest{LoadBalancer: &govnv1.LoadBalancer{Name: "lb0", Vips: map[string]string{"10.0.0.1:80": "[fd00::1]:80"}}, UpdateMask: maskOf("vips")})
			return err
		}},
		{"delete unknown router", codes.NotFound, func() error {
			_, err := lr.DeleteLogicalRouter(ctx, &govnv1.DeleteLogicalRouterRequest{Name: "lr9"})
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			e.expectNothingWritten(c.code, c.f)
		})
	}
}
