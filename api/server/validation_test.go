package server_test

import (
	"strings"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	govnv1 "github.com/govn/govn/api/govnv1"
)

// TestValidationNothingWritten drives every validation error path of the
// switch/port/ACL/address set/port group/load balancer services and checks,
// with ovsdb-client dump, that nothing was written.
func TestValidationNothingWritten(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	must(e.ls.CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0"}}))
	must(e.lsp.CreateLogicalSwitchPort(ctx, &govnv1.CreateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{
		Name: "p1", Switch: "sw0", Addresses: []string{"00:00:00:00:00:01 10.0.0.11"}}}))
	must(e.as.CreateAddressSet(ctx, &govnv1.CreateAddressSetRequest{AddressSet: &govnv1.AddressSet{Name: "web", Addresses: []string{"10.0.0.0/24"}}}))
	must(e.acl.CreateACL(ctx, &govnv1.CreateACLRequest{Acl: &govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: 1000,
		Match: "ip4.src == $web", Action: "allow"}}))

	port := func(p *govnv1.LogicalSwitchPort) func() error {
		return func() error {
			_, err := e.lsp.CreateLogicalSwitchPort(ctx, &govnv1.CreateLogicalSwitchPortRequest{LogicalSwitchPort: p})
			return err
		}
	}
	acl := func(a *govnv1.ACL) func() error {
		return func() error {
			_, err := e.acl.CreateACL(ctx, &govnv1.CreateACLRequest{Acl: a})
			return err
		}
	}
	cases := []struct {
		name  string
		code  codes.Code
		field string // BadRequest field, for InvalidArgument
		msg   string // substring of the status message
		f     func() error
	}{
		{"bad MAC", codes.InvalidArgument, "logical_switch_port.addresses[0]", "octet 6",
			port(&govnv1.LogicalSwitchPort{Name: "p2", Switch: "sw0", Addresses: []string{"00:00:00:00:00:zz 10.0.0.12"}})},
		{"multicast MAC", codes.InvalidArgument, "logical_switch_port.addresses[0]", "multicast",
			port(&govnv1.LogicalSwitchPort{Name: "p2", Switch: "sw0", Addresses: []string{"01:00:00:00:00:01"}})},
		{"bad IP", codes.InvalidArgument, "logical_switch_port.addresses[1]", "not an IP address",
			port(&govnv1.LogicalSwitchPort{Name: "p2", Switch: "sw0", Addresses: []string{"unknown", "00:00:00:00:00:02 10.0.0.300"}})},
		{"bad port security CIDR", codes.InvalidArgument, "logical_switch_port.port_security[0]", "10.0.0.0/33",
			port(&govnv1.LogicalSwitchPort{Name: "p2", Switch: "sw0", PortSecurity: []string{"00:00:00:00:00:02 10.0.0.0/33"}})},
		{"bad type", codes.InvalidArgument, "logical_switch_port.type", "unknown port type",
			port(&govnv1.LogicalSwitchPort{Name: "p2", Switch: "sw0", Type: "bogus"})},
		{"unknown switch", codes.NotFound, "", `logical switch "nosuch" not found`,
			port(&govnv1.LogicalSwitchPort{Name: "p2", Switch: "nosuch"})},
		{"duplicate port name", codes.AlreadyExists, "", `"p1" already exists`,
			port(&govnv1.LogicalSwitchPort{Name: "p1", Switch: "sw0"})},
		{"duplicate IP on the switch", codes.FailedPrecondition, "", "duplicate IP address 10.0.0.11",
			port(&govnv1.LogicalSwitchPort{Name: "p2", Switch: "sw0", Addresses: []string{"00:00:00:00:00:02 10.0.0.11"}})},
		{"unknown DHCP options", codes.NotFound, "", "DHCP options",
			port(&govnv1.LogicalSwitchPort{Name: "p2", Switch: "sw0", Dhcpv4Options: "8c3e4a0e-0000-4000-8000-000000000000"})},
		{"empty switch name", codes.InvalidArgument, "logical_switch.name", "must not be empty", func() error {
			_, err := e.ls.CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{}})
			return err
		}},
		{"switch with unknown load balancer", codes.NotFound, "", `load balancer "nolb" not found`, func() error {
			_, err := e.ls.CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw1", LoadBalancers: []string{"nolb"}}})
			return err
		}},
		{"ACL match syntax", codes.InvalidArgument, "acl.match", "1:", acl(&govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: 1, Match: "ip4.src == ", Action: "drop"})},
		{"ACL match unknown field", codes.InvalidArgument, "acl.match", "1:1:", acl(&govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: 1, Match: "ip9.src == 1.2.3.4", Action: "drop"})},
		{"ACL match type error", codes.InvalidArgument, "acl.match", "1:", acl(&govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: 1, Match: "tcp.dst == 10.0.0.1", Action: "drop"})},
		{"ACL unknown address set", codes.InvalidArgument, "acl.match", "address set $nosuch does not exist", acl(&govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: 1, Match: "ip4.src == $nosuch", Action: "drop"})},
		{"ACL unknown port group", codes.InvalidArgument, "acl.match", "port group @nopg does not exist", acl(&govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: 1, Match: "outport == @nopg", Action: "drop"})},
		{"ACL bad direction", codes.InvalidArgument, "acl.direction", "from-lport, to-lport", acl(&govnv1.ACL{Switch: "sw0", Direction: "sideways", Priority: 1, Match: "ip4", Action: "drop"})},
		{"ACL bad priority", codes.InvalidArgument, "acl.priority", "0..32767", acl(&govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: 40000, Match: "ip4", Action: "drop"})},
		{"ACL bad action", codes.InvalidArgument, "acl.action", "allow-related", acl(&govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: 1, Match: "ip4", Action: "permit"})},
		{"ACL tier too high", codes.InvalidArgument, "acl.tier", "out of range 0..3", acl(&govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: 1, Match: "ip4", Action: "pass", Tier: 4})},
		{"ACL negative tier", codes.InvalidArgument, "acl.tier", "out of range 0..3", acl(&govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: 1, Match: "ip4", Action: "drop", Tier: -1})},
		{"ACL long name", codes.InvalidArgument, "acl.name", "63 bytes", acl(&govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: 1, Match: "ip4", Action: "drop", Name: strings.Repeat("n", 64)})},
		{"ACL unknown parent", codes.NotFound, "", `logical switch "nosw" not found`, acl(&govnv1.ACL{Switch: "nosw", Direction: "to-lport", Priority: 1, Match: "ip4", Action: "drop"})},
		{"ACL duplicate", codes.AlreadyExists, "", "already has a to-lport ACL", acl(&govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: 1000, Match: "ip4.src == $web", Action: "drop"})},
		{"address set bad address", codes.InvalidArgument, "address_set.addresses[1]", "not IP/prefix-length", func() error {
			_, err := e.as.CreateAddressSet(ctx, &govnv1.CreateAddressSetRequest{AddressSet: &govnv1.AddressSet{Name: "x", Addresses: []string{"10.0.0.1", "10.0.0.0/40"}}})
			return err
		}},
		{"address set mixed families", codes.InvalidArgument, "address_set.addresses[1]", "mixes IPv4 and IPv6", func() error {
			_, err := e.as.CreateAddressSet(ctx, &govnv1.CreateAddressSetRequest{AddressSet: &govnv1.AddressSet{Name: "x", Addresses: []string{"10.0.0.1", "fd00::1"}}})
			return err
		}},
		{"address set bad name", codes.InvalidArgument, "address_set.name", "not allowed", func() error {
			_, err := e.as.CreateAddressSet(ctx, &govnv1.CreateAddressSetRequest{AddressSet: &govnv1.AddressSet{Name: "1bad-name"}})
			return err
		}},
		{"address set duplicate", codes.AlreadyExists, "", `address set "web" already exists`, func() error {
			_, err := e.as.CreateAddressSet(ctx, &govnv1.CreateAddressSetRequest{AddressSet: &govnv1.AddressSet{Name: "web"}})
			return err
		}},
		{"address set in use", codes.FailedPrecondition, "", "is used by ACL", func() error {
			_, err := e.as.DeleteAddressSet(ctx, &govnv1.DeleteAddressSetRequest{Name: "web"})
			return err
		}},
		{"port group unknown port", codes.NotFound, "", `logical switch port "nop" not found`, func() error {
			_, err := e.pg.CreatePortGroup(ctx, &govnv1.CreatePortGroupRequest{PortGroup: &govnv1.PortGroup{Name: "pg1", Ports: []string{"p1", "nop"}}})
			return err
		}},
		{"load balancer bad VIP", codes.InvalidArgument, "load_balancer.vips[10.0.0.300:80]", "want IP", func() error {
			_, err := e.lb.CreateLoadBalancer(ctx, &govnv1.CreateLoadBalancerRequest{LoadBalancer: &govnv1.LoadBalancer{Name: "lb0", Vips: map[string]string{"10.0.0.300:80": "10.0.0.11:80"}}})
			return err
		}},
		{"load balancer backend without port", codes.InvalidArgument, "load_balancer.vips[10.0.0.100:80]", "needs a port", func() error {
			_, err := e.lb.CreateLoadBalancer(ctx, &govnv1.CreateLoadBalancerRequest{LoadBalancer: &govnv1.LoadBalancer{Name: "lb0", Vips: map[string]string{"10.0.0.100:80": "10.0.0.11"}}})
			return err
		}},
		{"load balancer bad protocol", codes.InvalidArgument, "load_balancer.protocol", "tcp, udp, sctp", func() error {
			_, err := e.lb.CreateLoadBalancer(ctx, &govnv1.CreateLoadBalancerRequest{LoadBalancer: &govnv1.LoadBalancer{Name: "lb0", Protocol: "icmp"}})
			return err
		}},
		{"update mask unknown field", codes.InvalidArgument, "logical_switch_port.update_mask", "not a settable field", func() error {
			_, err := e.lsp.UpdateLogicalSwitchPort(ctx, &govnv1.UpdateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{Name: "p1"},
				UpdateMask: maskOf("up")})
			return err
		}},
		{"update bad addresses", codes.InvalidArgument, "logical_switch_port.addresses[0]", "not an Ethernet address", func() error {
			_, err := e.lsp.UpdateLogicalSwitchPort(ctx, &govnv1.UpdateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{Name: "p1", Addresses: []string{"hello"}},
				UpdateMask: maskOf("addresses")})
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
			if c.field != "" {
				if f, _ := badRequestField(err); f != c.field {
					t.Errorf("BadRequest field %q, want %q (%v)", f, c.field, err)
				}
			}
		})
	}
}

