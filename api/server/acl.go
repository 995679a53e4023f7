package server

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/model"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/validate"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

type aclService struct {
	govnv1.UnimplementedACLServiceServer
	s *Server
}

// aclParent is the switch or port group an ACL belongs to.
type aclParent struct {
	kind  string // "switch" or "port_group"
	name  string
	uuid  string
	table string
	acls  []string
	model model.Model // selector by UUID, for mutations
	field *[]string   // the selector's acls column
}

func (s *Server) aclParentOf(resource, sw, pg string) (*aclParent, error) {
	switch {
	case sw != "" && pg != "":
		return nil, badField(resource, "switch", sw, "give a switch or a port group, not both")
	case sw != "":
		ls, err := s.switchByName(sw)
		if err != nil {
			return nil, err
		}
		sel := &nbdb.LogicalSwitch{UUID: ls.UUID}
		return &aclParent{kind: "switch", name: sw, uuid: ls.UUID, table: nbdb.LogicalSwitchTable, acls: ls.ACLs, model: sel, field: &sel.ACLs}, nil
	case pg != "":
		g, err := s.portGroupByName(pg)
		if err != nil {
			return nil, err
		}
		sel := &nbdb.PortGroup{UUID: g.UUID}
		return &aclParent{kind: "port_group", name: pg, uuid: g.UUID, table: nbdb.PortGroupTable, acls: g.ACLs, model: sel, field: &sel.ACLs}, nil
	}
	return nil, badField(resource, "switch", "", "required: the switch (or port_group) the ACL belongs to")
}

// aclParents maps every ACL UUID to its parent (kind, name).
func (s *Server) aclParents(ctx context.Context) (map[string][2]string, error) {
	out := map[string][2]string{}
	switches, err := listAll[nbdb.LogicalSwitch](ctx, s)
	if err != nil {
		return nil, err
	}
	for _, ls := range switches {
		for _, u := range ls.ACLs {
			out[u] = [2]string{"switch", ls.Name}
		}
	}
	groups, err := listAll[nbdb.PortGroup](ctx, s)
	if err != nil {
		return nil, err
	}
	for _, pg := range groups {
		for _, u := range pg.ACLs {
			out[u] = [2]string{"port_group", pg.Name}
		}
	}
	return out, nil
}

func aclProto(a *nbdb.ACL, parent [2]string) *govnv1.ACL {
	out := &govnv1.ACL{
		Uuid: a.UUID, Direction: string(a.Direction), Priority: int32(a.Priority), Match: a.Match,
		Action: string(a.Action), Log: a.Log, Name: deref(a.Name), Severity: string(deref(a.Severity)),
		Meter: deref(a.Meter), Label: int64(a.Label), Options: cloneMap(a.Options), ExternalIds: cloneMap(a.ExternalIDs),
		Tier: int32(a.Tier),
	}
	if parent[0] == "switch" {
		out.Switch = parent[1]
	} else {
		out.PortGroup = parent[1]
	}
	return out
}

// checkACL validates an ACL's columns, its match (with position) and the
// address sets and port groups the match names; those are asserted to
// exist in t.
func (s *Server) checkACL(t *txn, in *govnv1.ACL) error {
	err := validate.CheckACL(validate.ACL{Direction: in.Direction, Action: in.Action, Match: in.Match, Name: in.Name,
		Severity: in.Severity, Priority: int(in.Priority), Label: in.Label, Tier: int(in.Tier)}, s.checkMatch)
	if err != nil {
		return invalid("acl", err)
	}
	if in.Log && in.Severity == "" {
		in.Severity = "info"
	}
	sets, groups := matchRefs(in.Match)
	for _, n := range sets {
		if a, ok, err := lookup(s, &nbdb.AddressSet{Name: n}); err != nil {
			return err
		} else if ok {
			t.exists(nbdb.AddressSetTable, a.UUID, notFound("address set %q was deleted concurrently", n))
			continue
		}
		// $PG_ip4 / $PG_ip6 are a port group's implicit address sets.
		base, ok := strings.CutSuffix(n, "_ip4")
		if !ok {
			base, ok = strings.CutSuffix(n, "_ip6")
		}
		if ok {
			if g, found, err := lookup(s, &nbdb.PortGroup{Name: base}); err != nil {
				return err
			} else if found {
				t.exists(nbdb.PortGroupTable, g.UUID, notFound("port group %q was deleted concurrently", base))
				continue
			}
		}
		return badField("acl", "match", in.Match, "address set $%s does not exist", n)
	}
	for _, n := range groups {
		g, ok, err := lookup(s, &nbdb.PortGroup{Name: n})
		if err != nil {
			return err
		}
		if !ok {
			return badField("acl", "match", in.Match, "port group @%s does not exist", n)
		}
		t.exists(nbdb.PortGroupTable, g.UUID, notFound("port group %q was deleted concurrently", n))
	}
	return nil
}

