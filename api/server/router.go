package server

import (
	"context"
	"net/netip"
	"slices"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/validate"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

type routerService struct {
	govnv1.UnimplementedLogicalRouterServiceServer
	s *Server
}

type routerPortService struct {
	govnv1.UnimplementedLogicalRouterPortServiceServer
	s *Server
}

func (s *Server) routerByName(name string) (*nbdb.LogicalRouter, error) {
	lr, ok, err := lookup(s, &nbdb.LogicalRouter{Name: name})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("logical router %q not found", name)
	}
	return lr, nil
}

func (s *Server) routerProto(lr *nbdb.LogicalRouter) *govnv1.LogicalRouter {
	out := &govnv1.LogicalRouter{Name: lr.Name, Uuid: lr.UUID, Enabled: lr.Enabled, Options: cloneMap(lr.Options),
		ExternalIds: cloneMap(lr.ExternalIDs), StaticRouteCount: int32(len(lr.StaticRoutes)), NatCount: int32(len(lr.Nat))}
	for _, u := range lr.Ports {
		if p, ok, _ := lookup(s, &nbdb.LogicalRouterPort{UUID: u}); ok {
			out.Ports = append(out.Ports, p.Name)
		}
	}
	slices.Sort(out.Ports)
	out.LoadBalancers = s.lbNames(lr.LoadBalancer)
	return out
}

var routerSettable = []string{"load_balancers", "enabled", "options", "external_ids"}

func (s *Server) setRouterFields(t *txn, lr *nbdb.LogicalRouter, in *govnv1.LogicalRouter, fs fieldSet) ([]any, error) {
	var fields []any
	if fs["load_balancers"] {
		lbs, err := s.lbUUIDs(t, "logical_router", in.LoadBalancers)
		if err != nil {
			return nil, err
		}
		lr.LoadBalancer = nonNilSlice(lbs)
		fields = append(fields, &lr.LoadBalancer)
	}
	if fs["enabled"] {
		lr.Enabled = in.Enabled
		fields = append(fields, &lr.Enabled)
	}
	if fs["options"] {
		if err := checkRouterOptions(in.Options); err != nil {
			return nil, err
		}
		lr.Options = nonNilMap(cloneMap(in.Options))
		fields = append(fields, &lr.Options)
	}
	if fs["external_ids"] {
		lr.ExternalIDs = nonNilMap(cloneMap(in.ExternalIds))
		fields = append(fields, &lr.ExternalIDs)
	}
	return fields, nil
}

func (x routerService) CreateLogicalRouter(ctx context.Context, req *govnv1.CreateLogicalRouterRequest) (*govnv1.LogicalRouter, error) {
	s := x.s
	in := req.GetLogicalRouter()
	if in == nil {
		return nil, badField("logical_router", "", "", "missing")
	}
	if err := validate.Name("name", in.Name); err != nil {
		return nil, invalid("logical_router", err)
	}
	if old, ok, err := lookup(s, &nbdb.LogicalRouter{Name: in.Name}); err != nil {
		return nil, err
	} else if ok {
		if req.MayExist {
			return s.routerProto(old), nil
		}
		return nil, alreadyExists("logical router %q already exists", in.Name)
	}
	t := s.txn()
	lr := &nbdb.LogicalRouter{UUID: ovsdbclient.NamedUUID(), Name: in.Name}
	all := fieldSet{}
	for _, f := range routerSettable {
		all[f] = true
	}
	if _, err := s.setRouterFields(t, lr, in, all); err != nil {
		return nil, err
	}
	t.absent(nbdb.LogicalRouterTable, "name", in.Name, alreadyExists("logical router %q already exists", in.Name))
	if err := t.add(ovsdbclient.CreateOps(s.nb, t.ops, lr)); err != nil {
		return nil, err
	}
	uuid, err := t.commitAndSee(ctx, nbdb.LogicalRouterTable, lr.UUID, nil)
	if err != nil {
		return nil, err
	}
	got, ok, err := lookup(s, &nbdb.LogicalRouter{UUID: uuid})
	if err != nil || !ok {
		return nil, internal(errOrGone(err, "logical router", in.Name))
	}
	return s.routerProto(got), nil
}

func (x routerService) GetLogicalRouter(_ context.Context, req *govnv1.GetLogicalRouterRequest) (*govnv1.LogicalRouter, error) {
	lr, err := x.s.routerByName(req.Name)
	if err != nil {
		return nil, err
	}
	return x.s.routerProto(lr), nil
}

