package server

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/validate"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

type lbService struct {
	govnv1.UnimplementedLoadBalancerServiceServer
	s *Server
}

// lbNames maps load balancer UUIDs to sorted names.
func (s *Server) lbNames(uuids []string) []string {
	var out []string
	for _, u := range uuids {
		if lb, ok, _ := lookup(s, &nbdb.LoadBalancer{UUID: u}); ok {
			out = append(out, lb.Name)
		}
	}
	slices.Sort(out)
	return out
}

// lbUUIDs resolves load balancer names, asserting in t that they still exist.
func (s *Server) lbUUIDs(t *txn, resource string, names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		lb, ok, err := lookup(s, &nbdb.LoadBalancer{Name: n})
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, notFound("%s load_balancers: load balancer %q not found", resource, n)
		}
		if !slices.Contains(out, lb.UUID) {
			out = append(out, lb.UUID)
			t.exists(nbdb.LoadBalancerTable, lb.UUID, notFound("load balancer %q was deleted concurrently", n))
		}
	}
	return out, nil
}

func lbProto(lb *nbdb.LoadBalancer) *govnv1.LoadBalancer {
	out := &govnv1.LoadBalancer{Name: lb.Name, Uuid: lb.UUID, Vips: cloneMap(lb.Vips), Options: cloneMap(lb.Options),
		ExternalIds: cloneMap(lb.ExternalIDs)}
	if lb.Protocol != nil {
		out.Protocol = string(*lb.Protocol)
	}
	for _, f := range lb.SelectionFields {
		out.SelectionFields = append(out.SelectionFields, string(f))
	}
	return out
}

func (s *Server) lbByName(name string) (*nbdb.LoadBalancer, error) {
	lb, ok, err := lookup(s, &nbdb.LoadBalancer{Name: name})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("load balancer %q not found", name)
	}
	return lb, nil
}

func checkLB(in *govnv1.LoadBalancer) error {
	if err := validate.LoadBalancer(in.Vips, in.Protocol, in.SelectionFields); err != nil {
		return invalid("load_balancer", err)
	}
	return checkLBParse(in)
}

func setLBFields(lb *nbdb.LoadBalancer, in *govnv1.LoadBalancer, fs fieldSet) []any {
	var fields []any
	if fs["vips"] {
		lb.Vips = nonNilMap(cloneMap(in.Vips))
		fields = append(fields, &lb.Vips)
	}
	if fs["protocol"] {
		lb.Protocol = nil
		if in.Protocol != "" {
			lb.Protocol = ptr(nbdb.LoadBalancerProtocol(in.Protocol))
		}
		fields = append(fields, &lb.Protocol)
	}
	if fs["selection_fields"] {
		lb.SelectionFields = []nbdb.LoadBalancerSelectionFields{}
		for _, f := range in.SelectionFields {
			lb.SelectionFields = append(lb.SelectionFields, nbdb.LoadBalancerSelectionFields(f))
		}
		fields = append(fields, &lb.SelectionFields)
	}
	if fs["options"] {
		lb.Options = nonNilMap(cloneMap(in.Options))
		fields = append(fields, &lb.Options)
	}
	if fs["external_ids"] {
		lb.ExternalIDs = nonNilMap(cloneMap(in.ExternalIds))
		fields = append(fields, &lb.ExternalIDs)
	}
	return fields
}

var lbSettable = []string{"vips", "protocol", "selection_fields", "options", "external_ids"}

func (x lbService) CreateLoadBalancer(ctx context.Context, req *govnv1.CreateLoadBalancerRequest) (*govnv1.LoadBalancer, error) {
	s := x.s
	in := req.GetLoadBalancer()
	if in == nil {
		return nil, badField("load_balancer", "", "", "missing")
	}
	if err := validate.Name("name", in.Name); err != nil {
		return nil, invalid("load_balancer", err)
	}
	if err := checkLB(in); err != nil {
		return nil, err
	}
	if old, ok, err := lookup(s, &nbdb.LoadBalancer{Name: in.Name}); err != nil {
		return nil, err
	} else if ok {
		if req.MayExist {
			return lbProto(old), nil
		}
		return nil, alreadyExists("load balancer %q already exists", in.Name)
	}
	lb := &nbdb.LoadBalancer{UUID: ovsdbclient.NamedUUID(), Name: in.Name}
	all := fieldSet{}
	for _, f := range lbSettable {
		all[f] = true
	}
	setLBFields(lb, in, all)
	t := s.txn()
	t.absent(nbdb.LoadBalancerTable, "name", in.Name, alreadyExists("load balancer %q already exists", in.Name))
	if err := t.add(ovsdbclient.CreateOps(s.nb, t.ops, lb)); err != nil {
		return nil, err
	}
	uuid, err := t.commitAndSee(ctx, nbdb.LoadBalancerTable, lb.UUID, nil)
	if err != nil {
		return nil, err
	}
	got, ok, err := lookup(s, &nbdb.LoadBalancer{UUID: uuid})
	if err != nil || !ok {
		return nil, internal(errOrGone(err, "load balancer", in.Name))
	}
	return lbProto(got), nil
}

