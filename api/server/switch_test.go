package server_test

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	govnv1 "github.com/govn/govn/api/govnv1"
)

func TestSwitchAndPortCRUD(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	ls := must(e.ls.CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{
		Name: "sw0", ExternalIds: map[string]string{"owner": "test"}}}))
	if ls.Name != "sw0" || ls.Uuid == "" || ls.ExternalIds["owner"] != "test" {
		t.Fatalf("created %v", ls)
	}
	// Idempotent create with may_exist; duplicate without it.
	again := must(e.ls.CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0"}, MayExist: true}))
	if again.Uuid != ls.Uuid {
		t.Fatalf("may_exist created a new switch: %v vs %v", again, ls)
	}
	e.expectNothingWritten(codes.AlreadyExists, func() error {
		_, err := e.ls.CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0"}})
		return err
	})

	p1 := must(e.lsp.CreateLogicalSwitchPort(ctx, &govnv1.CreateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{
		Name: "p1", Switch: "sw0", Addresses: []string{"00:00:00:00:00:01 10.0.0.11"}, PortSecurity: []string{"00:00:00:00:00:01 10.0.0.11/32"}}}))
	if p1.Switch != "sw0" || !slices.Equal(p1.Addresses, []string{"00:00:00:00:00:01 10.0.0.11"}) {
		t.Fatalf("port %v", p1)
	}
	must(e.lsp.CreateLogicalSwitchPort(ctx, &govnv1.CreateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{
		Name: "p2", Switch: "sw0", Addresses: []string{"dynamic"}}}))
	// Real ovn-nbctl sees what the API wrote.
	show := nbctl(t, e, "show")
	contains(t, "ovn-nbctl show", show, "switch", "(sw0)", "port p1", `addresses: ["00:00:00:00:00:01 10.0.0.11"]`, "port p2")
	if got := strings.TrimSpace(nbctl(t, e, "lsp-get-port-security", "p1")); got != "00:00:00:00:00:01 10.0.0.11/32" {
		t.Errorf("port security via ovn-nbctl: %q", got)
	}

	// Get/List reflect it.
	got := must(e.ls.GetLogicalSwitch(ctx, &govnv1.GetLogicalSwitchRequest{Name: "sw0"}))
	if !slices.Equal(got.Ports, []string{"p1", "p2"}) {
		t.Errorf("switch ports %v", got.Ports)
	}
	list := must(e.lsp.ListLogicalSwitchPorts(ctx, &govnv1.ListLogicalSwitchPortsRequest{Switch: "sw0"}))
	if len(list.Items) != 2 || list.Items[0].Name != "p1" || list.Items[1].Name != "p2" {
		t.Errorf("ports %v", list.Items)
	}

	// Update only the addresses (field mask); port security stays.
	up := must(e.lsp.UpdateLogicalSwitchPort(ctx, &govnv1.UpdateLogicalSwitchPortRequest{
		LogicalSwitchPort: &govnv1.LogicalSwitchPort{Name: "p1", Addresses: []string{"00:00:00:00:00:01 10.0.0.12", "unknown"}},
		UpdateMask:        &fieldmaskpb.FieldMask{Paths: []string{"addresses"}}}))
	if !slices.Equal(up.Addresses, []string{"00:00:00:00:00:01 10.0.0.12", "unknown"}) || len(up.PortSecurity) != 1 {
		t.Errorf("updated port %v", up)
	}
	if out := nbctl(t, e, "lsp-get-addresses", "p1"); !strings.Contains(out, "10.0.0.12") {
		t.Errorf("ovn-nbctl lsp-get-addresses: %q", out)
	}
	// Switch update.
	ls2 := must(e.ls.UpdateLogicalSwitch(ctx, &govnv1.UpdateLogicalSwitchRequest{
		LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0", OtherConfig: map[string]string{"subnet": "10.0.0.0/24"}},
		UpdateMask:    &fieldmaskpb.FieldMask{Paths: []string{"other_config"}}}))
	if ls2.OtherConfig["subnet"] != "10.0.0.0/24" || ls2.ExternalIds["owner"] != "test" {
		t.Errorf("updated switch %v", ls2)
	}

	// Delete a port, then the switch (its remaining port goes with it).
	if r := must(e.lsp.DeleteLogicalSwitchPort(ctx, &govnv1.DeleteLogicalSwitchPortRequest{Name: "p1"})); r.Deleted != 1 {
		t.Errorf("deleted %d", r.Deleted)
	}
	e.expectNothingWritten(codes.NotFound, func() error {
		_, err := e.lsp.GetLogicalSwitchPort(ctx, &govnv1.GetLogicalSwitchPortRequest{Name: "p1"})
		return err
	})
	if r := must(e.lsp.DeleteLogicalSwitchPort(ctx, &govnv1.DeleteLogicalSwitchPortRequest{Name: "p1", IfExists: true})); r.Deleted != 0 {
		t.Errorf("if_exists deleted %d", r.Deleted)
	}
	must(e.ls.DeleteLogicalSwitch(ctx, &govnv1.DeleteLogicalSwitchRequest{Name: "sw0"}))
	if out := nbctl(t, e, "show"); strings.TrimSpace(out) != "" {
		t.Errorf("after delete, ovn-nbctl show: %q", out)
	}
	if out := nbctl(t, e, "--columns=name", "list", "Logical_Switch_Port"); strings.TrimSpace(out) != "" {
		t.Errorf("ports left behind: %q", out)
	}
}