func (s *Server) aclsOf(ctx context.Context, p *aclParent) ([]nbdb.ACL, error) {
	var out []nbdb.ACL
	for _, u := range p.acls {
		if a, ok, err := lookup(s, &nbdb.ACL{UUID: u}); err != nil {
			return nil, err
		} else if ok {
			out = append(out, *a)
		}
	}
	return out, nil
}

func (x aclService) CreateACL(ctx context.Context, req *govnv1.CreateACLRequest) (*govnv1.ACL, error) {
	s := x.s
	in := req.GetAcl()
	if in == nil {
		return nil, badField("acl", "", "", "missing")
	}
	p, err := s.aclParentOf("acl", in.Switch, in.PortGroup)
	if err != nil {
		return nil, err
	}
	t := s.txn()
	if err := s.checkACL(t, in); err != nil {
		return nil, err
	}
	existing, err := s.aclsOf(ctx, p)
	if err != nil {
		return nil, err
	}
	for i := range existing {
		e := &existing[i]
		if string(e.Direction) == in.Direction && e.Priority == int(in.Priority) && e.Match == in.Match && e.Tier == int(in.Tier) {
			if req.MayExist && string(e.Action) == in.Action {
				return aclProto(e, [2]string{p.kind, p.name}), nil
			}
			return nil, alreadyExists("%s %q already has a %s ACL with priority %d%s and match %q (action %s)",
				strings.ReplaceAll(p.kind, "_", " "), p.name, in.Direction, in.Priority, tierText(e.Tier), in.Match, e.Action)
		}
	}
	a := &nbdb.ACL{
		UUID: ovsdbclient.NamedUUID(), Direction: nbdb.ACLDirection(in.Direction), Priority: int(in.Priority),
		Match: in.Match, Action: nbdb.ACLAction(in.Action), Log: in.Log, Name: optString(in.Name),
		Meter: optString(in.Meter), Label: int(in.Label), Options: cloneMap(in.Options), ExternalIDs: cloneMap(in.ExternalIds),
		Tier: int(in.Tier),
	}
	if in.Severity != "" {
		a.Severity = ptr(nbdb.ACLSeverity(in.Severity))
	}
	t.exists(p.table, p.uuid, notFound("%s %q was deleted concurrently", p.kind, p.name))
	if err := t.add(ovsdbclient.CreateOps(s.nb, t.ops, a)); err != nil {
		return nil, err
	}
	if err := t.add(ovsdbclient.MutateOps(s.nb, t.ops, p.model, mutateSet(p.field, true, a.UUID))); err != nil {
		return nil, err
	}
	uuid, err := t.commitAndSee(ctx, nbdb.ACLTable, a.UUID, nil)
	if err != nil {
		return nil, err
	}
	got, ok, err := lookup(s, &nbdb.ACL{UUID: uuid})
	if err != nil || !ok {
		return nil, internal(errOrGone(err, "ACL", uuid))
	}
	return aclProto(got, [2]string{p.kind, p.name}), nil
}

func (x aclService) GetACL(ctx context.Context, req *govnv1.GetACLRequest) (*govnv1.ACL, error) {
	a, ok, err := lookup(x.s, &nbdb.ACL{UUID: req.Uuid})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("ACL %q not found", req.Uuid)
	}
	parents, err := x.s.aclParents(ctx)
	if err != nil {
		return nil, err
	}
	return aclProto(a, parents[a.UUID]), nil
}

