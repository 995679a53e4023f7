package server_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	govnv1 "github.com/govn/govn/api/govnv1"
)

// Gateway routers: options at create, SetLogicalRouterOptions (set and
// remove keys in one mutate, others kept), validation, and ovn-nbctl
// reading them back.
func TestGatewayRouterOptions(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	lr := govnv1.NewLogicalRouterServiceClient(e.conn)

	must(lr.CreateLogicalRouter(ctx, &govnv1.CreateLogicalRouterRequest{LogicalRouter: &govnv1.LogicalRouter{Name: "gw",
		Options: map[string]string{"chassis": "ch1", "lb_force_snat_ip": "router_ip"}}}))
	if got := strings.TrimSpace(nbctl(t, e, "get", "logical_router", "gw", "options:chassis")); got != `ch1` && got != `"ch1"` {
		t.Errorf("ovn-nbctl get options:chassis = %q", got)
	}
	// Another writer adds a key; our edit keeps it.
	nbctl(t, e, "set", "logical_router", "gw", "options:always_learn_from_arp_request=false")
	got := must(lr.SetLogicalRouterOptions(ctx, &govnv1.SetOptionsRequest{Name: "gw",
		Set: map[string]string{"chassis": "ch2", "dnat_force_snat_ip": "172.16.0.1"}, Remove: []string{"lb_force_snat_ip"}}))
	want := map[string]string{"chassis": "ch2", "dnat_force_snat_ip": "172.16.0.1", "always_learn_from_arp_request": "false"}
	if len(got.Options) != len(want) {
		t.Errorf("options %v, want %v", got.Options, want)
	}
	for k, v := range want {
		if got.Options[k] != v {
			t.Errorf("options[%s] = %q, want %q (all: %v)", k, got.Options[k], v, got.Options)
		}
	}
	contains(t, "ovn-nbctl list", nbctl(t, e, "--columns=options", "list", "logical_router", "gw"), "chassis=ch2", `dnat_force_snat_ip="172.16.0.1"`)
	if out := nbctl(t, e, "--columns=options", "list", "logical_router", "gw"); strings.Contains(out, "lb_force_snat_ip") {
		t.Errorf("lb_force_snat_ip not removed: %s", out)
	}

	// Validation: nothing written.
	for _, c := range []struct {
		name string
		call func() error
		code codes.Code
		want string
	}{
		{"bad lb_force_snat_ip", func() error {
			_, err := lr.SetLogicalRouterOptions(ctx, &govnv1.SetOptionsRequest{Name: "gw", Set: map[string]string{"lb_force_snat_ip": "10.0.0.300"}})
			return err
		}, codes.InvalidArgument, "logical_router.options:lb_force_snat_ip"},
		{"two v4 snat ips", func() error {
			_, err := lr.SetLogicalRouterOptions(ctx, &govnv1.SetOptionsRequest{Name: "gw", Set: map[string]string{"dnat_force_snat_ip": "10.0.0.1 10.0.0.2"}})
			return err
		}, codes.InvalidArgument, "logical_router.options:dnat_force_snat_ip"},
		{"empty chassis", func() error {
			_, err := lr.SetLogicalRouterOptions(ctx, &govnv1.SetOptionsRequest{Name: "gw", Set: map[string]string{"chassis": ""}})
			return err
		}, codes.InvalidArgument, "logical_router.options:chassis"},
		{"set and remove", func() error {
			_, err := lr.SetLogicalRouterOptions(ctx, &govnv1.SetOptionsRequest{Name: "gw", Set: map[string]string{"chassis": "x"}, Remove: []string{"chassis"}})
			return err
		}, codes.InvalidArgument, "logical_router.remove"},
		{"nothing", func() error {
			_, err := lr.SetLogicalRouterOptions(ctx, &govnv1.SetOptionsRequest{Name: "gw"})
			return err
		}, codes.InvalidArgument, "logical_router.set"},
		{"unknown router", func() error {
			_, err := lr.SetLogicalRouterOptions(ctx, &govnv1.SetOptionsRequest{Name: "nosuch", Set: map[string]string{"chassis": "ch1"}})
			return err
		}, codes.NotFound, ""},
		{"create with bad option", func() error {
			_, err := lr.CreateLogicalRouter(ctx, &govnv1.CreateLogicalRouterRequest{LogicalRouter: &govnv1.LogicalRouter{Name: "gw2",
				Options: map[string]string{"lb_force_snat_ip": "nope"}}})
			return err
		}, codes.InvalidArgument, "logical_router.options:lb_force_snat_ip"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := e.expectNothingWritten(c.code, c.call)
			if c.want != "" {
				if f, _ := badRequestField(err); f != c.want {
					t.Errorf("field %q, want %q (%v)", f, c.want, err)
				}
			}
		})
	}
}

