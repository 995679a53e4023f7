package server

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/validate"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
	"github.com/govn/govn/northd"
)

// Gateway routers (Logical_Router options), distributed gateway ports
// (Gateway_Chassis rows) and option edits of routers and load balancers.

// mutateOptions appends one mutate of the options column of row uuid in
// table: the keys of set and remove are deleted, then set is inserted
// (OVSDB's map insert never replaces a key, hence the delete first). Keys
// not named are left alone, whoever wrote them.
func (t *txn) mutateOptions(table, uuid string, set map[string]string, remove []string) {
	var keys []any
	for k := range set {
		keys = append(keys, k)
	}
	for _, k := range remove {
		keys = append(keys, k)
	}
	ins := ovsdb.OvsMap{GoMap: map[any]any{}}
	for k, v := range set {
		ins.GoMap[k] = v
	}
	t.ops = append(t.ops, ovsdb.Operation{
		Op: ovsdb.OperationMutate, Table: table,
		Where: []ovsdb.Condition{ovsdb.NewCondition("_uuid", ovsdb.ConditionEqual, ovsdb.UUID{GoUUID: uuid})},
		Mutations: []ovsdb.Mutation{
			*ovsdb.NewMutation("options", ovsdb.MutateOperationDelete, ovsdb.OvsSet{GoSet: keys}),
			*ovsdb.NewMutation("options", ovsdb.MutateOperationInsert, ins),
		},
	})
}

// checkOptionEdit validates the keys of a SetOptionsRequest and returns
// opts with the edit applied.
func checkOptionEdit(resource string, opts map[string]string, req *govnv1.SetOptionsRequest) (map[string]string, error) {
	if len(req.Set) == 0 && len(req.Remove) == 0 {
		return nil, badField(resource, "set", "", "nothing to set or remove")
	}
	out := map[string]string{}
	for k, v := range opts {
		out[k] = v
	}
	for k, v := range req.Set {
		if k == "" {
			return nil, badField(resource, "set", "="+v, "empty option key")
		}
		if slices.Contains(req.Remove, k) {
			return nil, badField(resource, "remove", k, "option %q is both set and removed", k)
		}
		out[k] = v
	}
	for _, k := range req.Remove {
		delete(out, k)
	}
	return out, nil
}

// checkRouterOptions checks the router options northd interprets.
func checkRouterOptions(opts map[string]string) error {
	if c, ok := opts["chassis"]; ok {
		if err := validate.Name("options:chassis", c); err != nil {
			return invalid("logical_router", err)
		}
	}
	for _, key := range []string{"lb_force_snat_ip", "dnat_force_snat_ip"} {
		s, ok := opts[key]
		if !ok {
			continue
		}
		if key == "lb_force_snat_ip" && s == "router_ip" {
			continue
		}
		fields := strings.Fields(s)
		if len(fields) == 0 {
			return badField("logical_router", "options:"+key, s, "empty: give an IPv4 and/or an IPv6 address")
		}
		var v4, v6 int
		for _, f := range fields {
			a, err := netip.ParseAddr(f)
			if err != nil || a.Zone() != "" || a.Is4In6() {
				return badField("logical_router", "options:"+key, s, "%q is not an IP address", f)
			}
			if a.Is4() {
				v4++
			} else {
				v6++
			}
		}
		if v4 > 1 || v6 > 1 {
			return badField("logical_router", "options:"+key, s, "more than one address of a family")
		}
	}
	return nil
}

// checkLBParse runs northd's own parser over the load balancer: a VIP or
// option northd would ignore (and log) is refused here instead.
func checkLBParse(in *govnv1.LoadBalancer) error {
	_, errs := northd.ParseLB(&northd.LoadBalancer{Name: in.Name, Vips: in.Vips, Protocol: in.Protocol,
		Options: in.Options, SelectionFields: in.SelectionFields})
	if len(errs) == 0 {
		return nil
	}
	msg := errs[0].Error()
	field := "vips"
	if strings.HasPrefix(msg, "options:") {
		field = "options"
	} else if strings.HasPrefix(msg, "protocol") {
		field = "protocol"
	}
	return badField("load_balancer", field, "", "%s", msg)
}

