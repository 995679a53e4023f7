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
	lr, err := s.parentRouter("static_route", in.Router, "the router the route belongs to")
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
	setRouteFields(r, in, allFields(routeSettable))
	uuid, err := childRoute.create(ctx, s, s.txn(), lr, r, r.UUID)
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
	r, router, err := getChild(ctx, x.s, childRoute, &nbdb.LogicalRouterStaticRoute{UUID: req.Uuid}, req.Uuid)
	if err != nil {
		return nil, err
	}
	return routeProto(r, router), nil
}

func (x routeService) ListStaticRoutes(ctx context.Context, req *govnv1.ListStaticRoutesRequest) (*govnv1.ListStaticRoutesResponse, error) {
	s := x.s
	routers, err := s.routersNamed(ctx, req.Router)
	if err != nil {
		return nil, err
	}
	out := &govnv1.ListStaticRoutesResponse{}
	for i := range routers {
		for _, r := range s.routesOf(&routers[i]) {
			out.Items = append(out.Items, routeProto(r, routers[i].Name))
		}
	}
	slices.SortFunc(out.Items, func(a, b *govnv1.StaticRoute) int {
		return cmpPairs([2]string{a.Router, b.Router}, [2]string{a.RouteTable, b.RouteTable}, [2]string{a.IpPrefix, b.IpPrefix}, [2]string{a.Nexthop, b.Nexthop})
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
	r, router, err := getChild(ctx, s, childRoute, &nbdb.LogicalRouterStaticRoute{UUID: in.Uuid}, in.Uuid)
	if err != nil {
		return nil, err
	}
	if router == "" {
		return nil, conflict("static route %q belongs to no router", r.UUID)
	}
	lr, err := s.routerByName(router)
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
	if err := childRoute.update(ctx, s, r, r.UUID, r.UUID, setRouteFields(r, in, fs)); err != nil {
		return nil, err
	}
	return x.GetStaticRoute(ctx, &govnv1.GetStaticRouteRequest{Uuid: r.UUID})
}

func (x routeService) DeleteStaticRoute(ctx context.Context, req *govnv1.DeleteStaticRouteRequest) (*govnv1.DeleteResponse, error) {
	s := x.s
	var lr *nbdb.LogicalRouter
	var victims []string
	var err error
	if req.Uuid != "" {
		if lr, victims, err = childRoute.deleteByUUID(ctx, s, req.Uuid, req.IfExists); err != nil {
			return nil, err
		}
	} else {
		if lr, err = s.parentRouter("static_route", req.Router, "the router (or give uuid)"); err != nil {
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
	return childRoute.remove(ctx, s, lr, victims)
}