func (x routerService) ListLogicalRouters(ctx context.Context, _ *govnv1.ListLogicalRoutersRequest) (*govnv1.ListLogicalRoutersResponse, error) {
	rows, err := listAll[nbdb.LogicalRouter](ctx, x.s)
	if err != nil {
		return nil, err
	}
	out := &govnv1.ListLogicalRoutersResponse{}
	for i := range rows {
		out.Items = append(out.Items, x.s.routerProto(&rows[i]))
	}
	slices.SortFunc(out.Items, func(a, b *govnv1.LogicalRouter) int { return cmpStr(a.Name, b.Name) })
	return out, nil
}

func (x routerService) UpdateLogicalRouter(ctx context.Context, req *govnv1.UpdateLogicalRouterRequest) (*govnv1.LogicalRouter, error) {
	s := x.s
	in := req.GetLogicalRouter()
	if in == nil {
		return nil, badField("logical_router", "", "", "missing")
	}
	fs, err := updateFields("logical_router", req.UpdateMask, routerSettable...)
	if err != nil {
		return nil, err
	}
	lr, err := s.routerByName(in.Name)
	if err != nil {
		return nil, err
	}
	t := s.txn()
	t.exists(nbdb.LogicalRouterTable, lr.UUID, notFound("logical router %q was deleted concurrently", in.Name))
	fields, err := s.setRouterFields(t, lr, in, fs)
	if err != nil {
		return nil, err
	}
	if err := t.add(ovsdbclient.UpdateOps(s.nb, t.ops, lr, fields...)); err != nil {
		return nil, err
	}
	if _, err := t.commit(ctx); err != nil {
		return nil, err
	}
	got, err := s.routerByName(in.Name)
	if err != nil {
		return nil, err
	}
	return s.routerProto(got), nil
}

func (x routerService) DeleteLogicalRouter(ctx context.Context, req *govnv1.DeleteLogicalRouterRequest) (*govnv1.DeleteResponse, error) {
	s := x.s
	lr, ok, err := lookup(s, &nbdb.LogicalRouter{Name: req.Name})
	if err != nil {
		return nil, err
	}
	if !ok {
		if req.IfExists {
			return &govnv1.DeleteResponse{}, nil
		}
		return nil, notFound("logical router %q not found", req.Name)
	}
	// Ports, static routes and NAT rules are the router's children and go with it.
	t := s.txn()
	if err := t.add(ovsdbclient.DeleteOps(s.nb, t.ops, &nbdb.LogicalRouter{UUID: lr.UUID})); err != nil {
		return nil, err
	}
	if _, err := t.commitAndSee(ctx, "", "", map[string][]string{nbdb.LogicalRouterTable: {lr.UUID}}); err != nil {
		return nil, err
	}
	return &govnv1.DeleteResponse{Deleted: 1}, nil
}

// ---- router ports ----

func (s *Server) routerPortByName(name string) (*nbdb.LogicalRouterPort, error) {
	p, ok, err := lookup(s, &nbdb.LogicalRouterPort{Name: name})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("logical router port %q not found", name)
	}
	return p, nil
}

func (s *Server) routerOfPort(ctx context.Context, uuid string) (*nbdb.LogicalRouter, error) {
	var found []nbdb.LogicalRouter
	if err := s.nb.WhereCache(func(lr *nbdb.LogicalRouter) bool { return slices.Contains(lr.Ports, uuid) }).List(ctx, &found); err != nil {
		return nil, internal(err)
	}
	if len(found) == 0 {
		return nil, nil
	}
	return &found[0], nil
}

func (s *Server) routerPortProto(p *nbdb.LogicalRouterPort, router string) *govnv1.LogicalRouterPort {
	return &govnv1.LogicalRouterPort{Name: p.Name, Uuid: p.UUID, Router: router, Mac: p.MAC, Networks: sortedCopy(p.Networks),
		Peer: deref(p.Peer), Enabled: p.Enabled, Options: cloneMap(p.Options), ExternalIds: cloneMap(p.ExternalIDs),
		GatewayChassis: s.gatewayChassisProto(p.GatewayChassis)}
}

