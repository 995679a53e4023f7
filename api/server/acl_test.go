package server_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/nbdb"
)

func TestACLAddressSetPortGroupLoadBalancerCRUD(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	must(e.ls.CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0"}}))
	for _, p := range []string{"p1", "p2"} {
		must(e.lsp.CreateLogicalSwitchPort(ctx, &govnv1.CreateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{Name: p, Switch: "sw0"}}))
	}

	// Address set.
	as := must(e.as.CreateAddressSet(ctx, &govnv1.CreateAddressSetRequest{AddressSet: &govnv1.AddressSet{Name: "web", Addresses: []string{"10.0.0.11", "10.0.1.0/24"}}}))
	if !slices.Equal(as.Addresses, []string{"10.0.0.11", "10.0.1.0/24"}) {
		t.Errorf("address set %v", as)
	}
	must(e.as.UpdateAddressSet(ctx, &govnv1.UpdateAddressSetRequest{AddressSet: &govnv1.AddressSet{Name: "web", Addresses: []string{"10.0.0.12"}}, UpdateMask: maskOf("addresses")}))
	if out := nbctl(t, e, "--bare", "--columns=addresses", "find", "Address_Set", "name=web"); strings.TrimSpace(out) != "10.0.0.12" {
		t.Errorf("address set via ovn-nbctl: %q", out)
	}

	// Port group.
	pg := must(e.pg.CreatePortGroup(ctx, &govnv1.CreatePortGroupRequest{PortGroup: &govnv1.PortGroup{Name: "pg_web", Ports: []string{"p1"}}}))
	if !slices.Equal(pg.Ports, []string{"p1"}) {
		t.Errorf("port group %v", pg)
	}
	pg = must(e.pg.UpdatePortGroup(ctx, &govnv1.UpdatePortGroupRequest{PortGroup: &govnv1.PortGroup{Name: "pg_web", Ports: []string{"p1", "p2"}}, UpdateMask: maskOf("ports")}))
	if !slices.Equal(pg.Ports, []string{"p1", "p2"}) {
		t.Errorf("port group after update %v", pg)
	}

	// ACLs on the switch and on the port group.
	a1 := must(e.acl.CreateACL(ctx, &govnv1.CreateACLRequest{Acl: &govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: 1001,
		Match: "ip4.src == $web && tcp.dst == 80", Action: "allow-related", Log: true, Name: "web-in"}}))
	if a1.Uuid == "" || a1.Severity != "info" || a1.Switch != "sw0" {
		t.Errorf("acl %v", a1)
	}
	again := must(e.acl.CreateACL(ctx, &govnv1.CreateACLRequest{MayExist: true, Acl: &govnv1.ACL{Switch: "sw0", Direction: "to-lport", Priority: 1001,
		Match: "ip4.src == $web && tcp.dst == 80", Action: "allow-related"}}))
	if again.Uuid != a1.Uuid {
		t.Errorf("may_exist ACL created a second row")
	}
	must(e.acl.CreateACL(ctx, &govnv1.CreateACLRequest{Acl: &govnv1.ACL{PortGroup: "pg_web", Direction: "from-lport", Priority: 1002,
		Match: "inport == @pg_web && ip4.dst == $pg_web_ip4", Action: "drop"}}))
	if out := nbctl(t, e, "acl-list", "sw0"); !strings.Contains(out, "to-lport  1001 (ip4.src == $web && tcp.dst == 80) allow-related log(name=web-in,severity=info)") {
		t.Errorf("ovn-nbctl acl-list sw0: %q", out)
	}
	if out := nbctl(t, e, "acl-list", "pg_web"); !strings.Contains(out, "from-lport  1002 (inport == @pg_web && ip4.dst == $pg_web_ip4) drop") {
		t.Errorf("ovn-nbctl acl-list pg_web: %q", out)
	}
	list := must(e.acl.ListACLs(ctx, &govnv1.ListACLsRequest{}))
	if len(list.Items) != 2 || list.Items[0].PortGroup != "pg_web" || list.Items[1].Switch != "sw0" {
		t.Errorf("ACL list %v", list.Items)
	}
	up := must(e.acl.UpdateACL(ctx, &govnv1.UpdateACLRequest{Acl: &govnv1.ACL{Uuid: a1.Uuid, Action: "drop"}, UpdateMask: maskOf("action")}))
	if up.Action != "drop" || up.Match != a1.Match || up.Priority != 1001 {
		t.Errorf("updated ACL %v", up)
	}
	e.expectNothingWritten(codes.InvalidArgument, func() error {
		_, err := e.acl.UpdateACL(ctx, &govnv1.UpdateACLRequest{Acl: &govnv1.ACL{Uuid: a1.Uuid, Match: "ip4.src =="}, UpdateMask: maskOf("match")})
		return err
	})
	// Port group referenced by an ACL elsewhere cannot go; its own ACLs can.
	must(e.acl.CreateACL(ctx, &govnv1.CreateACLRequest{Acl: &govnv1.ACL{Switch: "sw0", Direction: "from-lport", Priority: 5,
		Match: "outport == @pg_web", Action: "allow"}}))
	e.expectNothingWritten(codes.FailedPrecondition, func() error {
		_, err := e.pg.DeletePortGroup(ctx, &govnv1.DeletePortGroupRequest{Name: "pg_web"})
		return err
	})
	if r := must(e.acl.DeleteACL(ctx, &govnv1.DeleteACLRequest{Switch: "sw0", Direction: "from-lport"})); r.Deleted != 1 {
		t.Errorf("deleted %d ACLs, want 1", r.Deleted)
	}
	if r := must(e.pg.DeletePortGroup(ctx, &govnv1.DeletePortGroupRequest{Name: "pg_web"})); r.Deleted != 1 {
		t.Errorf("deleted %d port groups", r.Deleted)
	}
	if out := nbctl(t, e, "--bare", "--columns=match", "list", "ACL"); strings.TrimSpace(out) != "ip4.src == $web && tcp.dst == 80" {
		t.Errorf("ACLs left: %q", out)
	}
	if r := must(e.acl.DeleteACL(ctx, &govnv1.DeleteACLRequest{Uuid: a1.Uuid})); r.Deleted != 1 {
		t.Errorf("deleted %d", r.Deleted)
	}
	must(e.as.DeleteAddressSet(ctx, &govnv1.DeleteAddressSetRequest{Name: "web"}))

	// Load balancer, attached to the switch, then deleted (detached in the same transaction).
	lb := must(e.lb.CreateLoadBalancer(ctx, &govnv1.CreateLoadBalancerRequest{LoadBalancer: &govnv1.LoadBalancer{Name: "lb0",
		Vips: map[string]string{"10.0.0.100:80": "10.0.0.11:8080,10.0.0.12:8080"}, Protocol: "tcp"}}))
	if lb.Vips["10.0.0.100:80"] != "10.0.0.11:8080,10.0.0.12:8080" {
		t.Errorf("lb %v", lb)
	}
	ls := must(e.ls.UpdateLogicalSwitch(ctx, &govnv1.UpdateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0", LoadBalancers: []string{"lb0"}}, UpdateMask: maskOf("load_balancers")}))
	if !slices.Equal(ls.LoadBalancers, []string{"lb0"}) {
		t.Errorf("switch LBs %v", ls.LoadBalancers)
	}
	if out := nbctl(t, e, "ls-lb-list", "sw0"); !strings.Contains(out, "lb0") || !strings.Contains(out, "10.0.0.100:80") {
		t.Errorf("ovn-nbctl ls-lb-list: %q", out)
	}
	must(e.lb.UpdateLoadBalancer(ctx, &govnv1.UpdateLoadBalancerRequest{LoadBalancer: &govnv1.LoadBalancer{Name: "lb0", Vips: map[string]string{"10.0.0.100:443": "10.0.0.11:8443"}}, UpdateMask: maskOf("vips")}))
	must(e.lb.DeleteLoadBalancer(ctx, &govnv1.DeleteLoadBalancerRequest{Name: "lb0"}))
	if got := must(e.ls.GetLogicalSwitch(ctx, &govnv1.GetLogicalSwitchRequest{Name: "sw0"})); len(got.LoadBalancers) != 0 {
		t.Errorf("switch still has LBs %v", got.LoadBalancers)
	}
}

// TestACLTierAndPass: the tier column and the "pass" action through the API:
// created, listed in evaluation order (tier, then priority), updated, the
// duplicate check keys on the tier, a bad tier on update writes nothing, and
// ovn-nbctl 23.03 still lists the switch's ACLs.
func TestACLTierAndPass(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	must(e.ls.CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0"}}))
	pass := must(e.acl.CreateACL(ctx, &govnv1.CreateACLRequest{Acl: &govnv1.ACL{Switch: "sw0", Direction: "from-lport", Priority: 100,
		Match: "ip4", Action: "pass"}}))
	drop := must(e.acl.CreateACL(ctx, &govnv1.CreateACLRequest{Acl: &govnv1.ACL{Switch: "sw0", Direction: "from-lport", Priority: 100,
		Match: "ip4", Action: "drop", Tier: 2}}))
	if pass.Tier != 0 || pass.Action != "pass" || drop.Tier != 2 {
		t.Errorf("created %v and %v", pass, drop)
	}
	// Same direction, priority and match in the same tier is a duplicate.
	e.expectNothingWritten(codes.AlreadyExists, func() error {
		_, err := e.acl.CreateACL(ctx, &govnv1.CreateACLRequest{Acl: &govnv1.ACL{Switch: "sw0", Direction: "from-lport", Priority: 100,
			Match: "ip4", Action: "allow", Tier: 2}})
		return err
	})
	low := must(e.acl.CreateACL(ctx, &govnv1.CreateACLRequest{Acl: &govnv1.ACL{Switch: "sw0", Direction: "from-lport", Priority: 5,
		Match: "udp", Action: "allow"}}))
	list := must(e.acl.ListACLs(ctx, &govnv1.ListACLsRequest{Switch: "sw0"}))
	var order []string
	for _, a := range list.Items {
		order = append(order, a.Uuid)
	}
	if want := []string{pass.Uuid, low.Uuid, drop.Uuid}; !slices.Equal(order, want) {
		t.Errorf("list order %v, want tier 0 (priority 100, 5) then tier 2: %v", order, want)
	}
	up := must(e.acl.UpdateACL(ctx, &govnv1.UpdateACLRequest{Acl: &govnv1.ACL{Uuid: drop.Uuid, Tier: 3}, UpdateMask: maskOf("tier")}))
	if up.Tier != 3 || up.Action != "drop" || up.Match != "ip4" {
		t.Errorf("after tier update: %v", up)
	}
	e.expectNothingWritten(codes.InvalidArgument, func() error {
		_, err := e.acl.UpdateACL(ctx, &govnv1.UpdateACLRequest{Acl: &govnv1.ACL{Uuid: drop.Uuid, Tier: 7}, UpdateMask: maskOf("tier")})
		return err
	})
	got := must(e.acl.GetACL(ctx, &govnv1.GetACLRequest{Uuid: drop.Uuid}))
	if got.Tier != 3 {
		t.Errorf("tier after rejected update: %d", got.Tier)
	}
	// What the server stored (ovn-nbctl 23.03 does not know the column).
	dump := strings.Join(strings.Fields(dbservertest.Run(t, "ovsdb-client", "dump", e.db.Endpoint(), nbdb.DatabaseName,
		"ACL", "action", "match", "tier")), " ")
	for _, want := range []string{"allow udp 0", "drop ip4 3", "pass ip4 0"} {
		if !strings.Contains(dump, want) {
			t.Errorf("stored ACLs lack %q: %s", want, dump)
		}
	}
	if out := nbctl(t, e, "acl-list", "sw0"); strings.Count(out, "\n") != 3 {
		t.Errorf("ovn-nbctl acl-list sw0: %q", out)
	}
	// Delete by tier: only that tier's ACLs go.
	e.expectNothingWritten(codes.InvalidArgument, func() error {
		bad := int32(4)
		_, err := e.acl.DeleteACL(ctx, &govnv1.DeleteACLRequest{Switch: "sw0", Tier: &bad})
		return err
	})
	three := int32(3)
	if r := must(e.acl.DeleteACL(ctx, &govnv1.DeleteACLRequest{Switch: "sw0", Direction: "from-lport", Tier: &three})); r.Deleted != 1 {
		t.Errorf("delete tier 3: deleted %d, want 1", r.Deleted)
	}
	if left := must(e.acl.ListACLs(ctx, &govnv1.ListACLsRequest{Switch: "sw0"})); len(left.Items) != 2 || left.Items[0].Tier != 0 || left.Items[1].Tier != 0 {
		t.Errorf("after deleting tier 3: %v", left.Items)
	}
}
