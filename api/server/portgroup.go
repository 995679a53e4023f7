package server

import (
	"context"
	"slices"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/validate"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

type portGroupService struct {
	govnv1.UnimplementedPortGroupServiceServer
	s *Server
}

func (s *Server) portGroupProto(pg *nbdb.PortGroup) *govnv1.PortGroup {
	out := &govnv1.PortGroup{Name: pg.Name, Uuid: pg.UUID, ExternalIds: cloneMap(pg.ExternalIDs), AclCount: int32(len(pg.ACLs))}
	for _, u := range pg.Ports {
		if p, ok, _ := lookup(s, &nbdb.LogicalSwitchPort{UUID: u}); ok {
			out.Ports = append(out.Ports, p.Name)
		}
	}
	slices.Sort(out.Ports)
	return out
}

func (s *Server) portGroupByName(name string) (*nbdb.PortGroup, error) {
	pg, ok, err := lookup(s, &nbdb.PortGroup{Name: name})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("port group %q not found", name)
	}
	return pg, nil
}

// portUUIDs resolves switch port names, asserting in t that they still exist.
func (s *Server) portUUIDs(t *txn, field string, names []string) ([]string, error) {
	var out []string
	for _, n := range names {
		p, ok, err := lookup(s, &nbdb.LogicalSwitchPort{Name: n})
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, notFound("%s: logical switch port %q not found", field, n)
		}
		if !slices.Contains(out, p.UUID) {
			out = append(out, p.UUID)
			t.exists(nbdb.LogicalSwitchPortTable, p.UUID, notFound("%s: logical switch port %q was deleted concurrently", field, n))
		}
	}
	return out, nil
}

func (x portGroupService) CreatePortGroup(ctx context.Context, req *govnv1.CreatePortGroupRequest) (*govnv1.PortGroup, error) {
	s := x.s
	in := req.GetPortGroup()
	if in == nil {
		return nil, badField("port_group", "", "", "missing")
	}
	if err := validate.Identifier("name", in.Name); err != nil {
		return nil, invalid("port_group", err)
	}
	if old, ok, err := lookup(s, &nbdb.PortGroup{Name: in.Name}); err != nil {
		return nil, err
	} else if ok {
		if req.MayExist {
			return s.portGroupProto(old), nil
		}
		return nil, alreadyExists("port group %q already exists", in.Name)
	}
	t := s.txn()
	ports, err := s.portUUIDs(t, "ports", in.Ports)
	if err != nil {
		return nil, err
	}
	pg := &nbdb.PortGroup{UUID: ovsdbclient.NamedUUID(), Name: in.Name, Ports: ports, ExternalIDs: cloneMap(in.ExternalIds)}
	t.absent(nbdb.PortGroupTable, "name", in.Name, alreadyExists("port group %q already exists", in.Name))
	if err := t.add(ovsdbclient.CreateOps(s.nb, t.ops, pg)); err != nil {
		return nil, err
	}
	uuid, err := t.commitAndSee(ctx, nbdb.PortGroupTable, pg.UUID, nil)
	if err != nil {
		return nil, err
	}
	got, ok, err := lookup(s, &nbdb.PortGroup{UUID: uuid})
	if err != nil || !ok {
		return nil, internal(errOrGone(err, "port group", in.Name))
	}
	return s.portGroupProto(got), nil
}

func (x portGroupService) GetPortGroup(_ context.Context, req *govnv1.GetPortGroupRequest) (*govnv1.PortGroup, error) {
	pg, err := x.s.portGroupByName(req.Name)
	if err != nil {
		return nil, err
	}
	return x.s.portGroupProto(pg), nil
}

func (x portGroupService) ListPortGroups(ctx context.Context, _ *govnv1.ListPortGroupsRequest) (*govnv1.ListPortGroupsResponse, error) {
	rows, err := listAll[nbdb.PortGroup](ctx, x.s)
	if err != nil {
		return nil, err
	}
	out := &govnv1.ListPortGroupsResponse{}
	for i := range rows {
		out.Items = append(out.Items, x.s.portGroupProto(&rows[i]))
	}
	slices.SortFunc(out.Items, func(a, b *govnv1.PortGroup) int { return cmpStr(a.Name, b.Name) })
	return out, nil
}

func (x portGroupService) UpdatePortGroup(ctx context.Context, req *govnv1.UpdatePortGroupRequest) (*govnv1.PortGroup, error) {
	s := x.s
	in := req.GetPortGroup()
	if in == nil {
		return nil, badField("port_group", "", "", "missing")
	}
	fs, err := updateFields("port_group", req.UpdateMask, "ports", "external_ids")
	if err != nil {
		return nil, err
	}
	pg, err := s.portGroupByName(in.Name)
	if err != nil {
		return nil, err
	}
	t := s.txn()
	t.exists(nbdb.PortGroupTable, pg.UUID, notFound("port group %q was deleted concurrently", in.Name))
	var fields []any
	if fs["ports"] {
		ports, err := s.portUUIDs(t, "ports", in.Ports)
		if err != nil {
			return nil, err
		}
		pg.Ports = nonNilSlice(ports)
		fields = append(fields, &pg.Ports)
	}
	if fs["external_ids"] {
		pg.ExternalIDs = nonNilMap(cloneMap(in.ExternalIds))
		fields = append(fields, &pg.ExternalIDs)
	}
	if err := t.add(ovsdbclient.UpdateOps(s.nb, t.ops, pg, fields...)); err != nil {
		return nil, err
	}
	if _, err := t.commit(ctx); err != nil {
		return nil, err
	}
	got, err := s.portGroupByName(in.Name)
	if err != nil {
		return nil, err
	}
	return s.portGroupProto(got), nil
}

func (x portGroupService) DeletePortGroup(ctx context.Context, req *govnv1.DeletePortGroupRequest) (*govnv1.DeleteResponse, error) {
	s := x.s
	pg, ok, err := lookup(s, &nbdb.PortGroup{Name: req.Name})
	if err != nil {
		return nil, err
	}
	if !ok {
		if req.IfExists {
			return &govnv1.DeleteResponse{}, nil
		}
		return nil, notFound("port group %q not found", req.Name)
	}
	// The group's own ACLs go with it; ACLs elsewhere must not refer to it.
	acls, err := listAll[nbdb.ACL](ctx, s)
	if err != nil {
		return nil, err
	}
	for _, a := range acls {
		if slices.Contains(pg.ACLs, a.UUID) {
			continue
		}
		if refersTo(a.Match, '@', pg.Name) || refersTo(a.Match, '$', pg.Name+"_ip4") || refersTo(a.Match, '$', pg.Name+"_ip6") {
			return nil, conflict("port group %q is used by ACL %s (match %q); delete or change that ACL first", pg.Name, a.UUID, a.Match)
		}
	}
	t := s.txn()
	if err := t.add(ovsdbclient.DeleteOps(s.nb, t.ops, &nbdb.PortGroup{UUID: pg.UUID})); err != nil {
		return nil, err
	}
	if _, err := t.commitAndSee(ctx, "", "", map[string][]string{nbdb.PortGroupTable: {pg.UUID}}); err != nil {
		return nil, err
	}
	return &govnv1.DeleteResponse{Deleted: 1}, nil
}
