package server

import (
	"context"
	"slices"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/validate"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

type dhcpService struct {
	govnv1.UnimplementedDHCPOptionsServiceServer
	s *Server
}

func dhcpProto(d *nbdb.DHCPOptions) *govnv1.DHCPOptions {
	return &govnv1.DHCPOptions{Uuid: d.UUID, Cidr: d.Cidr, Options: cloneMap(d.Options), ExternalIds: cloneMap(d.ExternalIDs)}
}

func (x dhcpService) CreateDHCPOptions(ctx context.Context, req *govnv1.CreateDHCPOptionsRequest) (*govnv1.DHCPOptions, error) {
	s := x.s
	in := req.GetDhcpOptions()
	if in == nil {
		return nil, badField("dhcp_options", "", "", "missing")
	}
	if err := validate.DHCPOptions(in.Cidr, in.Options); err != nil {
		return nil, invalid("dhcp_options", err)
	}
	if req.MayExist {
		rows, err := listAll[nbdb.DHCPOptions](ctx, s)
		if err != nil {
			return nil, err
		}
		for i := range rows {
			if rows[i].Cidr == in.Cidr && mapsEqual(rows[i].Options, in.Options) && mapsEqual(rows[i].ExternalIDs, in.ExternalIds) {
				return dhcpProto(&rows[i]), nil
			}
		}
	}
	d := &nbdb.DHCPOptions{UUID: ovsdbclient.NamedUUID(), Cidr: in.Cidr, Options: cloneMap(in.Options), ExternalIDs: cloneMap(in.ExternalIds)}
	t := s.txn()
	if err := t.add(ovsdbclient.CreateOps(s.nb, t.ops, d)); err != nil {
		return nil, err
	}
	uuid, err := t.commitAndSee(ctx, nbdb.DHCPOptionsTable, d.UUID, nil)
	if err != nil {
		return nil, err
	}
	got, ok, err := lookup(s, &nbdb.DHCPOptions{UUID: uuid})
	if err != nil || !ok {
		return nil, internal(errOrGone(err, "DHCP options", uuid))
	}
	return dhcpProto(got), nil
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func (x dhcpService) GetDHCPOptions(_ context.Context, req *govnv1.GetDHCPOptionsRequest) (*govnv1.DHCPOptions, error) {
	d, ok, err := lookup(x.s, &nbdb.DHCPOptions{UUID: req.Uuid})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("DHCP options %q not found", req.Uuid)
	}
	return dhcpProto(d), nil
}

func (x dhcpService) ListDHCPOptions(ctx context.Context, req *govnv1.ListDHCPOptionsRequest) (*govnv1.ListDHCPOptionsResponse, error) {
	rows, err := listAll[nbdb.DHCPOptions](ctx, x.s)
	if err != nil {
		return nil, err
	}
	out := &govnv1.ListDHCPOptionsResponse{}
	for i := range rows {
		if req.Cidr == "" || rows[i].Cidr == req.Cidr {
			out.Items = append(out.Items, dhcpProto(&rows[i]))
		}
	}
	slices.SortFunc(out.Items, func(a, b *govnv1.DHCPOptions) int {
		if c := cmpStr(a.Cidr, b.Cidr); c != 0 {
			return c
		}
		return cmpStr(a.Uuid, b.Uuid)
	})
	return out, nil
}

func (x dhcpService) UpdateDHCPOptions(ctx context.Context, req *govnv1.UpdateDHCPOptionsRequest) (*govnv1.DHCPOptions, error) {
	s := x.s
	in := req.GetDhcpOptions()
	if in == nil {
		return nil, badField("dhcp_options", "", "", "missing")
	}
	fs, err := updateFields("dhcp_options", req.UpdateMask, "cidr", "options", "external_ids")
	if err != nil {
		return nil, err
	}
	d, ok, err := lookup(s, &nbdb.DHCPOptions{UUID: in.Uuid})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("DHCP options %q not found", in.Uuid)
	}
	var fields []any
	if fs["cidr"] {
		d.Cidr = in.Cidr
		fields = append(fields, &d.Cidr)
	}
	if fs["options"] {
		d.Options = nonNilMap(cloneMap(in.Options))
		fields = append(fields, &d.Options)
	}
	if fs["external_ids"] {
		d.ExternalIDs = nonNilMap(cloneMap(in.ExternalIds))
		fields = append(fields, &d.ExternalIDs)
	}
	if err := validate.DHCPOptions(d.Cidr, d.Options); err != nil {
		return nil, invalid("dhcp_options", err)
	}
	t := s.txn()
	t.exists(nbdb.DHCPOptionsTable, d.UUID, notFound("DHCP options %q was deleted concurrently", d.UUID))
	if err := t.add(ovsdbclient.UpdateOps(s.nb, t.ops, d, fields...)); err != nil {
		return nil, err
	}
	if _, err := t.commit(ctx); err != nil {
		return nil, err
	}
	return x.GetDHCPOptions(ctx, &govnv1.GetDHCPOptionsRequest{Uuid: d.UUID})
}

func (x dhcpService) DeleteDHCPOptions(ctx context.Context, req *govnv1.DeleteDHCPOptionsRequest) (*govnv1.DeleteResponse, error) {
	s := x.s
	d, ok, err := lookup(s, &nbdb.DHCPOptions{UUID: req.Uuid})
	if err != nil {
		return nil, err
	}
	if !ok {
		if req.IfExists {
			return &govnv1.DeleteResponse{}, nil
		}
		return nil, notFound("DHCP options %q not found", req.Uuid)
	}
	// Ports refer to DHCP options weakly: their references are cleared.
	t := s.txn()
	if err := t.add(ovsdbclient.DeleteOps(s.nb, t.ops, &nbdb.DHCPOptions{UUID: d.UUID})); err != nil {
		return nil, err
	}
	if _, err := t.commitAndSee(ctx, "", "", map[string][]string{nbdb.DHCPOptionsTable: {d.UUID}}); err != nil {
		return nil, err
	}
	return &govnv1.DeleteResponse{Deleted: 1}, nil
}
