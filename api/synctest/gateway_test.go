package synctest

import (
	"strings"
	"testing"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/internal/dbserver/dbservertest"
)

// TestGatewayThroughAPI: what the API's gateway calls write is what govn's
// northd consumes — a gateway chassis on a router port gives the
// chassisredirect binding cr-<port>, options:chassis on a router gives
// l3gateway bindings, a localnet port's --tag reaches its Port_Binding, and
// a "router" address is resolved to the router port's MAC and networks.
func TestGatewayThroughAPI(t *testing.T) {
	if _, err := dbservertest.RunErr("ovn-sbctl", "--version"); err != nil {
		t.Skipf("ovn-sbctl not installed: %v", err)
	}
	e := newTraceEnv(t)
	ctx := e.ctx
	ls := govnv1.NewLogicalSwitchServiceClient(e.conn)
	lsp := govnv1.NewLogicalSwitchPortServiceClient(e.conn)
	lr := govnv1.NewLogicalRouterServiceClient(e.conn)
	lrp := govnv1.NewLogicalRouterPortServiceClient(e.conn)
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	tag := int32(100)
	must(ls.CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "ext"}}))
	must(lsp.CreateLogicalSwitchPort(ctx, &govnv1.CreateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{
		Name: "ln-ext", Switch: "ext", Type: "localnet", Addresses: []string{"unknown"}, Options: map[string]string{"network_name": "physnet"}, TagRequest: &tag}}))
	must(lr.CreateLogicalRouter(ctx, &govnv1.CreateLogicalRouterRequest{LogicalRouter: &govnv1.LogicalRouter{Name: "dr"}}))
	must(lrp.CreateLogicalRouterPort(ctx, &govnv1.CreateLogicalRouterPortRequest{LogicalRouterPort: &govnv1.LogicalRouterPort{
		Name: "dr-ext", Router: "dr", Mac: "00:00:00:00:ff:fe", Networks: []string{"172.20.0.254/24"}}}))
	must(lsp.CreateLogicalSwitchPort(ctx, &govnv1.CreateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{
		Name: "ext-dr", Switch: "ext", Type: "router", Addresses: []string{"router"}, Options: map[string]string{"router-port": "dr-ext"}}}))
	must(lrp.SetGatewayChassis(ctx, &govnv1.SetGatewayChassisRequest{Port: "dr-ext", ChassisName: "ch1", Priority: 20}))
	must(lrp.SetGatewayChassis(ctx, &govnv1.SetGatewayChassisRequest{Port: "dr-ext", ChassisName: "ch2", Priority: 10}))
	e.syncSB()

	sbctl := func(args ...string) string {
		t.Helper()
		return dbservertest.Run(t, "ovn-sbctl", append([]string{"--db=" + e.sb.Endpoint()}, args...)...)
	}
	cr := sbctl("--columns=type,options", "find", "port_binding", "logical_port=cr-dr-ext")
	for _, w := range []string{"chassisredirect", "distributed-port=dr-ext"} {
		if !strings.Contains(cr, w) {
			t.Errorf("Port_Binding cr-dr-ext lacks %q:\n%s", w, cr)
		}
	}
	if ln := sbctl("--columns=tag", "find", "port_binding", "logical_port=ln-ext"); !strings.Contains(ln, "100") {
		t.Errorf("Port_Binding ln-ext tag:\n%s", ln)
	}
	// The "router" address: the switch port's binding carries the router
	// port's MAC and network (is_chassis_resident of the cr port, as OVN).
	if mac := sbctl("--columns=mac", "find", "port_binding", "logical_port=ext-dr"); !strings.Contains(mac, "router") {
		t.Errorf("Port_Binding ext-dr mac:\n%s", mac)
	}
	if fl := sbctl("--columns=match", "find", "logical_flow", `external_ids:stage-name=ls_in_l2_lkup`); !strings.Contains(fl, "eth.dst == 00:00:00:00:ff:fe") {
		t.Errorf("no L2 lookup flow for the router port's MAC:\n%s", fl)
	}

	// Removing the gateway chassis removes the chassisredirect binding.
	must(lrp.DeleteGatewayChassis(ctx, &govnv1.DeleteGatewayChassisRequest{Port: "dr-ext", ChassisName: "ch1"}))
	must(lrp.DeleteGatewayChassis(ctx, &govnv1.DeleteGatewayChassisRequest{Port: "dr-ext", ChassisName: "ch2"}))
	e.syncSB()
	if cr := sbctl("--columns=type", "find", "port_binding", "logical_port=cr-dr-ext"); strings.Contains(cr, "chassisredirect") {
		t.Errorf("cr-dr-ext still bound after deleting its gateway chassis:\n%s", cr)
	}

	// A gateway router: options:chassis set through SetLogicalRouterOptions.
	must(lr.SetLogicalRouterOptions(ctx, &govnv1.SetOptionsRequest{Name: "dr", Set: map[string]string{"chassis": "ch1"}}))
	e.syncSB()
	if pb := sbctl("--columns=type,options", "find", "port_binding", "logical_port=dr-ext"); !strings.Contains(pb, "l3gateway") || !strings.Contains(pb, "l3gateway-chassis=ch1") {
		t.Errorf("Port_Binding dr-ext of a gateway router:\n%s", pb)
	}
}
