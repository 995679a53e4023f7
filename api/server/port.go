package server

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"sync"

	"github.com/ovn-kubernetes/libovsdb/model"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/validate"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

type portService struct {
	govnv1.UnimplementedLogicalSwitchPortServiceServer
	s *Server
}

// ipIndex maps each IP in a switch port's addresses to the ports that list
// it, kept current from cache events, so duplicate-IP checks cost O(1)
// instead of a scan of the switch's ports.
type ipIndex struct {
	mu    sync.Mutex
	owner map[netip.Addr]map[string]bool // IP → port UUIDs
	addrs map[string][]netip.Addr        // port UUID → its IPs
}

func newIPIndex() *ipIndex {
	return &ipIndex{owner: map[netip.Addr]map[string]bool{}, addrs: map[string][]netip.Addr{}}
}

func portIPs(p *nbdb.LogicalSwitchPort) []netip.Addr {
	var out []netip.Addr
	for _, a := range p.Addresses {
		if pa, err := validate.ParseLSPAddress("", a); err == nil {
			out = append(out, pa.IPs...)
		}
	}
	if p.DynamicAddresses != nil {
		if pa, err := validate.ParseLSPAddress("", *p.DynamicAddresses); err == nil {
			out = append(out, pa.IPs...)
		}
	}
	return out
}

func (x *ipIndex) set(uuid string, ips []netip.Addr) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, a := range x.addrs[uuid] {
		delete(x.owner[a], uuid)
		if len(x.owner[a]) == 0 {
			delete(x.owner, a)
		}
	}
	delete(x.addrs, uuid)
	if len(ips) == 0 {
		return
	}
	x.addrs[uuid] = ips
	for _, a := range ips {
		if x.owner[a] == nil {
			x.owner[a] = map[string]bool{}
		}
		x.owner[a][uuid] = true
	}
}

func (x *ipIndex) owners(a netip.Addr) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []string
	for u := range x.owner[a] {
		out = append(out, u)
	}
	return out
}

// onPortEvent keeps the IP index current.
func (s *Server) onPortEvent(m model.Model, deleted bool) {
	p, ok := m.(*nbdb.LogicalSwitchPort)
	if !ok {
		return
	}
	if deleted {
		s.ips.set(p.UUID, nil)
		return
	}
	s.ips.set(p.UUID, portIPs(p))
}

// checkDuplicateIPs rejects IPs that another port of switch sw already has.
// The switch is read only if another port has one of the IPs.
func (s *Server) checkDuplicateIPs(swUUID, self string, addrs []validate.LSPAddress) error {
	var sw *nbdb.LogicalSwitch
	for _, a := range addrs {
		for _, ip := range a.IPs {
			for _, u := range s.ips.owners(ip) {
				if u == self {
					continue
				}
				if sw == nil {
					got, ok, err := lookup(s, &nbdb.LogicalSwitch{UUID: swUUID})
					if err != nil || !ok {
						return errOrGone(err, "logical switch", swUUID)
					}
					sw = got
				}
				if !slices.Contains(sw.Ports, u) {
					continue
				}
				other, ok, _ := lookup(s, &nbdb.LogicalSwitchPort{UUID: u})
				name := u
				if ok {
					name = other.Name
				}
				return conflict("duplicate IP address %s: already used by port %q on logical switch %q", ip, name, sw.Name)
			}
		}
	}
	return nil
}

func (s *Server) portByName(name string) (*nbdb.LogicalSwitchPort, error) {
	p, ok, err := lookup(s, &nbdb.LogicalSwitchPort{Name: name})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("logical switch port %q not found", name)
	}
	return p, nil
}

// switchOfPort finds the switch whose ports include uuid.
func (s *Server) switchOfPort(ctx context.Context, uuid string) (*nbdb.LogicalSwitch, error) {
	var found []nbdb.LogicalSwitch
	err := s.nb.WhereCache(func(ls *nbdb.LogicalSwitch) bool { return slices.Contains(ls.Ports, uuid) }).List(ctx, &found)
	if err != nil {
		return nil, internal(err)
	}
	if len(found) == 0 {
		return nil, nil
	}
	return &found[0], nil
}

