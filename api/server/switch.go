package server

import (
	"context"
	"slices"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/validate"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

type switchService struct {
	govnv1.UnimplementedLogicalSwitchServiceServer
	s *Server
}

func (s *Server) switchByName(name string) (*nbdb.LogicalSwitch, error) {
	ls, ok, err := lookup(s, &nbdb.LogicalSwitch{Name: name})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("logical switch %q not found", name)
	}
	return ls, nil
}

func (s *Server) switchProto(ls *nbdb.LogicalSwitch) *govnv1.LogicalSwitch {
	out := &govnv1.LogicalSwitch{
		Name: ls.Name, Uuid: ls.UUID, OtherConfig: cloneMap(ls.OtherConfig), ExternalIds: cloneMap(ls.ExternalIDs),
		AclCount: int32(len(ls.ACLs)),
	}
	for _, u := range ls.Ports {
		if p, ok, _ := lookup(s, &nbdb.LogicalSwitchPort{UUID: u}); ok {
			out.Ports = append(out.Ports, p.Name)
		}
	}
	slices.Sort(out.Ports)
	out.LoadBalancers = s.lbNames(ls.LoadBalancer)
	return out
}

func (x switchService) CreateLogicalSwitch(ctx context.Context, req *govnv1.CreateLogicalSwitchRequest) (*govnv1.LogicalSwitch, error) {
	s := x.s
	in := req.GetLogicalSwitch()
	if in == nil {
		return nil, badField("logical_switch", "", "", "missing")
	}
	if err := validate.Name("name", in.Name); err != nil {
		return nil, invalid("logical_switch", err)
	}
	if old, ok, err := lookup(s, &nbdb.LogicalSwitch{Name: in.Name}); err != nil {
		return nil, err
	} else if ok {
		if req.MayExist {
			return s.switchProto(old), nil
		}
		return nil, alreadyExists("logical switch %q already exists", in.Name)
	}
	t := s.txn()
	lbs, err := s.lbUUIDs(t, "logical_switch", in.LoadBalancers)
	if err != nil {
		return nil, err
	}
	ls := &nbdb.LogicalSwitch{UUID: ovsdbclient.NamedUUID(), Name: in.Name, LoadBalancer: lbs,
		OtherConfig: cloneMap(in.OtherConfig), ExternalIDs: cloneMap(in.ExternalIds)}
	t.absent(nbdb.LogicalSwitchTable, "name", in.Name, alreadyExists("logical switch %q already exists", in.Name))
	if err := t.add(ovsdbclient.CreateOps(s.nb, t.ops, ls)); err != nil {
		return nil, err
	}
	uuid, err := t.commitAndSee(ctx, nbdb.LogicalSwitchTable, ls.UUID, nil)
	if err != nil {
		return nil, err
	}
	got, ok, err := lookup(s, &nbdb.LogicalSwitch{UUID: uuid})
	if err != nil || !ok {
		return nil, internal(errOrGone(err, "logical switch", in.Name))
	}
	return s.switchProto(got), nil
}

func (x switchService) GetLogicalSwitch(_ context.Context, req *govnv1.GetLogicalSwitchRequest) (*govnv1.LogicalSwitch, error) {
	ls, err := x.s.switchByName(req.Name)
	if err != nil {
		return nil, err
	}
	return x.s.switchProto(ls), nil
}

func (x switchService) ListLogicalSwitches(ctx context.Context, _ *govnv1.ListLogicalSwitchesRequest) (*govnv1.ListLogicalSwitchesResponse, error) {
	rows, err := listAll[nbdb.LogicalSwitch](ctx, x.s)
	if err != nil {
		return nil, err
	}
	out := &govnv1.ListLogicalSwitchesResponse{}
	for i := range rows {
		out.Items = append(out.Items, x.s.switchProto(&rows[i]))
	}
	slices.SortFunc(out.Items, func(a, b *govnv1.LogicalSwitch) int { return cmpStr(a.Name, b.Name) })
	return out, nil
}

func (x switchService) UpdateLogicalSwitch(ctx context.Context, req *govnv1.UpdateLogicalSwitchRequest) (*govnv1.LogicalSwitch, error) {
	s := x.s
	in := req.GetLogicalSwitch()
	if in == nil {
		return nil, badField("logical_switch", "", "", "missing")
	}
	fs, err := updateFields("logical_switch", req.UpdateMask, "load_balancers", "other_config", "external_ids")
	if err != nil {
		return nil, err
	}
	ls, err := s.switchByName(in.Name)
	if err != nil {
		return nil, err
	}
	t := s.txn()
	t.exists(nbdb.LogicalSwitchTable, ls.UUID, notFound("logical switch %q was deleted concurrently", in.Name))
	var fields []any
	if fs["load_balancers"] {
		lbs, err := s.lbUUIDs(t, "logical_switch", in.LoadBalancers)
		if err != nil {
			return nil, err
		}
		ls.LoadBalancer = nonNilSlice(lbs)
		fields = append(fields, &ls.LoadBalancer)
	}
	if fs["other_config"] {
		ls.OtherConfig = nonNilMap(in.OtherConfig)
		fields = append(fields, &ls.OtherConfig)
	}
	if fs["external_ids"] {
		ls.ExternalIDs = nonNilMap(in.ExternalIds)
		fields = append(fields, &ls.ExternalIDs)
	}
	if err := t.add(ovsdbclient.UpdateOps(s.nb, t.ops, ls, fields...)); err != nil {
		return nil, err
	}
	if _, err := t.commit(ctx); err != nil {
		return nil, err
	}
	got, err := s.switchByName(in.Name)
	if err != nil {
		return nil, err
	}
	return s.switchProto(got), nil
}

func (x switchService) DeleteLogicalSwitch(ctx context.Context, req *govnv1.DeleteLogicalSwitchRequest) (*govnv1.DeleteResponse, error) {
	s := x.s
	ls, ok, err := lookup(s, &nbdb.LogicalSwitch{Name: req.Name})
	if err != nil {
		return nil, err
	}
	if !ok {
		if req.IfExists {
			return &govnv1.DeleteResponse{}, nil
		}
		return nil, notFound("logical switch %q not found", req.Name)
	}
	t := s.txn()
	// The switch's ports and ACLs are its children (strong references from
	// a non-root table) and go with it; port groups drop them (weak refs).
	if err := t.add(ovsdbclient.DeleteOps(s.nb, t.ops, &nbdb.LogicalSwitch{UUID: ls.UUID})); err != nil {
		return nil, err
	}
	if _, err := t.commitAndSee(ctx, "", "", map[string][]string{nbdb.LogicalSwitchTable: {ls.UUID}}); err != nil {
		return nil, err
	}
	return &govnv1.DeleteResponse{Deleted: 1}, nil
}

// mutateSet builds a mutation inserting or deleting uuids in a set column.
func mutateSet(field any, insert bool, uuids ...string) model.Mutation {
	m := ovsdb.MutateOperationDelete
	if insert {
		m = ovsdb.MutateOperationInsert
	}
	return model.Mutation{Field: field, Mutator: m, Value: uuids}
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func errOrGone(err error, kind, name string) error {
	if err != nil {
		return err
	}
	return notFound("%s %q was deleted concurrently", kind, name)
}