func (x routerService) SetLogicalRouterOptions(ctx context.Context, req *govnv1.SetOptionsRequest) (*govnv1.LogicalRouter, error) {
	s := x.s
	lr, err := s.routerByName(req.Name)
	if err != nil {
		return nil, err
	}
	merged, err := checkOptionEdit("logical_router", lr.Options, req)
	if err != nil {
		return nil, err
	}
	if err := checkRouterOptions(merged); err != nil {
		return nil, err
	}
	t := s.txn()
	t.exists(nbdb.LogicalRouterTable, lr.UUID, notFound("logical router %q was deleted concurrently", req.Name))
	t.mutateOptions(nbdb.LogicalRouterTable, lr.UUID, req.Set, req.Remove)
	if _, err := t.commit(ctx); err != nil {
		return nil, err
	}
	if err := s.waitOptions(ctx, func() (map[string]string, bool) {
		got, ok, _ := lookup(s, &nbdb.LogicalRouter{UUID: lr.UUID})
		if !ok {
			return nil, false
		}
		return got.Options, true
	}, req); err != nil {
		return nil, err
	}
	got, err := s.routerByName(req.Name)
	if err != nil {
		return nil, err
	}
	return s.routerProto(got), nil
}

func (x lbService) SetLoadBalancerOptions(ctx context.Context, req *govnv1.SetOptionsRequest) (*govnv1.LoadBalancer, error) {
	s := x.s
	lb, err := s.lbByName(req.Name)
	if err != nil {
		return nil, err
	}
	merged, err := checkOptionEdit("load_balancer", lb.Options, req)
	if err != nil {
		return nil, err
	}
	in := lbProto(lb)
	in.Options = merged
	if err := checkLB(in); err != nil {
		return nil, err
	}
	t := s.txn()
	t.exists(nbdb.LoadBalancerTable, lb.UUID, notFound("load balancer %q was deleted concurrently", req.Name))
	t.mutateOptions(nbdb.LoadBalancerTable, lb.UUID, req.Set, req.Remove)
	if _, err := t.commit(ctx); err != nil {
		return nil, err
	}
	if err := s.waitOptions(ctx, func() (map[string]string, bool) {
		got, ok, _ := lookup(s, &nbdb.LoadBalancer{UUID: lb.UUID})
		if !ok {
			return nil, false
		}
		return got.Options, true
	}, req); err != nil {
		return nil, err
	}
	got, err := s.lbByName(req.Name)
	if err != nil {
		return nil, err
	}
	return lbProto(got), nil
}

// waitOptions waits until the cache shows the option edit (or the row gone).
func (s *Server) waitOptions(ctx context.Context, get func() (map[string]string, bool), req *govnv1.SetOptionsRequest) error {
	return s.waitCache(ctx, func() bool {
		opts, ok := get()
		if !ok {
			return true
		}
		for k, v := range req.Set {
			if opts[k] != v {
				return false
			}
		}
		for _, k := range req.Remove {
			if _, ok := opts[k]; ok {
				return false
			}
		}
		return true
	})
}

// gatewayChassisProto lists a port's Gateway_Chassis rows, highest
// priority first (then by chassis name).
func (s *Server) gatewayChassisProto(uuids []string) []*govnv1.GatewayChassis {
	var out []*govnv1.GatewayChassis
	for _, u := range uuids {
		if g, ok, _ := lookup(s, &nbdb.GatewayChassis{UUID: u}); ok {
			out = append(out, &govnv1.GatewayChassis{Name: g.Name, Uuid: g.UUID, ChassisName: g.ChassisName, Priority: int32(g.Priority)})
		}
	}
	slices.SortFunc(out, func(a, b *govnv1.GatewayChassis) int {
		if a.Priority != b.Priority {
			return int(b.Priority - a.Priority)
		}
		return cmpStr(a.ChassisName, b.ChassisName)
	})
	return out
}

func gatewayChassisName(port, chassis string) string { return port + "-" + chassis }

// portGatewayChassis finds the port's Gateway_Chassis row for chassis.
func (s *Server) portGatewayChassis(p *nbdb.LogicalRouterPort, chassis string) *nbdb.GatewayChassis {
	for _, u := range p.GatewayChassis {
		if g, ok, _ := lookup(s, &nbdb.GatewayChassis{UUID: u}); ok && g.ChassisName == chassis {
			return g
		}
	}
	return nil
}