func portProto(p *nbdb.LogicalSwitchPort, sw string) *govnv1.LogicalSwitchPort {
	out := &govnv1.LogicalSwitchPort{
		Name: p.Name, Uuid: p.UUID, Switch: sw, Type: p.Type,
		Addresses: sortedCopy(p.Addresses), PortSecurity: sortedCopy(p.PortSecurity),
		Options: cloneMap(p.Options), DynamicAddresses: deref(p.DynamicAddresses), Enabled: p.Enabled,
		Up: deref(p.Up), ParentName: deref(p.ParentName), Dhcpv4Options: deref(p.Dhcpv4Options),
		Dhcpv6Options: deref(p.Dhcpv6Options), ExternalIds: cloneMap(p.ExternalIDs),
	}
	if p.TagRequest != nil {
		out.TagRequest = ptr(int32(*p.TagRequest))
	}
	if p.Tag != nil {
		out.Tag = ptr(int32(*p.Tag))
	}
	return out
}

// checkPortFields validates the columns of a port that need no database.
func checkPortFields(in *govnv1.LogicalSwitchPort, fs fieldSet) ([]validate.LSPAddress, error) {
	var addrs []validate.LSPAddress
	if fs["type"] {
		if err := validate.LSPType("type", in.Type); err != nil {
			return nil, invalid("logical_switch_port", err)
		}
	}
	if fs["addresses"] {
		var err error
		if addrs, err = validate.LSPAddresses("addresses", in.Addresses); err != nil {
			return nil, invalid("logical_switch_port", err)
		}
		if in.Type == "router" || in.Type == "localnet" {
			for i, a := range addrs {
				if a.Dynamic {
					return nil, badField("logical_switch_port", fmt.Sprintf("addresses[%d]", i), in.Addresses[i], "a %s port cannot have dynamic addresses", in.Type)
				}
			}
		}
	}
	if fs["port_security"] {
		if err := validate.PortSecurity("port_security", in.PortSecurity); err != nil {
			return nil, invalid("logical_switch_port", err)
		}
	}
	if fs["tag_request"] && in.TagRequest != nil && (*in.TagRequest < 0 || *in.TagRequest > 4095) {
		return nil, badField("logical_switch_port", "tag_request", fmt.Sprint(*in.TagRequest), "out of range 0..4095")
	}
	if fs["parent_name"] && in.ParentName != "" {
		if err := validate.Name("parent_name", in.ParentName); err != nil {
			return nil, invalid("logical_switch_port", err)
		}
		if in.ParentName == in.Name {
			return nil, badField("logical_switch_port", "parent_name", in.ParentName, "a port cannot be its own parent")
		}
	}
	return addrs, nil
}

var portSettable = []string{"type", "addresses", "port_security", "options", "enabled", "tag_request",
	"parent_name", "dhcpv4_options", "dhcpv6_options", "external_ids"}

// applyPortFields copies the fields in fs from in to p, resolving DHCP
// option references (asserted to exist in t). It returns the changed
// model fields.
func (s *Server) applyPortFields(t *txn, p *nbdb.LogicalSwitchPort, in *govnv1.LogicalSwitchPort, fs fieldSet) ([]any, error) {
	var fields []any
	for _, f := range portSettable {
		if !fs[f] {
			continue
		}
		switch f {
		case "type":
			p.Type = in.Type
			fields = append(fields, &p.Type)
		case "addresses":
			p.Addresses = nonNilSlice(slices.Clone(in.Addresses))
			fields = append(fields, &p.Addresses)
		case "port_security":
			p.PortSecurity = nonNilSlice(slices.Clone(in.PortSecurity))
			fields = append(fields, &p.PortSecurity)
		case "options":
			p.Options = nonNilMap(cloneMap(in.Options))
			fields = append(fields, &p.Options)
		case "enabled":
			p.Enabled = in.Enabled
			fields = append(fields, &p.Enabled)
		case "tag_request":
			p.TagRequest = nil
			if in.TagRequest != nil {
				p.TagRequest = ptr(int(*in.TagRequest))
			}
			fields = append(fields, &p.TagRequest)
			// A port without a parent (a localnet port's VLAN): its tag is
			// the requested one, written here as OVN's northd would (govn's
			// northd copies Logical_Switch_Port.tag to the southbound).
			parent := deref(p.ParentName)
			if fs["parent_name"] {
				parent = in.ParentName
			}
			if parent == "" {
				p.Tag = p.TagRequest
				fields = append(fields, &p.Tag)
			}
		case "parent_name":
			p.ParentName = optString(in.ParentName)
			fields = append(fields, &p.ParentName)
		case "dhcpv4_options", "dhcpv6_options":
			ref := in.Dhcpv4Options
			dst := &p.Dhcpv4Options
			if f == "dhcpv6_options" {
				ref, dst = in.Dhcpv6Options, &p.Dhcpv6Options
			}
			*dst = nil
			if ref != "" {
				if _, ok, err := lookup(s, &nbdb.DHCPOptions{UUID: ref}); err != nil {
					return nil, err
				} else if !ok {
					return nil, notFound("%s: DHCP options %q not found", f, ref)
				}
				t.exists(nbdb.DHCPOptionsTable, ref, notFound("%s: DHCP options %q was deleted concurrently", f, ref))
				*dst = ptr(ref)
			}
			fields = append(fields, dst)
		case "external_ids":
			p.ExternalIDs = nonNilMap(cloneMap(in.ExternalIds))
			fields = append(fields, &p.ExternalIDs)
		}
	}
	return fields, nil
}

