package server

import (
	"context"
	"slices"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/validate"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

type routeService struct {
	govnv1.UnimplementedStaticRouteServiceServer
	s *Server
}

func routeProto(r *nbdb.LogicalRouterStaticRoute, router string) *govnv1.StaticRoute {
	out := &govnv1.StaticRoute{Uuid: r.UUID, Router: router, IpPrefix: r.IPPrefix, Nexthop: r.Nexthop,
		OutputPort: deref(r.OutputPort), RouteTable: r.RouteTable, Options: cloneMap(r.Options), ExternalIds: cloneMap(r.ExternalIDs)}
	if r.Policy != nil {
		out.Policy = string(*r.Policy)
	}
	return out
}

// routerChildren maps each static route or NAT UUID to its router's name.
func (s *Server) routerChildren(ctx context.Context, nat bool) (map[string]string, error) {
	routers, err := listAll[nbdb.LogicalRouter](ctx, s)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, lr := range routers {
		list := lr.StaticRoutes
		if nat {
			list = lr.Nat
		}
		for _, u := range list {
			out[u] = lr.Name
		}
	}
	return out, nil
}

func policyOf(p string) string {
	if p == "" {
		return "dst-ip"
	}
	return p
}

func (s *Server) checkRoute(lr *nbdb.LogicalRouter, in *govnv1.StaticRoute) error {
	if err := validate.StaticRoute(in.IpPrefix, in.Nexthop, in.Policy); err != nil {
		return invalid("static_route", err)
	}
	if in.OutputPort != "" {
		p, ok, err := lookup(s, &nbdb.LogicalRouterPort{Name: in.OutputPort})
		if err != nil {
			return err
		}
		if !ok || !slices.Contains(lr.Ports, p.UUID) {
			return notFound("output_port: logical router %q has no port %q", lr.Name, in.OutputPort)
		}
	}
	return nil
}

func (s *Server) routesOf(lr *nbdb.LogicalRouter) []*nbdb.LogicalRouterStaticRoute {
	var out []*nbdb.LogicalRouterStaticRoute
	for _, u := range lr.StaticRoutes {
		if r, ok, _ := lookup(s, &nbdb.LogicalRouterStaticRoute{UUID: u}); ok {
			out = append(out, r)
		}
	}
	return out
}

var routeSettable = []string{"ip_prefix", "nexthop", "output_port", "policy", "route_table", "options", "external_ids"}

func setRouteFields(r *nbdb.LogicalRouterStaticRoute, in *govnv1.StaticRoute, fs fieldSet) []any {
	var fields []any
	if fs["ip_prefix"] {
		r.IPPrefix = in.IpPrefix
		fields = append(fields, &r.IPPrefix)
	}
	if fs["nexthop"] {
		r.Nexthop = in.Nexthop
		fields = append(fields, &r.Nexthop)
	}
	if fs["output_port"] {
		r.OutputPort = optString(in.OutputPort)
		fields = append(fields, &r.OutputPort)
	}
	if fs["policy"] {
		r.Policy = nil
		if in.Policy != "" {
			r.Policy = ptr(nbdb.LogicalRouterStaticRoutePolicy(in.Policy))
		}
		fields = append(fields, &r.Policy)
	}
	if fs["route_table"] {
		r.RouteTable = in.RouteTable
		fields = append(fields, &r.RouteTable)
	}
	if fs["options"] {
		r.Options = nonNilMap(cloneMap(in.Options))
		fields = append(fields, &r.Options)
	}
	if fs["external_ids"] {
		r.ExternalIDs = nonNilMap(cloneMap(in.ExternalIds))
		fields = append(fields, &r.ExternalIDs)
	}
	return fields
}

func sameRoute(r *nbdb.LogicalRouterStaticRoute, in *govnv1.StaticRoute) bool {
	pol := ""
	if r.Policy != nil {
		pol = string(*r.Policy)
	}
	return r.IPPrefix == in.IpPrefix && r.Nexthop == in.Nexthop && r.RouteTable == in.RouteTable && policyOf(pol) == policyOf(in.Policy)
}

func (x routeService) CreateStaticRoute(ctx context.Context, req *govnv1.CreateStaticRouteRequest) (*govnv1.StaticRoute, error) {
	s := x.s
	in := req.GetStaticRoute()
	if in == nil {
		return nil, badField("static_route", "", "", "missing")
	}
	if in.Router == "" {
		return nil, badField("static_route", "router", "", "required: the router the route belongs to")
	}
	lr, err := s.routerByName(in.Router)
	if err != nil {
		return nil, err
	}
	if err := s.checkRoute(lr, in); err != nil {
		return nil, err
	}
	for _, r := range s.routesOf(lr) {
		if sameRoute(r, in) {
			if req.MayExist {
				return routeProto(r, lr.Name), nil
			}
			return nil, alreadyExists("logical router %q already has a route to %s via %s", lr.Name, in.IpPrefix, in.Nexthop)
		}
	}
	r := &nbdb.LogicalRouterStaticRoute{UUID: ovsdbclient.NamedUUID()}
	all := fieldSet{}
	for _, f := range routeSettable {
		all[f] = true
	}
	setRouteFields(r, in, all)
	t := s.txn()
	t.exists(nbdb.LogicalRouterTable, lr.UUID, notFound("logical router %q was deleted concurrently", lr.Name))
	if err := t.add(ovsdbclient.CreateOps(s.nb, t.ops, r)); err != nil {
		return nil, err
	}
	sel := &nbdb.LogicalRouter{UUID: lr.UUID}
	if err := t.add(ovsdbclient.MutateOps(s.nb, t.ops, sel, mutateSet(&sel.StaticRoutes, true, r.UUID))); err != nil {
		return nil, err
	}
	uuid, err := t.commitAndSee(ctx, nbdb.LogicalRouterStaticRouteTable, r.UUID, nil)
	if err != nil {
		return nil, err
	}
	got, ok, err := lookup(s, &nbdb.LogicalRouterStaticRoute{UUID: uuid})
	if err != nil || !ok {
		return nil, internal(errOrGone(err, "static route", uuid))
	}
	return routeProto(got, lr.Name), nil
}

func (x routeService) GetStaticRoute(ctx context.Context, req *govnv1.GetStaticRouteRequest) (*govnv1.StaticRoute, error) {
	r, ok, err := lookup(x.s, &nbdb.LogicalRouterStaticRoute{UUID: req.Uuid})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("static route %q not found", req.Uuid)
	}
	owners, err := x.s.routerChildren(ctx, false)
	if err != nil {
		return nil, err
	}
	return routeProto(r, owners[r.UUID]), nil
}