// checkRouterPort validates a router port's MAC, networks (no overlap
// within the port or with the router's other ports) and peer.
func (s *Server) checkRouterPort(lr *nbdb.LogicalRouter, self string, in *govnv1.LogicalRouterPort) error {
	mac, err := validate.ParseMAC("mac", in.Mac)
	if err != nil {
		return invalid("logical_router_port", err)
	}
	if mac[0]&1 != 0 {
		return badField("logical_router_port", "mac", in.Mac, "a router port needs a unicast Ethernet address")
	}
	nets, err := validate.RouterNetworks("networks", in.Networks)
	if err != nil {
		return invalid("logical_router_port", err)
	}
	for _, u := range lr.Ports {
		if u == self {
			continue
		}
		other, ok, _ := lookup(s, &nbdb.LogicalRouterPort{UUID: u})
		if !ok {
			continue
		}
		for _, on := range other.Networks {
			op, err := netip.ParsePrefix(on)
			if err != nil {
				continue
			}
			for i, n := range nets {
				if validate.Overlaps(n, op) {
					return conflict("networks[%d] %s overlaps network %s of port %q on logical router %q", i, in.Networks[i], on, other.Name, lr.Name)
				}
			}
		}
	}
	if in.Peer != "" {
		if in.Peer == in.Name {
			return badField("logical_router_port", "peer", in.Peer, "a port cannot be its own peer")
		}
		if _, ok, err := lookup(s, &nbdb.LogicalRouterPort{Name: in.Peer}); err != nil {
			return err
		} else if !ok {
			return notFound("peer: logical router port %q not found", in.Peer)
		}
	}
	return nil
}

var routerPortSettable = []string{"mac", "networks", "peer", "enabled", "options", "external_ids"}

func setRouterPortFields(p *nbdb.LogicalRouterPort, in *govnv1.LogicalRouterPort, fs fieldSet) []any {
	var fields []any
	if fs["mac"] {
		p.MAC = in.Mac
		fields = append(fields, &p.MAC)
	}
	if fs["networks"] {
		p.Networks = slices.Clone(in.Networks)
		fields = append(fields, &p.Networks)
	}
	if fs["peer"] {
		p.Peer = optString(in.Peer)
		fields = append(fields, &p.Peer)
	}
	if fs["enabled"] {
		p.Enabled = in.Enabled
		fields = append(fields, &p.Enabled)
	}
	if fs["options"] {
		p.Options = nonNilMap(cloneMap(in.Options))
		fields = append(fields, &p.Options)
	}
	if fs["external_ids"] {
		p.ExternalIDs = nonNilMap(cloneMap(in.ExternalIds))
		fields = append(fields, &p.ExternalIDs)
	}
	return fields
}

func (x routerPortService) CreateLogicalRouterPort(ctx context.Context, req *govnv1.CreateLogicalRouterPortRequest) (*govnv1.LogicalRouterPort, error) {
	s := x.s
	in := req.GetLogicalRouterPort()
	if in == nil {
		return nil, badField("logical_router_port", "", "", "missing")
	}
	if err := validate.Name("name", in.Name); err != nil {
		return nil, invalid("logical_router_port", err)
	}
	lr, err := s.parentRouter("logical_router_port", in.Router, "the router to add the port to")
	if err != nil {
		return nil, err
	}
	if old, ok, err := lookup(s, &nbdb.LogicalRouterPort{Name: in.Name}); err != nil {
		return nil, err
	} else if ok {
		if !slices.Contains(lr.Ports, old.UUID) {
			return nil, alreadyExists("logical router port %q already exists on another router", in.Name)
		}
		if req.MayExist {
			return s.routerPortProto(old, lr.Name), nil
		}
		return nil, alreadyExists("logical router port %q already exists", in.Name)
	}
	if _, ok, err := lookup(s, &nbdb.LogicalSwitchPort{Name: in.Name}); err != nil {
		return nil, err
	} else if ok {
		return nil, alreadyExists("name %q is already used by a logical switch port", in.Name)
	}
	if err := s.checkRouterPort(lr, "", in); err != nil {
		return nil, err
	}
	p := &nbdb.LogicalRouterPort{UUID: ovsdbclient.NamedUUID(), Name: in.Name}
	setRouterPortFields(p, in, allFields(routerPortSettable))
	t := s.txn()
	t.absent(nbdb.LogicalRouterPortTable, "name", in.Name, alreadyExists("logical router port %q already exists", in.Name))
	t.absent(nbdb.LogicalSwitchPortTable, "name", in.Name, alreadyExists("name %q is already used by a logical switch port", in.Name))
	uuid, err := childPort.create(ctx, s, t, lr, p, p.UUID)
	if err != nil {
		return nil, err
	}
	got, ok, err := lookup(s, &nbdb.LogicalRouterPort{UUID: uuid})
	if err != nil || !ok {
		return nil, internal(errOrGone(err, "logical router port", in.Name))
	}
	return s.routerPortProto(got, lr.Name), nil
}

func (x routerPortService) GetLogicalRouterPort(ctx context.Context, req *govnv1.GetLogicalRouterPortRequest) (*govnv1.LogicalRouterPort, error) {
	p, err := x.s.routerPortByName(req.Name)
	if err != nil {
		return nil, err
	}
	lr, err := x.s.routerOfPort(ctx, p.UUID)
	if err != nil {
		return nil, err
	}
	name := ""
	if lr != nil {
		name = lr.Name
	}
	return x.s.routerPortProto(p, name), nil
}