func (x portService) CreateLogicalSwitchPort(ctx context.Context, req *govnv1.CreateLogicalSwitchPortRequest) (*govnv1.LogicalSwitchPort, error) {
	s := x.s
	in := req.GetLogicalSwitchPort()
	if in == nil {
		return nil, badField("logical_switch_port", "", "", "missing")
	}
	if err := validate.Name("name", in.Name); err != nil {
		return nil, invalid("logical_switch_port", err)
	}
	if in.Switch == "" {
		return nil, badField("logical_switch_port", "switch", "", "required: the switch to add the port to")
	}
	all := fieldSet{}
	for _, f := range portSettable {
		all[f] = true
	}
	addrs, err := checkPortFields(in, all)
	if err != nil {
		return nil, err
	}
	swUUID, found, err := s.uuidByName(nbdb.LogicalSwitchTable, in.Switch)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, notFound("logical switch %q not found", in.Switch)
	}
	if old, ok, err := lookup(s, &nbdb.LogicalSwitchPort{Name: in.Name}); err != nil {
		return nil, err
	} else if ok {
		sw, err := s.switchByName(in.Switch)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(sw.Ports, old.UUID) {
			owner, _ := s.switchOfPort(ctx, old.UUID)
			where := "no switch"
			if owner != nil {
				where = fmt.Sprintf("logical switch %q", owner.Name)
			}
			return nil, alreadyExists("logical switch port %q already exists in %s", in.Name, where)
		}
		if req.MayExist {
			return portProto(old, sw.Name), nil
		}
		return nil, alreadyExists("logical switch port %q already exists", in.Name)
	}
	if _, ok, err := lookup(s, &nbdb.LogicalRouterPort{Name: in.Name}); err != nil {
		return nil, err
	} else if ok {
		return nil, alreadyExists("name %q is already used by a logical router port", in.Name)
	}
	if err := s.checkDuplicateIPs(swUUID, "", addrs); err != nil {
		return nil, err
	}
	t := s.txn()
	p := &nbdb.LogicalSwitchPort{UUID: ovsdbclient.NamedUUID(), Name: in.Name}
	if _, err := s.applyPortFields(t, p, in, all); err != nil {
		return nil, err
	}
	t.exists(nbdb.LogicalSwitchTable, swUUID, notFound("logical switch %q was deleted concurrently", in.Switch))
	t.absent(nbdb.LogicalSwitchPortTable, "name", in.Name, alreadyExists("logical switch port %q already exists", in.Name))
	t.absent(nbdb.LogicalRouterPortTable, "name", in.Name, alreadyExists("name %q is already used by a logical router port", in.Name))
	if err := t.add(ovsdbclient.CreateOps(s.nb, t.ops, p)); err != nil {
		return nil, err
	}
	t.insertInto(nbdb.LogicalSwitchTable, swUUID, "ports", true, p.UUID)
	uuid, err := t.commitAndSee(ctx, nbdb.LogicalSwitchPortTable, p.UUID, nil)
	if err != nil {
		return nil, err
	}
	got, ok, err := lookup(s, &nbdb.LogicalSwitchPort{UUID: uuid})
	if err != nil || !ok {
		return nil, internal(errOrGone(err, "logical switch port", in.Name))
	}
	return portProto(got, in.Switch), nil
}

func (x portService) GetLogicalSwitchPort(ctx context.Context, req *govnv1.GetLogicalSwitchPortRequest) (*govnv1.LogicalSwitchPort, error) {
	p, err := x.s.portByName(req.Name)
	if err != nil {
		return nil, err
	}
	sw, err := x.s.switchOfPort(ctx, p.UUID)
	if err != nil {
		return nil, err
	}
	name := ""
	if sw != nil {
		name = sw.Name
	}
	return portProto(p, name), nil
}