// Distributed gateway ports: Gateway_Chassis rows named "<port>-<chassis>",
// re-prioritised in place, deleted, validated; ovn-nbctl sees them.
func TestGatewayChassisCRUD(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	lr := govnv1.NewLogicalRouterServiceClient(e.conn)
	lrp := govnv1.NewLogicalRouterPortServiceClient(e.conn)
	must(lr.CreateLogicalRouter(ctx, &govnv1.CreateLogicalRouterRequest{LogicalRouter: &govnv1.LogicalRouter{Name: "lr0"}}))
	must(lrp.CreateLogicalRouterPort(ctx, &govnv1.CreateLogicalRouterPortRequest{LogicalRouterPort: &govnv1.LogicalRouterPort{
		Name: "lr0-ext", Router: "lr0", Mac: "00:00:00:00:ff:02", Networks: []string{"172.16.0.1/24"}}}))

	must(lrp.SetGatewayChassis(ctx, &govnv1.SetGatewayChassisRequest{Port: "lr0-ext", ChassisName: "ch1", Priority: 20}))
	p := must(lrp.SetGatewayChassis(ctx, &govnv1.SetGatewayChassisRequest{Port: "lr0-ext", ChassisName: "ch2", Priority: 10}))
	if len(p.GatewayChassis) != 2 || p.GatewayChassis[0].Name != "lr0-ext-ch1" || p.GatewayChassis[0].Priority != 20 ||
		p.GatewayChassis[1].ChassisName != "ch2" || p.GatewayChassis[1].Priority != 10 {
		t.Fatalf("gateway chassis %v", p.GatewayChassis)
	}
	want := "lr0-ext-ch1    20\nlr0-ext-ch2    10"
	if got := strings.TrimSpace(nbctl(t, e, "lrp-get-gateway-chassis", "lr0-ext")); got != want {
		t.Errorf("ovn-nbctl lrp-get-gateway-chassis:\n%s\nwant\n%s", got, want)
	}
	// Re-prioritise: the same row, no new one.
	uuid := p.GatewayChassis[1].Uuid
	p = must(lrp.SetGatewayChassis(ctx, &govnv1.SetGatewayChassisRequest{Port: "lr0-ext", ChassisName: "ch2", Priority: 30}))
	if len(p.GatewayChassis) != 2 || p.GatewayChassis[0].ChassisName != "ch2" || p.GatewayChassis[0].Uuid != uuid || p.GatewayChassis[0].Priority != 30 {
		t.Errorf("after re-prioritising: %v", p.GatewayChassis)
	}
	if n := strings.Count(nbctl(t, e, "--columns=_uuid", "list", "gateway_chassis"), "_uuid"); n != 2 {
		t.Errorf("%d Gateway_Chassis rows, want 2", n)
	}
	// One written by ovn-nbctl is seen and deletable through the API.
	nbctl(t, e, "lrp-set-gateway-chassis", "lr0-ext", "ch3", "5")
	list := must(lrp.ListLogicalRouterPorts(ctx, &govnv1.ListLogicalRouterPortsRequest{Router: "lr0"}))
	if len(list.Items) != 1 || len(list.Items[0].GatewayChassis) != 3 {
		t.Fatalf("list: %v", list.Items)
	}
	p = must(lrp.DeleteGatewayChassis(ctx, &govnv1.DeleteGatewayChassisRequest{Port: "lr0-ext", ChassisName: "ch3"}))
	if len(p.GatewayChassis) != 2 {
		t.Errorf("after delete: %v", p.GatewayChassis)
	}
	must(lrp.DeleteGatewayChassis(ctx, &govnv1.DeleteGatewayChassisRequest{Port: "lr0-ext", ChassisName: "ch1"}))
	if got := strings.TrimSpace(nbctl(t, e, "lrp-get-gateway-chassis", "lr0-ext")); got != "lr0-ext-ch2    30" {
		t.Errorf("ovn-nbctl after delete: %q", got)
	}
	if n := strings.Count(nbctl(t, e, "--columns=_uuid", "list", "gateway_chassis"), "_uuid"); n != 1 {
		t.Errorf("%d Gateway_Chassis rows after deletes, want 1", n)
	}
	must(lrp.DeleteGatewayChassis(ctx, &govnv1.DeleteGatewayChassisRequest{Port: "lr0-ext", ChassisName: "ch1", IfExists: true}))

	for _, c := range []struct {
		name string
		call func() error
		code codes.Code
		want string
	}{
		{"unknown port", func() error {
			_, err := lrp.SetGatewayChassis(ctx, &govnv1.SetGatewayChassisRequest{Port: "nosuch", ChassisName: "ch1", Priority: 1})
			return err
		}, codes.NotFound, ""},
		{"priority too high", func() error {
			_, err := lrp.SetGatewayChassis(ctx, &govnv1.SetGatewayChassisRequest{Port: "lr0-ext", ChassisName: "ch1", Priority: 32768})
			return err
		}, codes.InvalidArgument, "gateway_chassis.priority"},
		{"negative priority", func() error {
			_, err := lrp.SetGatewayChassis(ctx, &govnv1.SetGatewayChassisRequest{Port: "lr0-ext", ChassisName: "ch1", Priority: -1})
			return err
		}, codes.InvalidArgument, "gateway_chassis.priority"},
		{"empty chassis", func() error {
			_, err := lrp.SetGatewayChassis(ctx, &govnv1.SetGatewayChassisRequest{Port: "lr0-ext", Priority: 1})
			return err
		}, codes.InvalidArgument, "gateway_chassis.chassis_name"},
		{"delete missing", func() error {
			_, err := lrp.DeleteGatewayChassis(ctx, &govnv1.DeleteGatewayChassisRequest{Port: "lr0-ext", ChassisName: "ch9"})
			return err
		}, codes.NotFound, ""},
		{"delete on unknown port", func() error {
			_, err := lrp.DeleteGatewayChassis(ctx, &govnv1.DeleteGatewayChassisRequest{Port: "nosuch", ChassisName: "ch2"})
			return err
		}, codes.NotFound, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := e.expectNothingWritten(c.code, c.call)
			if c.want != "" {
				if f, _ := badRequestField(err); f != c.want {
					t.Errorf("field %q, want %q (%v)", f, c.want, err)
				}
			}
		})
	}

	// Deleting the port takes its Gateway_Chassis rows with it (strong refs).
	must(lrp.DeleteLogicalRouterPort(ctx, &govnv1.DeleteLogicalRouterPortRequest{Name: "lr0-ext"}))
	if out := nbctl(t, e, "--columns=_uuid", "list", "gateway_chassis"); strings.Contains(out, "_uuid") {
		t.Errorf("Gateway_Chassis rows left after deleting the port: %s", out)
	}
}