func (x routeService) ListStaticRoutes(ctx context.Context, req *govnv1.ListStaticRoutesRequest) (*govnv1.ListStaticRoutesResponse, error) {
	s := x.s
	var routers []nbdb.LogicalRouter
	if req.Router != "" {
		lr, err := s.routerByName(req.Router)
		if err != nil {
			return nil, err
		}
		routers = []nbdb.LogicalRouter{*lr}
	} else {
		var err error
		if routers, err = listAll[nbdb.LogicalRouter](ctx, s); err != nil {
			return nil, err
		}
	}
	out := &govnv1.ListStaticRoutesResponse{}
	for i := range routers {
		for _, r := range s.routesOf(&routers[i]) {
			out.Items = append(out.Items, routeProto(r, routers[i].Name))
		}
	}
	slices.SortFunc(out.Items, func(a, b *govnv1.StaticRoute) int {
		for _, c := range [][2]string{{a.Router, b.Router}, {a.RouteTable, b.RouteTable}, {a.IpPrefix, b.IpPrefix}, {a.Nexthop, b.Nexthop}} {
			if r := cmpStr(c[0], c[1]); r != 0 {
				return r
			}
		}
		return 0
	})
	return out, nil
}

func (x routeService) UpdateStaticRoute(ctx context.Context, req *govnv1.UpdateStaticRouteRequest) (*govnv1.StaticRoute, error) {
	s := x.s
	in := req.GetStaticRoute()
	if in == nil {
		return nil, badField("static_route", "", "", "missing")
	}
	fs, err := updateFields("static_route", req.UpdateMask, routeSettable...)
	if err != nil {
		return nil, err
	}
	r, ok, err := lookup(s, &nbdb.LogicalRouterStaticRoute{UUID: in.Uuid})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("static route %q not found", in.Uuid)
	}
	owners, err := s.routerChildren(ctx, false)
	if err != nil {
		return nil, err
	}
	lr, err := s.routerByName(owners[r.UUID])
	if err != nil {
		return nil, err
	}
	merged := routeProto(r, lr.Name)
	if fs["ip_prefix"] {
		merged.IpPrefix = in.IpPrefix
	}
	if fs["nexthop"] {
		merged.Nexthop = in.Nexthop
	}
	if fs["output_port"] {
		merged.OutputPort = in.OutputPort
	}
	if fs["policy"] {
		merged.Policy = in.Policy
	}
	if err := s.checkRoute(lr, merged); err != nil {
		return nil, err
	}
	t := s.txn()
	t.exists(nbdb.LogicalRouterStaticRouteTable, r.UUID, notFound("static route %q was deleted concurrently", r.UUID))
	if err := t.add(ovsdbclient.UpdateOps(s.nb, t.ops, r, setRouteFields(r, in, fs)...)); err != nil {
		return nil, err
	}
	if _, err := t.commit(ctx); err != nil {
		return nil, err
	}
	return x.GetStaticRoute(ctx, &govnv1.GetStaticRouteRequest{Uuid: r.UUID})
}

