package server

import (
	"context"

	"github.com/ovn-kubernetes/libovsdb/model"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

// routerChild is a kind of row that lives in a set column of its
// Logical_Router (static routes, NAT rules, router ports): the create,
// update, delete and owner lookups the three services share.
type routerChild struct {
	what   string                                 // in messages: "static route", …
	table  string                                 // the child's table
	column func(lr *nbdb.LogicalRouter) *[]string // the router's set column holding it
}

var (
	childRoute = routerChild{"static route", nbdb.LogicalRouterStaticRouteTable,
		func(lr *nbdb.LogicalRouter) *[]string { return &lr.StaticRoutes }}
	childNAT = routerChild{"NAT rule", nbdb.NATTable,
		func(lr *nbdb.LogicalRouter) *[]string { return &lr.Nat }}
	childPort = routerChild{"logical router port", nbdb.LogicalRouterPortTable,
		func(lr *nbdb.LogicalRouter) *[]string { return &lr.Ports }}
)

// routerChildren maps each static route or NAT UUID to its router's name.
func (s *Server) routerChildren(ctx context.Context, nat bool) (map[string]string, error) {
	if nat {
		return childNAT.owners(ctx, s)
	}
	return childRoute.owners(ctx, s)
}

// owners maps each child UUID to its router's name.
func (c routerChild) owners(ctx context.Context, s *Server) (map[string]string, error) {
	routers, err := listAll[nbdb.LogicalRouter](ctx, s)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for i := range routers {
		for _, u := range *c.column(&routers[i]) {
			out[u] = routers[i].Name
		}
	}
	return out, nil
}

// ownerOf is the router holding child uuid; found is false if no router
// holds it.
func (c routerChild) ownerOf(ctx context.Context, s *Server, uuid string) (lr *nbdb.LogicalRouter, found bool, err error) {
	owners, err := c.owners(ctx, s)
	if err != nil {
		return nil, false, err
	}
	name, ok := owners[uuid]
	if !ok {
		return nil, false, nil
	}
	lr, err = s.routerByName(name)
	return lr, err == nil, err
}

// parentRouter resolves the router a new child names (required).
func (s *Server) parentRouter(resource, router, required string) (*nbdb.LogicalRouter, error) {
	if router == "" {
		return nil, badField(resource, "router", "", "required: %s", required)
	}
	return s.routerByName(router)
}

// routersNamed is the router called name, or every router if name is "".
func (s *Server) routersNamed(ctx context.Context, name string) ([]nbdb.LogicalRouter, error) {
	if name == "" {
		return listAll[nbdb.LogicalRouter](ctx, s)
	}
	lr, err := s.routerByName(name)
	if err != nil {
		return nil, err
	}
	return []nbdb.LogicalRouter{*lr}, nil
}

// create inserts row (whose UUID is the named UUID named) and links it into
// lr, in t (which may already hold preconditions), asserting that lr still
// exists; it commits, waits until the cache has the row and returns its
// real UUID.
func (c routerChild) create(ctx context.Context, s *Server, t *txn, lr *nbdb.LogicalRouter, row model.Model, named string) (string, error) {
	t.exists(nbdb.LogicalRouterTable, lr.UUID, notFound("logical router %q was deleted concurrently", lr.Name))
	if err := t.add(ovsdbclient.CreateOps(s.nb, t.ops, row)); err != nil {
		return "", err
	}
	sel := &nbdb.LogicalRouter{UUID: lr.UUID}
	if err := t.add(ovsdbclient.MutateOps(s.nb, t.ops, sel, mutateSet(c.column(sel), true, named))); err != nil {
		return "", err
	}
	return t.commitAndSee(ctx, c.table, named, nil)
}

// update writes fields of row in one transaction that fails with NOT_FOUND
// if the row (uuid, called id in the message) was deleted concurrently.
func (c routerChild) update(ctx context.Context, s *Server, row model.Model, uuid, id string, fields []any) error {
	t := s.txn()
	t.exists(c.table, uuid, notFound("%s %q was deleted concurrently", c.what, id))
	if err := t.add(ovsdbclient.UpdateOps(s.nb, t.ops, row, fields...)); err != nil {
		return err
	}
	_, err := t.commit(ctx)
	return err
}

// remove unlinks victims from lr (strong references: the rows go with
// them) and waits until the cache no longer has them.
func (c routerChild) remove(ctx context.Context, s *Server, lr *nbdb.LogicalRouter, victims []string) (*govnv1.DeleteResponse, error) {
	if len(victims) == 0 {
		return &govnv1.DeleteResponse{}, nil
	}
	t := s.txn()
	sel := &nbdb.LogicalRouter{UUID: lr.UUID}
	if err := t.add(ovsdbclient.MutateOps(s.nb, t.ops, sel, mutateSet(c.column(sel), false, victims...))); err != nil {
		return nil, err
	}
	if _, err := t.commitAndSee(ctx, "", "", map[string][]string{c.table: victims}); err != nil {
		return nil, err
	}
	return &govnv1.DeleteResponse{Deleted: int32(len(victims))}, nil
}

// allFields is a fieldSet with every one of settable.
func allFields(settable []string) fieldSet {
	all := fieldSet{}
	for _, f := range settable {
		all[f] = true
	}
	return all
}

// getChild looks row up by its UUID (NOT_FOUND if absent) and returns it
// with the name of the router holding it ("" if none).
func getChild[T model.Model](ctx context.Context, s *Server, c routerChild, row T, uuid string) (T, string, error) {
	got, ok, err := lookup(s, row)
	if err == nil && !ok {
		err = notFound("%s %q not found", c.what, uuid)
	}
	if err != nil {
		return got, "", err
	}
	owners, err := c.owners(ctx, s)
	if err != nil {
		return got, "", err
	}
	return got, owners[uuid], nil
}

// cmpPairs compares the first differing pair of strings (list order).
func cmpPairs(pairs ...[2]string) int {
	for _, p := range pairs {
		if r := cmpStr(p[0], p[1]); r != 0 {
			return r
		}
	}
	return 0
}

// deleteByUUID resolves a delete of one child by UUID: its router and the
// victim; a missing child is NOT_FOUND, or nothing to do (nil, nil) with
// ifExists.
func (c routerChild) deleteByUUID(ctx context.Context, s *Server, uuid string, ifExists bool) (*nbdb.LogicalRouter, []string, error) {
	lr, found, err := c.ownerOf(ctx, s, uuid)
	if err != nil {
		return nil, nil, err
	}
	if !found {
		if ifExists {
			return nil, nil, nil
		}
		return nil, nil, notFound("%s %q not found", c.what, uuid)
	}
	return lr, []string{uuid}, nil
}
