package server

import (
	"context"
	"slices"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/validate"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

type natService struct {
	govnv1.UnimplementedNATServiceServer
	s *Server
}

func natProto(n *nbdb.NAT, router string) *govnv1.NAT {
	return &govnv1.NAT{Uuid: n.UUID, Router: router, Type: string(n.Type), ExternalIp: n.ExternalIP, LogicalIp: n.LogicalIP,
		LogicalPort: deref(n.LogicalPort), ExternalMac: deref(n.ExternalMAC), ExternalPortRange: n.ExternalPortRange,
		Options: cloneMap(n.Options), ExternalIds: cloneMap(n.ExternalIDs)}
}

func (s *Server) natsOf(lr *nbdb.LogicalRouter) []*nbdb.NAT {
	var out []*nbdb.NAT
	for _, u := range lr.Nat {
		if n, ok, _ := lookup(s, &nbdb.NAT{UUID: u}); ok {
			out = append(out, n)
		}
	}
	return out
}

// natKey is the column that identifies a rule of a type: the external IP
// for dnat and dnat_and_snat, the logical IP (network) for snat.
func natKey(typ, externalIP, logicalIP string) string {
	if typ == "snat" {
		return logicalIP
	}
	return externalIP
}

func (s *Server) checkNAT(in *govnv1.NAT) error {
	if err := validate.NAT(in.Type, in.ExternalIp, in.LogicalIp, in.LogicalPort, in.ExternalMac, in.ExternalPortRange); err != nil {
		return invalid("nat", err)
	}
	if in.LogicalPort != "" {
		if _, ok, err := lookup(s, &nbdb.LogicalSwitchPort{Name: in.LogicalPort}); err != nil {
			return err
		} else if !ok {
			return notFound("logical_port: logical switch port %q not found", in.LogicalPort)
		}
	}
	return nil
}

var natSettable = []string{"type", "external_ip", "logical_ip", "logical_port", "external_mac", "external_port_range", "options", "external_ids"}

func setNATFields(n *nbdb.NAT, in *govnv1.NAT, fs fieldSet) []any {
	var fields []any
	if fs["type"] {
		n.Type = nbdb.NATType(in.Type)
		fields = append(fields, &n.Type)
	}
	if fs["external_ip"] {
		n.ExternalIP = in.ExternalIp
		fields = append(fields, &n.ExternalIP)
	}
	if fs["logical_ip"] {
		n.LogicalIP = in.LogicalIp
		fields = append(fields, &n.LogicalIP)
	}
	if fs["logical_port"] {
		n.LogicalPort = optString(in.LogicalPort)
		fields = append(fields, &n.LogicalPort)
	}
	if fs["external_mac"] {
		n.ExternalMAC = optString(in.ExternalMac)
		fields = append(fields, &n.ExternalMAC)
	}
	if fs["external_port_range"] {
		n.ExternalPortRange = in.ExternalPortRange
		fields = append(fields, &n.ExternalPortRange)
	}
	if fs["options"] {
		n.Options = nonNilMap(cloneMap(in.Options))
		fields = append(fields, &n.Options)
	}
	if fs["external_ids"] {
		n.ExternalIDs = nonNilMap(cloneMap(in.ExternalIds))
		fields = append(fields, &n.ExternalIDs)
	}
	return fields
}

func (x natService) CreateNAT(ctx context.Context, req *govnv1.CreateNATRequest) (*govnv1.NAT, error) {
	s := x.s
	in := req.GetNat()
	if in == nil {
		return nil, badField("nat", "", "", "missing")
	}
	lr, err := s.parentRouter("nat", in.Router, "the router the rule belongs to")
	if err != nil {
		return nil, err
	}
	if err := s.checkNAT(in); err != nil {
		return nil, err
	}
	key := natKey(in.Type, in.ExternalIp, in.LogicalIp)
	for _, n := range s.natsOf(lr) {
		if string(n.Type) == in.Type && natKey(string(n.Type), n.ExternalIP, n.LogicalIP) == key {
			if req.MayExist && n.ExternalIP == in.ExternalIp && n.LogicalIP == in.LogicalIp {
				return natProto(n, lr.Name), nil
			}
			return nil, alreadyExists("logical router %q already has a %s rule for %s (external %s, logical %s)", lr.Name, in.Type, key, n.ExternalIP, n.LogicalIP)
		}
	}
	n := &nbdb.NAT{UUID: ovsdbclient.NamedUUID()}
	setNATFields(n, in, allFields(natSettable))
	uuid, err := childNAT.create(ctx, s, s.txn(), lr, n, n.UUID)
	if err != nil {
		return nil, err
	}
	got, ok, err := lookup(s, &nbdb.NAT{UUID: uuid})
	if err != nil || !ok {
		return nil, internal(errOrGone(err, "NAT rule", uuid))
	}
	return natProto(got, lr.Name), nil
}

func (x natService) GetNAT(ctx context.Context, req *govnv1.GetNATRequest) (*govnv1.NAT, error) {
	n, router, err := getChild(ctx, x.s, childNAT, &nbdb.NAT{UUID: req.Uuid}, req.Uuid)
	if err != nil {
		return nil, err
	}
	return natProto(n, router), nil
}

func (x natService) ListNATs(ctx context.Context, req *govnv1.ListNATsRequest) (*govnv1.ListNATsResponse, error) {
	s := x.s
	routers, err := s.routersNamed(ctx, req.Router)
	if err != nil {
		return nil, err
	}
	out := &govnv1.ListNATsResponse{}
	for i := range routers {
		for _, n := range s.natsOf(&routers[i]) {
			out.Items = append(out.Items, natProto(n, routers[i].Name))
		}
	}
	slices.SortFunc(out.Items, func(a, b *govnv1.NAT) int {
		return cmpPairs([2]string{a.Router, b.Router}, [2]string{a.Type, b.Type}, [2]string{a.ExternalIp, b.ExternalIp}, [2]string{a.LogicalIp, b.LogicalIp})
	})
	return out, nil
}

func (x natService) UpdateNAT(ctx context.Context, req *govnv1.UpdateNATRequest) (*govnv1.NAT, error) {
	s := x.s
	in := req.GetNat()
	if in == nil {
		return nil, badField("nat", "", "", "missing")
	}
	fs, err := updateFields("nat", req.UpdateMask, natSettable...)
	if err != nil {
		return nil, err
	}
	n, _, err := getChild(ctx, s, childNAT, &nbdb.NAT{UUID: in.Uuid}, in.Uuid)
	if err != nil {
		return nil, err
	}
	merged := natProto(n, "")
	if fs["type"] {
		merged.Type = in.Type
	}
	if fs["external_ip"] {
		merged.ExternalIp = in.ExternalIp
	}
	if fs["logical_ip"] {
		merged.LogicalIp = in.LogicalIp
	}
	if fs["logical_port"] {
		merged.LogicalPort = in.LogicalPort
	}
	if fs["external_mac"] {
		merged.ExternalMac = in.ExternalMac
	}
	if fs["external_port_range"] {
		merged.ExternalPortRange = in.ExternalPortRange
	}
	if err := s.checkNAT(merged); err != nil {
		return nil, err
	}
	if err := childNAT.update(ctx, s, n, n.UUID, n.UUID, setNATFields(n, in, fs)); err != nil {
		return nil, err
	}
	return x.GetNAT(ctx, &govnv1.GetNATRequest{Uuid: n.UUID})
}

func (x natService) DeleteNAT(ctx context.Context, req *govnv1.DeleteNATRequest) (*govnv1.DeleteResponse, error) {
	s := x.s
	var lr *nbdb.LogicalRouter
	var victims []string
	var err error
	if req.Uuid != "" {
		if lr, victims, err = childNAT.deleteByUUID(ctx, s, req.Uuid, req.IfExists); err != nil {
			return nil, err
		}
	} else {
		if lr, err = s.parentRouter("nat", req.Router, "the router (or give uuid)"); err != nil {
			return nil, err
		}
		if req.Type != "" {
			if err := validate.Enum("type", req.Type, "snat", "dnat", "dnat_and_snat"); err != nil {
				return nil, invalid("nat", err)
			}
		} else if req.Ip != "" {
			return nil, badField("nat", "ip", req.Ip, "selecting by ip also needs type")
		}
		for _, n := range s.natsOf(lr) {
			if (req.Type == "" || string(n.Type) == req.Type) && (req.Ip == "" || natKey(string(n.Type), n.ExternalIP, n.LogicalIP) == req.Ip) {
				victims = append(victims, n.UUID)
			}
		}
		if len(victims) == 0 && req.Type != "" {
			if req.IfExists {
				return &govnv1.DeleteResponse{}, nil
			}
			return nil, notFound("logical router %q has no matching %s rule", lr.Name, req.Type)
		}
	}
	return childNAT.remove(ctx, s, lr, victims)
}