func (x routerPortService) SetGatewayChassis(ctx context.Context, req *govnv1.SetGatewayChassisRequest) (*govnv1.LogicalRouterPort, error) {
	s := x.s
	if err := validate.Name("chassis_name", req.ChassisName); err != nil {
		return nil, invalid("gateway_chassis", err)
	}
	if req.Priority < 0 || req.Priority > 32767 {
		return nil, badField("gateway_chassis", "priority", fmt.Sprint(req.Priority), "out of range 0..32767")
	}
	p, err := s.routerPortByName(req.Port)
	if err != nil {
		return nil, err
	}
	t := s.txn()
	t.exists(nbdb.LogicalRouterPortTable, p.UUID, notFound("logical router port %q was deleted concurrently", req.Port))
	if g := s.portGatewayChassis(p, req.ChassisName); g != nil {
		t.exists(nbdb.GatewayChassisTable, g.UUID, conflict("gateway chassis %q was deleted concurrently; retry", g.Name))
		upd := &nbdb.GatewayChassis{UUID: g.UUID, Priority: int(req.Priority)}
		if err := t.add(ovsdbclient.UpdateOps(s.nb, t.ops, upd, &upd.Priority)); err != nil {
			return nil, err
		}
		if _, err := t.commit(ctx); err != nil {
			return nil, err
		}
		if err := s.waitCache(ctx, func() bool {
			got, ok, _ := lookup(s, &nbdb.GatewayChassis{UUID: g.UUID})
			return !ok || got.Priority == int(req.Priority)
		}); err != nil {
			return nil, err
		}
	} else {
		name := gatewayChassisName(req.Port, req.ChassisName)
		t.absent(nbdb.GatewayChassisTable, "name", name, alreadyExists("gateway chassis %q already exists (on another port)", name))
		g := &nbdb.GatewayChassis{UUID: ovsdbclient.NamedUUID(), Name: name, ChassisName: req.ChassisName, Priority: int(req.Priority)}
		if err := t.add(ovsdbclient.CreateOps(s.nb, t.ops, g)); err != nil {
			return nil, err
		}
		t.insertInto(nbdb.LogicalRouterPortTable, p.UUID, "gateway_chassis", true, g.UUID)
		if _, err := t.commitAndSee(ctx, nbdb.GatewayChassisTable, g.UUID, nil); err != nil {
			return nil, err
		}
		if err := s.waitCache(ctx, func() bool {
			got, ok, _ := lookup(s, &nbdb.LogicalRouterPort{UUID: p.UUID})
			return !ok || s.portGatewayChassis(got, req.ChassisName) != nil
		}); err != nil {
			return nil, err
		}
	}
	return x.GetLogicalRouterPort(ctx, &govnv1.GetLogicalRouterPortRequest{Name: req.Port})
}

func (x routerPortService) DeleteGatewayChassis(ctx context.Context, req *govnv1.DeleteGatewayChassisRequest) (*govnv1.LogicalRouterPort, error) {
	s := x.s
	p, err := s.routerPortByName(req.Port)
	if err != nil {
		return nil, err
	}
	g := s.portGatewayChassis(p, req.ChassisName)
	if g == nil {
		if req.IfExists {
			return x.GetLogicalRouterPort(ctx, &govnv1.GetLogicalRouterPortRequest{Name: req.Port})
		}
		return nil, notFound("logical router port %q has no gateway chassis %q", req.Port, req.ChassisName)
	}
	t := s.txn()
	t.exists(nbdb.LogicalRouterPortTable, p.UUID, notFound("logical router port %q was deleted concurrently", req.Port))
	t.insertInto(nbdb.LogicalRouterPortTable, p.UUID, "gateway_chassis", false, g.UUID)
	if err := t.add(ovsdbclient.DeleteOps(s.nb, t.ops, &nbdb.GatewayChassis{UUID: g.UUID})); err != nil {
		return nil, err
	}
	if _, err := t.commitAndSee(ctx, "", "", map[string][]string{nbdb.GatewayChassisTable: {g.UUID}}); err != nil {
		return nil, err
	}
	if err := s.waitCache(ctx, func() bool {
		got, ok, _ := lookup(s, &nbdb.LogicalRouterPort{UUID: p.UUID})
		return !ok || !slices.Contains(got.GatewayChassis, g.UUID)
	}); err != nil {
		return nil, err
	}
	return x.GetLogicalRouterPort(ctx, &govnv1.GetLogicalRouterPortRequest{Name: req.Port})
}