func aclLess(a, b *govnv1.ACL) int {
	if c := cmpStr(a.Switch+"\x00"+a.PortGroup, b.Switch+"\x00"+b.PortGroup); c != 0 {
		return c
	}
	// ovn-nbctl order: from-lport before to-lport, lower tier first (the
	// evaluation order, as newer ovn-nbctl), higher priority first.
	if c := cmpStr(a.Direction, b.Direction); c != 0 {
		return c
	}
	if a.Tier != b.Tier {
		return int(a.Tier - b.Tier)
	}
	if a.Priority != b.Priority {
		return int(b.Priority - a.Priority)
	}
	if c := cmpStr(a.Match, b.Match); c != 0 {
		return c
	}
	return cmpStr(a.Action, b.Action)
}

func (x aclService) ListACLs(ctx context.Context, req *govnv1.ListACLsRequest) (*govnv1.ListACLsResponse, error) {
	s := x.s
	out := &govnv1.ListACLsResponse{}
	if req.Switch != "" || req.PortGroup != "" {
		p, err := s.aclParentOf("acl", req.Switch, req.PortGroup)
		if err != nil {
			return nil, err
		}
		acls, err := s.aclsOf(ctx, p)
		if err != nil {
			return nil, err
		}
		for i := range acls {
			out.Items = append(out.Items, aclProto(&acls[i], [2]string{p.kind, p.name}))
		}
	} else {
		parents, err := s.aclParents(ctx)
		if err != nil {
			return nil, err
		}
		acls, err := listAll[nbdb.ACL](ctx, s)
		if err != nil {
			return nil, err
		}
		for i := range acls {
			out.Items = append(out.Items, aclProto(&acls[i], parents[acls[i].UUID]))
		}
	}
	slices.SortFunc(out.Items, aclLess)
	return out, nil
}

var aclSettable = []string{"direction", "priority", "match", "action", "log", "name", "severity", "meter", "label", "options", "external_ids", "tier"}

// tierText is " in tier N" for a tier above 0 (for messages).
func tierText(tier int) string {
	if tier == 0 {
		return ""
	}
	return fmt.Sprintf(" in tier %d", tier)
}

func (x aclService) UpdateACL(ctx context.Context, req *govnv1.UpdateACLRequest) (*govnv1.ACL, error) {
	s := x.s
	in := req.GetAcl()
	if in == nil {
		return nil, badField("acl", "", "", "missing")
	}
	fs, err := updateFields("acl", req.UpdateMask, aclSettable...)
	if err != nil {
		return nil, err
	}
	a, ok, err := lookup(s, &nbdb.ACL{UUID: in.Uuid})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound("ACL %q not found", in.Uuid)
	}
	parents, err := s.aclParents(ctx)
	if err != nil {
		return nil, err
	}
	// Merge: fields not being written keep their current values, and the
	// whole result is validated.
	merged := aclProto(a, parents[a.UUID])
	var fields []any
	for _, f := range aclSettable {
		if !fs[f] {
			continue
		}
		switch f {
		case "direction":
			merged.Direction = in.Direction
			fields = append(fields, &a.Direction)
		case "priority":
			merged.Priority = in.Priority
			fields = append(fields, &a.Priority)
		case "match":
			merged.Match = in.Match
			fields = append(fields, &a.Match)
		case "action":
			merged.Action = in.Action
			fields = append(fields, &a.Action)
		case "log":
			merged.Log = in.Log
			fields = append(fields, &a.Log)
		case "name":
			merged.Name = in.Name
			fields = append(fields, &a.Name)
		case "severity":
			merged.Severity = in.Severity
			fields = append(fields, &a.Severity)
		case "meter":
			merged.Meter = in.Meter
			fields = append(fields, &a.Meter)
		case "label":
			merged.Label = in.Label
			fields = append(fields, &a.Label)
		case "options":
			merged.Options = in.Options
			fields = append(fields, &a.Options)
		case "external_ids":
			merged.ExternalIds = in.ExternalIds
			fields = append(fields, &a.ExternalIDs)
		case "tier":
			merged.Tier = in.Tier
			fields = append(fields, &a.Tier)
		}
	}
	t := s.txn()
	if err := s.checkACL(t, merged); err != nil {
		return nil, err
	}
	if fs["log"] && merged.Log && !fs["severity"] && a.Severity == nil {
		fields = append(fields, &a.Severity) // checkACL defaulted it
	}
	a.Direction, a.Priority, a.Match = nbdb.ACLDirection(merged.Direction), int(merged.Priority), merged.Match
	a.Action, a.Log, a.Name = nbdb.ACLAction(merged.Action), merged.Log, optString(merged.Name)
	a.Severity = nil
	if merged.Severity != "" {
		a.Severity = ptr(nbdb.ACLSeverity(merged.Severity))
	}
	a.Meter, a.Label, a.Tier = optString(merged.Meter), int(merged.Label), int(merged.Tier)
	a.Options, a.ExternalIDs = nonNilMap(cloneMap(merged.Options)), nonNilMap(cloneMap(merged.ExternalIds))
	t.exists(nbdb.ACLTable, a.UUID, notFound("ACL %q was deleted concurrently", a.UUID))
	if err := t.add(ovsdbclient.UpdateOps(s.nb, t.ops, a, fields...)); err != nil {
		return nil, err
	}
	if _, err := t.commit(ctx); err != nil {
		return nil, err
	}
	return x.GetACL(ctx, &govnv1.GetACLRequest{Uuid: a.UUID})
}