func (x lbService) GetLoadBalancer(_ context.Context, req *govnv1.GetLoadBalancerRequest) (*govnv1.LoadBalancer, error) {
	lb, err := x.s.lbByName(req.Name)
	if err != nil {
		return nil, err
	}
	return lbProto(lb), nil
}

func (x lbService) ListLoadBalancers(ctx context.Context, _ *govnv1.ListLoadBalancersRequest) (*govnv1.ListLoadBalancersResponse, error) {
	rows, err := listAll[nbdb.LoadBalancer](ctx, x.s)
	if err != nil {
		return nil, err
	}
	out := &govnv1.ListLoadBalancersResponse{}
	for i := range rows {
		out.Items = append(out.Items, lbProto(&rows[i]))
	}
	slices.SortFunc(out.Items, func(a, b *govnv1.LoadBalancer) int { return cmpStr(a.Name, b.Name) })
	return out, nil
}

func (x lbService) UpdateLoadBalancer(ctx context.Context, req *govnv1.UpdateLoadBalancerRequest) (*govnv1.LoadBalancer, error) {
	s := x.s
	in := req.GetLoadBalancer()
	if in == nil {
		return nil, badField("load_balancer", "", "", "missing")
	}
	fs, err := updateFields("load_balancer", req.UpdateMask, lbSettable...)
	if err != nil {
		return nil, err
	}
	lb, err := s.lbByName(in.Name)
	if err != nil {
		return nil, err
	}
	merged := lbProto(lb)
	if fs["vips"] {
		merged.Vips = maps.Clone(in.Vips)
	}
	if fs["protocol"] {
		merged.Protocol = in.Protocol
	}
	if fs["selection_fields"] {
		merged.SelectionFields = in.SelectionFields
	}
	if fs["options"] {
		merged.Options = maps.Clone(in.Options)
	}
	if err := checkLB(merged); err != nil {
		return nil, err
	}
	t := s.txn()
	t.exists(nbdb.LoadBalancerTable, lb.UUID, notFound("load balancer %q was deleted concurrently", in.Name))
	if err := t.add(ovsdbclient.UpdateOps(s.nb, t.ops, lb, setLBFields(lb, in, fs)...)); err != nil {
		return nil, err
	}
	if _, err := t.commit(ctx); err != nil {
		return nil, err
	}
	got, err := s.lbByName(in.Name)
	if err != nil {
		return nil, err
	}
	return lbProto(got), nil
}

func (x lbService) DeleteLoadBalancer(ctx context.Context, req *govnv1.DeleteLoadBalancerRequest) (*govnv1.DeleteResponse, error) {
	s := x.s
	lb, ok, err := lookup(s, &nbdb.LoadBalancer{Name: req.Name})
	if err != nil {
		return nil, err
	}
	if !ok {
		if req.IfExists {
			return &govnv1.DeleteResponse{}, nil
		}
		return nil, notFound("load balancer %q not found", req.Name)
	}
	t := s.txn()
	// Detach it from every switch and router that uses it, then delete it:
	// one transaction.
	switches, err := listAll[nbdb.LogicalSwitch](ctx, s)
	if err != nil {
		return nil, err
	}
	for _, ls := range switches {
		if slices.Contains(ls.LoadBalancer, lb.UUID) {
			sel := &nbdb.LogicalSwitch{UUID: ls.UUID}
			if err := t.add(ovsdbclient.MutateOps(s.nb, t.ops, sel, mutateSet(&sel.LoadBalancer, false, lb.UUID))); err != nil {
				return nil, err
			}
		}
	}
	routers, err := listAll[nbdb.LogicalRouter](ctx, s)
	if err != nil {
		return nil, err
	}
	for _, lr := range routers {
		if slices.Contains(lr.LoadBalancer, lb.UUID) {
			sel := &nbdb.LogicalRouter{UUID: lr.UUID}
			if err := t.add(ovsdbclient.MutateOps(s.nb, t.ops, sel, mutateSet(&sel.LoadBalancer, false, lb.UUID))); err != nil {
				return nil, err
			}
		}
	}
	if err := t.add(ovsdbclient.DeleteOps(s.nb, t.ops, &nbdb.LoadBalancer{UUID: lb.UUID})); err != nil {
		return nil, err
	}
	if _, err := t.commitAndSee(ctx, "", "", map[string][]string{nbdb.LoadBalancerTable: {lb.UUID}}); err != nil {
		return nil, err
	}
	return &govnv1.DeleteResponse{Deleted: 1}, nil
}

