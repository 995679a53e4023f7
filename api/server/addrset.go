package server

import (
	"context"
	"slices"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/validate"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

type addressSetService struct {
	govnv1.UnimplementedAddressSetServiceServer
	s *Server
}

func addressSetProto(a *nbdb.AddressSet) *govnv1.AddressSet {
	return &govnv1.AddressSet{Name: a.Name, Uuid: a.UUID, Addresses: sortedCopy(a.Addresses), ExternalIds: cloneMap(a.ExternalIDs)}
}

func (s *Server) addressSetByName(name string) (*nbdb.AddressSet, error) {
	a, ok, err := lookup(s, &nbdb.AddressSet{Name: name})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("address set %q not found", name)
	}
	return a, nil
}

func (x addressSetService) CreateAddressSet(ctx context.Context, req *govnv1.CreateAddressSetRequest) (*govnv1.AddressSet, error) {
	s := x.s
	in := req.GetAddressSet()
	if in == nil {
		return nil, badField("address_set", "", "", "missing")
	}
	if err := validate.Identifier("name", in.Name); err != nil {
		return nil, invalid("address_set", err)
	}
	if err := validate.AddressSetAddresses("addresses", in.Addresses); err != nil {
		return nil, invalid("address_set", err)
	}
	if old, ok, err := lookup(s, &nbdb.AddressSet{Name: in.Name}); err != nil {
		return nil, err
	} else if ok {
		if req.MayExist {
			return addressSetProto(old), nil
		}
		return nil, alreadyExists("address set %q already exists", in.Name)
	}
	t := s.txn()
	a := &nbdb.AddressSet{UUID: ovsdbclient.NamedUUID(), Name: in.Name, Addresses: slices.Clone(in.Addresses), ExternalIDs: cloneMap(in.ExternalIds)}
	t.absent(nbdb.AddressSetTable, "name", in.Name, alreadyExists("address set %q already exists", in.Name))
	if err := t.add(ovsdbclient.CreateOps(s.nb, t.ops, a)); err != nil {
		return nil, err
	}
	uuid, err := t.commitAndSee(ctx, nbdb.AddressSetTable, a.UUID, nil)
	if err != nil {
		return nil, err
	}
	got, ok, err := lookup(s, &nbdb.AddressSet{UUID: uuid})
	if err != nil || !ok {
		return nil, internal(errOrGone(err, "address set", in.Name))
	}
	return addressSetProto(got), nil
}

func (x addressSetService) GetAddressSet(_ context.Context, req *govnv1.GetAddressSetRequest) (*govnv1.AddressSet, error) {
	a, err := x.s.addressSetByName(req.Name)
	if err != nil {
		return nil, err
	}
	return addressSetProto(a), nil
}

func (x addressSetService) ListAddressSets(ctx context.Context, _ *govnv1.ListAddressSetsRequest) (*govnv1.ListAddressSetsResponse, error) {
	rows, err := listAll[nbdb.AddressSet](ctx, x.s)
	if err != nil {
		return nil, err
	}
	out := &govnv1.ListAddressSetsResponse{}
	for i := range rows {
		out.Items = append(out.Items, addressSetProto(&rows[i]))
	}
	slices.SortFunc(out.Items, func(a, b *govnv1.AddressSet) int { return cmpStr(a.Name, b.Name) })
	return out, nil
}

func (x addressSetService) UpdateAddressSet(ctx context.Context, req *govnv1.UpdateAddressSetRequest) (*govnv1.AddressSet, error) {
	s := x.s
	in := req.GetAddressSet()
	if in == nil {
		return nil, badField("address_set", "", "", "missing")
	}
	fs, err := updateFields("address_set", req.UpdateMask, "addresses", "external_ids")
	if err != nil {
		return nil, err
	}
	a, err := s.addressSetByName(in.Name)
	if err != nil {
		return nil, err
	}
	t := s.txn()
	t.exists(nbdb.AddressSetTable, a.UUID, notFound("address set %q was deleted concurrently", in.Name))
	var fields []any
	if fs["addresses"] {
		if err := validate.AddressSetAddresses("addresses", in.Addresses); err != nil {
			return nil, invalid("address_set", err)
		}
		a.Addresses = nonNilSlice(slices.Clone(in.Addresses))
		fields = append(fields, &a.Addresses)
	}
	if fs["external_ids"] {
		a.ExternalIDs = nonNilMap(cloneMap(in.ExternalIds))
		fields = append(fields, &a.ExternalIDs)
	}
	if err := t.add(ovsdbclient.UpdateOps(s.nb, t.ops, a, fields...)); err != nil {
		return nil, err
	}
	if _, err := t.commit(ctx); err != nil {
		return nil, err
	}
	got, err := s.addressSetByName(in.Name)
	if err != nil {
		return nil, err
	}
	return addressSetProto(got), nil
}

func (x addressSetService) DeleteAddressSet(ctx context.Context, req *govnv1.DeleteAddressSetRequest) (*govnv1.DeleteResponse, error) {
	s := x.s
	a, ok, err := lookup(s, &nbdb.AddressSet{Name: req.Name})
	if err != nil {
		return nil, err
	}
	if !ok {
		if req.IfExists {
			return &govnv1.DeleteResponse{}, nil
		}
		return nil, notFound("address set %q not found", req.Name)
	}
	if err := s.checkUnreferenced(ctx, "address set", req.Name, "$"+req.Name); err != nil {
		return nil, err
	}
	t := s.txn()
	if err := t.add(ovsdbclient.DeleteOps(s.nb, t.ops, &nbdb.AddressSet{UUID: a.UUID})); err != nil {
		return nil, err
	}
	if _, err := t.commitAndSee(ctx, "", "", map[string][]string{nbdb.AddressSetTable: {a.UUID}}); err != nil {
		return nil, err
	}
	return &govnv1.DeleteResponse{Deleted: 1}, nil
}

// checkUnreferenced fails if an ACL match refers to any of refs ("$as",
// "@pg").
func (s *Server) checkUnreferenced(ctx context.Context, kind, name string, refs ...string) error {
	acls, err := listAll[nbdb.ACL](ctx, s)
	if err != nil {
		return err
	}
	for _, a := range acls {
		for _, r := range refs {
			if refersTo(a.Match, r[0], r[1:]) {
				return conflict("%s %q is used by ACL %s (match %q); delete or change that ACL first", kind, name, a.UUID, a.Match)
			}
		}
	}
	return nil
}