// Load balancer options: validated by northd's parser at create, update
// and SetLoadBalancerOptions; nothing written on error.
func TestLoadBalancerOptions(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	got := must(e.lb.CreateLoadBalancer(ctx, &govnv1.CreateLoadBalancerRequest{LoadBalancer: &govnv1.LoadBalancer{Name: "web",
		Vips:    map[string]string{"172.16.0.10:80": "10.0.0.11:8080,10.0.0.12:8080"},
		Options: map[string]string{"reject": "true", "skip_snat": "true", "hairpin_snat_ip": "169.254.0.1 fd69::1", "affinity_timeout": "60"}}}))
	if len(got.Options) != 4 || got.Options["affinity_timeout"] != "60" {
		t.Errorf("options %v", got.Options)
	}
	contains(t, "ovn-nbctl list load_balancer", nbctl(t, e, "--columns=options", "list", "load_balancer", "web"),
		"affinity_timeout", "reject=\"true\"", "skip_snat=\"true\"", `hairpin_snat_ip="169.254.0.1 fd69::1"`)
	got = must(e.lb.SetLoadBalancerOptions(ctx, &govnv1.SetOptionsRequest{Name: "web", Set: map[string]string{"affinity_timeout": "120"}, Remove: []string{"reject"}}))
	if got.Options["affinity_timeout"] != "120" || got.Options["reject"] != "" || got.Options["skip_snat"] != "true" || len(got.Options) != 3 {
		t.Errorf("after set-option: %v", got.Options)
	}

	for _, c := range []struct {
		name string
		call func() error
		want string
	}{
		{"affinity_timeout not a number", func() error {
			_, err := e.lb.SetLoadBalancerOptions(ctx, &govnv1.SetOptionsRequest{Name: "web", Set: map[string]string{"affinity_timeout": "ten"}})
			return err
		}, "load_balancer.options"},
		{"affinity_timeout too large", func() error {
			_, err := e.lb.SetLoadBalancerOptions(ctx, &govnv1.SetOptionsRequest{Name: "web", Set: map[string]string{"affinity_timeout": "70000"}})
			return err
		}, "load_balancer.options"},
		{"hairpin_snat_ip two v4", func() error {
			_, err := e.lb.SetLoadBalancerOptions(ctx, &govnv1.SetOptionsRequest{Name: "web", Set: map[string]string{"hairpin_snat_ip": "1.1.1.1 2.2.2.2"}})
			return err
		}, "load_balancer.options"},
		{"hairpin_snat_ip not an IP", func() error {
			_, err := e.lb.CreateLoadBalancer(ctx, &govnv1.CreateLoadBalancerRequest{LoadBalancer: &govnv1.LoadBalancer{Name: "lb2",
				Vips: map[string]string{"172.16.0.11:80": "10.0.0.11:80"}, Options: map[string]string{"hairpin_snat_ip": "bogus"}}})
			return err
		}, "load_balancer.options"},
		{"update with bad option", func() error {
			_, err := e.lb.UpdateLoadBalancer(ctx, &govnv1.UpdateLoadBalancerRequest{LoadBalancer: &govnv1.LoadBalancer{Name: "web",
				Options: map[string]string{"affinity_timeout": "-1"}}, UpdateMask: maskOf("options")})
			return err
		}, "load_balancer.options"},
		{"bad vip", func() error {
			_, err := e.lb.CreateLoadBalancer(ctx, &govnv1.CreateLoadBalancerRequest{LoadBalancer: &govnv1.LoadBalancer{Name: "lb3",
				Vips: map[string]string{"172.16.0.300:80": "10.0.0.11:80"}}})
			return err
		}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := e.expectNothingWritten(codes.InvalidArgument, c.call)
			if f, _ := badRequestField(err); c.want != "" && f != c.want {
				t.Errorf("field %q, want %q (%v)", f, c.want, err)
			}
		})
	}
	e.expectNothingWritten(codes.NotFound, func() error {
		_, err := e.lb.SetLoadBalancerOptions(ctx, &govnv1.SetOptionsRequest{Name: "nosuch", Set: map[string]string{"reject": "true"}})
		return err
	})
}