func (x lbService) AttachLoadBalancer(ctx context.Context, req *govnv1.AttachLoadBalancerRequest) (*govnv1.AttachLoadBalancerResponse, error) {
	return x.attach(ctx, req, true)
}

func (x lbService) DetachLoadBalancer(ctx context.Context, req *govnv1.AttachLoadBalancerRequest) (*govnv1.AttachLoadBalancerResponse, error) {
	return x.attach(ctx, req, false)
}

// attach adds (on) or removes one load balancer on a switch or router: one
// transaction of two waits (the load balancer and the target still exist,
// else NOT_FOUND and nothing changes), a mutate insert/delete on the
// target's load_balancer set (never a rewrite of the whole set, so
// concurrent attaches and detaches all take effect) and a select of the
// resulting set, which the response reports.
func (x lbService) attach(ctx context.Context, req *govnv1.AttachLoadBalancerRequest, on bool) (*govnv1.AttachLoadBalancerResponse, error) {
	s := x.s
	const resource = "load_balancer_attachment"
	if req.LoadBalancer == "" {
		return nil, badField(resource, "load_balancer", "", "required: the load balancer's name")
	}
	var table, kind, name, uuid string
	switch {
	case req.Switch != "" && req.Router != "":
		return nil, badField(resource, "switch", req.Switch, "give a switch or a router, not both")
	case req.Switch != "":
		ls, err := s.switchByName(req.Switch)
		if err != nil {
			return nil, err
		}
		table, kind, name, uuid = nbdb.LogicalSwitchTable, "logical switch", ls.Name, ls.UUID
	case req.Router != "":
		lr, err := s.routerByName(req.Router)
		if err != nil {
			return nil, err
		}
		table, kind, name, uuid = nbdb.LogicalRouterTable, "logical router", lr.Name, lr.UUID
	default:
		return nil, badField(resource, "switch", "", "required: the switch (or router) to %s", map[bool]string{true: "attach to", false: "detach from"}[on])
	}
	lb, err := s.lbByName(req.LoadBalancer)
	if err != nil {
		return nil, err
	}
	t := s.txn()
	t.exists(nbdb.LoadBalancerTable, lb.UUID, notFound("load balancer %q was deleted concurrently", lb.Name))
	t.exists(table, uuid, notFound("%s %q was deleted concurrently", kind, name))
	t.insertInto(table, uuid, "load_balancer", on, lb.UUID)
	sel := len(t.ops)
	t.ops = append(t.ops, ovsdb.Operation{Op: ovsdb.OperationSelect, Table: table,
		Where:   []ovsdb.Condition{ovsdb.NewCondition("_uuid", ovsdb.ConditionEqual, ovsdb.UUID{GoUUID: uuid})},
		Columns: []string{"load_balancer"}})
	res, err := t.commitResults(ctx)
	if err != nil {
		return nil, err
	}
	if len(res) <= sel || len(res[sel].Rows) != 1 {
		return nil, internal(fmt.Errorf("%s %q: unexpected transaction result", kind, name))
	}
	uuids, err := uuidSet(res[sel].Rows[0]["load_balancer"])
	if err != nil {
		return nil, internal(err)
	}
	return &govnv1.AttachLoadBalancerResponse{LoadBalancers: s.lbNames(uuids)}, nil
}

// uuidSet reads an OVSDB set-of-uuids column value from a select result.
func uuidSet(v any) ([]string, error) {
	switch x := v.(type) {
	case ovsdb.UUID:
		return []string{x.GoUUID}, nil
	case ovsdb.OvsSet:
		out := make([]string, 0, len(x.GoSet))
		for _, e := range x.GoSet {
			u, ok := e.(ovsdb.UUID)
			if !ok {
				return nil, fmt.Errorf("set element %v (%T) is not a uuid", e, e)
			}
			out = append(out, u.GoUUID)
		}
		return out, nil
	}
	return nil, fmt.Errorf("value %v (%T) is not a set of uuids", v, v)
}