func (x routeService) DeleteStaticRoute(ctx context.Context, req *govnv1.DeleteStaticRouteRequest) (*govnv1.DeleteResponse, error) {
	s := x.s
	var lr *nbdb.LogicalRouter
	var victims []string
	if req.Uuid != "" {
		owners, err := s.routerChildren(ctx, false)
		if err != nil {
			return nil, err
		}
		name, ok := owners[req.Uuid]
		if !ok {
			if req.IfExists {
				return &govnv1.DeleteResponse{}, nil
			}
			return nil, notFound("static route %q not found", req.Uuid)
		}
		if lr, err = s.routerByName(name); err != nil {
			return nil, err
		}
		victims = []string{req.Uuid}
	} else {
		var err error
		if req.Router == "" {
			return nil, badField("static_route", "router", "", "required (or give uuid)")
		}
		if lr, err = s.routerByName(req.Router); err != nil {
			return nil, err
		}
		if req.Nexthop != "" && req.IpPrefix == "" {
			return nil, badField("static_route", "nexthop", req.Nexthop, "selecting by nexthop also needs ip_prefix")
		}
		for _, r := range s.routesOf(lr) {
			if (req.IpPrefix == "" || r.IPPrefix == req.IpPrefix) && (req.Nexthop == "" || r.Nexthop == req.Nexthop) &&
				(req.IpPrefix == "" || r.RouteTable == req.RouteTable) {
				victims = append(victims, r.UUID)
			}
		}
		if len(victims) == 0 && req.IpPrefix != "" {
			if req.IfExists {
				return &govnv1.DeleteResponse{}, nil
			}
			return nil, notFound("logical router %q has no route to %s", lr.Name, req.IpPrefix)
		}
	}
	if len(victims) == 0 {
		return &govnv1.DeleteResponse{}, nil
	}
	t := s.txn()
	sel := &nbdb.LogicalRouter{UUID: lr.UUID}
	if err := t.add(ovsdbclient.MutateOps(s.nb, t.ops, sel, mutateSet(&sel.StaticRoutes, false, victims...))); err != nil {
		return nil, err
	}
	if _, err := t.commitAndSee(ctx, "", "", map[string][]string{nbdb.LogicalRouterStaticRouteTable: victims}); err != nil {
		return nil, err
	}
	return &govnv1.DeleteResponse{Deleted: int32(len(victims))}, nil
}