func (x portService) ListLogicalSwitchPorts(ctx context.Context, req *govnv1.ListLogicalSwitchPortsRequest) (*govnv1.ListLogicalSwitchPortsResponse, error) {
	s := x.s
	var switches []nbdb.LogicalSwitch
	if req.Switch != "" {
		sw, err := s.switchByName(req.Switch)
		if err != nil {
			return nil, err
		}
		switches = []nbdb.LogicalSwitch{*sw}
	} else {
		var err error
		if switches, err = listAll[nbdb.LogicalSwitch](ctx, s); err != nil {
			return nil, err
		}
	}
	out := &govnv1.ListLogicalSwitchPortsResponse{}
	for i := range switches {
		for _, u := range switches[i].Ports {
			if p, ok, _ := lookup(s, &nbdb.LogicalSwitchPort{UUID: u}); ok {
				out.Items = append(out.Items, portProto(p, switches[i].Name))
			}
		}
	}
	slices.SortFunc(out.Items, func(a, b *govnv1.LogicalSwitchPort) int {
		if c := cmpStr(a.Switch, b.Switch); c != 0 {
			return c
		}
		return cmpStr(a.Name, b.Name)
	})
	return out, nil
}

func (x portService) UpdateLogicalSwitchPort(ctx context.Context, req *govnv1.UpdateLogicalSwitchPortRequest) (*govnv1.LogicalSwitchPort, error) {
	s := x.s
	in := req.GetLogicalSwitchPort()
	if in == nil {
		return nil, badField("logical_switch_port", "", "", "missing")
	}
	fs, err := updateFields("logical_switch_port", req.UpdateMask, portSettable...)
	if err != nil {
		return nil, err
	}
	p, err := s.portByName(in.Name)
	if err != nil {
		return nil, err
	}
	if !fs["type"] {
		in.Type = p.Type // for the checks that depend on the type
	}
	addrs, err := checkPortFields(in, fs)
	if err != nil {
		return nil, err
	}
	sw, err := s.switchOfPort(ctx, p.UUID)
	if err != nil {
		return nil, err
	}
	if in.Switch != "" && (sw == nil || sw.Name != in.Switch) {
		return nil, badField("logical_switch_port", "switch", in.Switch, "a port cannot move to another switch (delete and re-create it)")
	}
	if sw != nil && fs["addresses"] {
		if err := s.checkDuplicateIPs(sw.UUID, p.UUID, addrs); err != nil {
			return nil, err
		}
	}
	t := s.txn()
	t.exists(nbdb.LogicalSwitchPortTable, p.UUID, notFound("logical switch port %q was deleted concurrently", in.Name))
	fields, err := s.applyPortFields(t, p, in, fs)
	if err != nil {
		return nil, err
	}
	if err := t.add(ovsdbclient.UpdateOps(s.nb, t.ops, p, fields...)); err != nil {
		return nil, err
	}
	if _, err := t.commit(ctx); err != nil {
		return nil, err
	}
	return x.GetLogicalSwitchPort(ctx, &govnv1.GetLogicalSwitchPortRequest{Name: in.Name})
}

func (x portService) DeleteLogicalSwitchPort(ctx context.Context, req *govnv1.DeleteLogicalSwitchPortRequest) (*govnv1.DeleteResponse, error) {
	s := x.s
	p, ok, err := lookup(s, &nbdb.LogicalSwitchPort{Name: req.Name})
	if err != nil {
		return nil, err
	}
	if !ok {
		if req.IfExists {
			return &govnv1.DeleteResponse{}, nil
		}
		return nil, notFound("logical switch port %q not found", req.Name)
	}
	sw, err := s.switchOfPort(ctx, p.UUID)
	if err != nil {
		return nil, err
	}
	t := s.txn()
	if sw != nil {
		t.insertInto(nbdb.LogicalSwitchTable, sw.UUID, "ports", false, p.UUID)
	}
	// Remove the row explicitly too, so the delete is exact even if the
	// port were referenced elsewhere.
	if err := t.add(ovsdbclient.DeleteOps(s.nb, t.ops, &nbdb.LogicalSwitchPort{UUID: p.UUID})); err != nil {
		return nil, err
	}
	if _, err := t.commitAndSee(ctx, "", "", map[string][]string{nbdb.LogicalSwitchPortTable: {p.UUID}}); err != nil {
		return nil, err
	}
	return &govnv1.DeleteResponse{Deleted: 1}, nil
}