func (x routerPortService) ListLogicalRouterPorts(ctx context.Context, req *govnv1.ListLogicalRouterPortsRequest) (*govnv1.ListLogicalRouterPortsResponse, error) {
	s := x.s
	routers, err := s.routersNamed(ctx, req.Router)
	if err != nil {
		return nil, err
	}
	out := &govnv1.ListLogicalRouterPortsResponse{}
	for i := range routers {
		for _, u := range routers[i].Ports {
			if p, ok, _ := lookup(s, &nbdb.LogicalRouterPort{UUID: u}); ok {
				out.Items = append(out.Items, s.routerPortProto(p, routers[i].Name))
			}
		}
	}
	slices.SortFunc(out.Items, func(a, b *govnv1.LogicalRouterPort) int {
		if c := cmpStr(a.Router, b.Router); c != 0 {
			return c
		}
		return cmpStr(a.Name, b.Name)
	})
	return out, nil
}

func (x routerPortService) UpdateLogicalRouterPort(ctx context.Context, req *govnv1.UpdateLogicalRouterPortRequest) (*govnv1.LogicalRouterPort, error) {
	s := x.s
	in := req.GetLogicalRouterPort()
	if in == nil {
		return nil, badField("logical_router_port", "", "", "missing")
	}
	fs, err := updateFields("logical_router_port", req.UpdateMask, routerPortSettable...)
	if err != nil {
		return nil, err
	}
	p, err := s.routerPortByName(in.Name)
	if err != nil {
		return nil, err
	}
	lr, err := s.routerOfPort(ctx, p.UUID)
	if err != nil {
		return nil, err
	}
	if lr == nil {
		return nil, conflict("logical router port %q belongs to no router", in.Name)
	}
	if in.Router != "" && in.Router != lr.Name {
		return nil, badField("logical_router_port", "router", in.Router, "a port cannot move to another router (delete and re-create it)")
	}
	merged := s.routerPortProto(p, lr.Name)
	if fs["mac"] {
		merged.Mac = in.Mac
	}
	if fs["networks"] {
		merged.Networks = in.Networks
	}
	if fs["peer"] {
		merged.Peer = in.Peer
	}
	if err := s.checkRouterPort(lr, p.UUID, merged); err != nil {
		return nil, err
	}
	if err := childPort.update(ctx, s, p, p.UUID, in.Name, setRouterPortFields(p, in, fs)); err != nil {
		return nil, err
	}
	return x.GetLogicalRouterPort(ctx, &govnv1.GetLogicalRouterPortRequest{Name: in.Name})
}

func (x routerPortService) DeleteLogicalRouterPort(ctx context.Context, req *govnv1.DeleteLogicalRouterPortRequest) (*govnv1.DeleteResponse, error) {
	s := x.s
	p, ok, err := lookup(s, &nbdb.LogicalRouterPort{Name: req.Name})
	if err != nil {
		return nil, err
	}
	if !ok {
		if req.IfExists {
			return &govnv1.DeleteResponse{}, nil
		}
		return nil, notFound("logical router port %q not found", req.Name)
	}
	lr, err := s.routerOfPort(ctx, p.UUID)
	if err != nil {
		return nil, err
	}
	t := s.txn()
	if lr != nil {
		// Static routes that name this port as output_port would dangle.
		for _, u := range lr.StaticRoutes {
			if r, ok, _ := lookup(s, &nbdb.LogicalRouterStaticRoute{UUID: u}); ok && deref(r.OutputPort) == p.Name {
				return nil, conflict("logical router port %q is the output port of static route %s via %s; delete the route first", p.Name, r.IPPrefix, r.Nexthop)
			}
		}
		sel := &nbdb.LogicalRouter{UUID: lr.UUID}
		if err := t.add(ovsdbclient.MutateOps(s.nb, t.ops, sel, mutateSet(&sel.Ports, false, p.UUID))); err != nil {
			return nil, err
		}
	}
	if err := t.add(ovsdbclient.DeleteOps(s.nb, t.ops, &nbdb.LogicalRouterPort{UUID: p.UUID})); err != nil {
		return nil, err
	}
	if _, err := t.commitAndSee(ctx, "", "", map[string][]string{nbdb.LogicalRouterPortTable: {p.UUID}}); err != nil {
		return nil, err
	}
	return &govnv1.DeleteResponse{Deleted: 1}, nil
}