func (x aclService) DeleteACL(ctx context.Context, req *govnv1.DeleteACLRequest) (*govnv1.DeleteResponse, error) {
	s := x.s
	var victims []string
	var p *aclParent
	if req.Uuid != "" {
		parents, err := s.aclParents(ctx)
		if err != nil {
			return nil, err
		}
		par, ok := parents[req.Uuid]
		if !ok {
			if _, found, _ := lookup(s, &nbdb.ACL{UUID: req.Uuid}); !found {
				if req.IfExists {
					return &govnv1.DeleteResponse{}, nil
				}
				return nil, notFound("ACL %q not found", req.Uuid)
			}
		}
		sw, pg := par[1], ""
		if par[0] == "port_group" {
			sw, pg = "", par[1]
		}
		if p, err = s.aclParentOf("acl", sw, pg); err != nil {
			return nil, err
		}
		victims = []string{req.Uuid}
	} else {
		var err error
		if p, err = s.aclParentOf("acl", req.Switch, req.PortGroup); err != nil {
			return nil, err
		}
		if req.Direction != "" {
			if err := validate.Enum("direction", req.Direction, validate.ACLDirections...); err != nil {
				return nil, invalid("acl", err)
			}
		}
		if req.Priority == nil && req.Match != "" {
			return nil, badField("acl", "match", req.Match, "selecting by match also needs direction and priority")
		}
		if req.Tier != nil && (*req.Tier < 0 || *req.Tier > validate.MaxACLTier) {
			return nil, badField("acl", "tier", strconv.Itoa(int(*req.Tier)), "out of range 0..%d", validate.MaxACLTier)
		}
		if req.Priority != nil && req.Direction == "" {
			return nil, badField("acl", "priority", fmt.Sprint(*req.Priority), "selecting by priority also needs direction")
		}
		acls, err := s.aclsOf(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, a := range acls {
			if (req.Name == "" || deref(a.Name) == req.Name) &&
				(req.Direction == "" || string(a.Direction) == req.Direction) &&
				(req.Priority == nil || a.Priority == int(*req.Priority)) &&
				(req.Match == "" || a.Match == req.Match) &&
				(req.Tier == nil || a.Tier == int(*req.Tier)) {
				victims = append(victims, a.UUID)
			}
		}
		if len(victims) == 0 && (req.Name != "" || req.Direction != "" || req.Tier != nil) {
			if req.IfExists {
				return &govnv1.DeleteResponse{}, nil
			}
			return nil, notFound("no ACL of %s %q matches", strings.ReplaceAll(p.kind, "_", " "), p.name)
		}
	}
	if len(victims) == 0 {
		return &govnv1.DeleteResponse{}, nil
	}
	t := s.txn()
	if err := t.add(ovsdbclient.MutateOps(s.nb, t.ops, p.model, mutateSet(p.field, false, victims...))); err != nil {
		return nil, err
	}
	if _, err := t.commitAndSee(ctx, "", "", map[string][]string{nbdb.ACLTable: victims}); err != nil {
		return nil, err
	}
	return &govnv1.DeleteResponse{Deleted: int32(len(victims))}, nil
}