// A localnet port with a VLAN, and a router-type port whose addresses are
// the literal "router", as ovn-nbctl writes them.
func TestLocalnetAndRouterAddresses(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	must(e.ls.CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "ext"}}))
	tag := int32(100)
	p := must(e.lsp.CreateLogicalSwitchPort(ctx, &govnv1.CreateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{
		Name: "ln-ext", Switch: "ext", Type: "localnet", Addresses: []string{"unknown"}, Options: map[string]string{"network_name": "physnet"}, TagRequest: &tag}}))
	if p.Tag == nil || *p.Tag != 100 || p.TagRequest == nil || *p.TagRequest != 100 {
		t.Errorf("localnet tag %v / tag_request %v", p.Tag, p.TagRequest)
	}
	contains(t, "ovn-nbctl list lsp", nbctl(t, e, "--columns=type,options,tag,tag_request,addresses", "list", "logical_switch_port", "ln-ext"),
		"localnet", "network_name=physnet", "tag                 : 100", "tag_request         : 100", `[unknown]`)
	// A tag_request outside 0..4095 is refused.
	e.expectNothingWritten(codes.InvalidArgument, func() error {
		bad := int32(4096)
		_, err := e.lsp.CreateLogicalSwitchPort(ctx, &govnv1.CreateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{
			Name: "ln2", Switch: "ext", Type: "localnet", TagRequest: &bad}})
		return err
	})

	lr := govnv1.NewLogicalRouterServiceClient(e.conn)
	lrp := govnv1.NewLogicalRouterPortServiceClient(e.conn)
	must(lr.CreateLogicalRouter(ctx, &govnv1.CreateLogicalRouterRequest{LogicalRouter: &govnv1.LogicalRouter{Name: "gw"}}))
	must(lrp.CreateLogicalRouterPort(ctx, &govnv1.CreateLogicalRouterPortRequest{LogicalRouterPort: &govnv1.LogicalRouterPort{
		Name: "gw-ext", Router: "gw", Mac: "00:00:00:00:ff:fe", Networks: []string{"172.20.0.254/24"}}}))
	rp := must(e.lsp.CreateLogicalSwitchPort(ctx, &govnv1.CreateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{
		Name: "ext-gw", Switch: "ext", Type: "router", Addresses: []string{"router"}, Options: map[string]string{"router-port": "gw-ext"}}}))
	if len(rp.Addresses) != 1 || rp.Addresses[0] != "router" {
		t.Errorf("router port addresses %q", rp.Addresses)
	}
	// The column holds the word (ovn-nbctl lsp-get-addresses would print
	// the router port's "MAC IP/len" it stands for).
	if got := strings.TrimSpace(nbctl(t, e, "get", "logical_switch_port", "ext-gw", "addresses")); got != `[router]` {
		t.Errorf("ovn-nbctl get addresses of ext-gw = %q, want [router]", got)
	}
}