// TestACLMatchErrorPosition checks that a bad match reports the parser's
// line:column and reason in the message and the BadRequest details.
func TestACLMatchErrorPosition(t *testing.T) {
	e := newEnv(t)
	must(e.ls.CreateLogicalSwitch(e.ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0"}}))
	_, err := e.acl.CreateACL(e.ctx, &govnv1.CreateACLRequest{Acl: &govnv1.ACL{Switch: "sw0", Direction: "from-lport", Priority: 100,
		Match: "ip4 && tcp.dst == 80 &&& udp", Action: "drop"}})
	field, desc := badRequestField(err)
	if status.Code(err) != codes.InvalidArgument || field != "acl.match" || !strings.Contains(desc, "1:24: ") {
		t.Fatalf("err %v, field %q, desc %q", err, field, desc)
	}
	var info *errdetails.ErrorInfo
	for _, d := range status.Convert(err).Details() {
		if i, ok := d.(*errdetails.ErrorInfo); ok {
			info = i
		}
	}
	if info == nil || info.Reason != "INVALID_MATCH" || info.Metadata["line"] != "1" || info.Metadata["column"] != "24" ||
		info.Metadata["field"] != "acl.match" || info.Metadata["message"] == "" {
		t.Fatalf("ErrorInfo %v", info)
	}
	t.Logf("error: %v; details: %s: %s", err, field, desc)
}
