package nbdb

import (
	"context"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/govn/govn/internal/ovsdbclient"
)

// ClientIndexes are the client-side indexes every northbound client has, in
// addition to the schema's own indexes (Logical_Switch_Port, Logical_Router_Port,
// Address_Set, Port_Group, ... by name).
var ClientIndexes = map[string][]model.ClientIndex{
	"Logical_Switch": {ovsdbclient.Index("name")},
	"Logical_Router": {ovsdbclient.Index("name")},
	"Load_Balancer":  {ovsdbclient.Index("name")},
	"ACL":            {ovsdbclient.Index("name")},
}

// NewClient connects to the northbound database at one of remotes
// ("unix:PATH", "tcp:IP:PORT", "ssl:IP:PORT"; for a cluster list every
// member) and monitors all tables unless an option says otherwise. It retries
// until connected or ctx ends.
func NewClient(ctx context.Context, remotes []string, opts ...ovsdbclient.Option) (*ovsdbclient.Client, error) {
	m, err := FullDatabaseModel()
	if err != nil {
		return nil, err
	}
	return ovsdbclient.New(ctx, m, remotes, ClientIndexes, opts...)
}

// CreateLogicalSwitchPortOps appends the insert of lsp and its addition to
// the ports of sw (given by UUID, or else by name, looked up in the cache).
func CreateLogicalSwitchPortOps(c *ovsdbclient.Client, ops []ovsdb.Operation, sw *LogicalSwitch, lsp *LogicalSwitchPort) ([]ovsdb.Operation, error) {
	uuid := ovsdbclient.EnsureUUID(&lsp.UUID)
	ops, err := ovsdbclient.CreateOps(c, ops, lsp)
	if err != nil {
		return ops, err
	}
	swUUID, err := ovsdbclient.LookupUUID(c, &LogicalSwitch{Name: sw.Name}, &sw.UUID)
	if err != nil {
		return ops, err
	}
	sel := &LogicalSwitch{UUID: swUUID}
	return ovsdbclient.MutateOps(c, ops, sel, model.Mutation{Field: &sel.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{uuid}})
}

// CreateACLOps appends the insert of acl and its addition to the ACLs of sw.
func CreateACLOps(c *ovsdbclient.Client, ops []ovsdb.Operation, sw *LogicalSwitch, acl *ACL) ([]ovsdb.Operation, error) {
	uuid := ovsdbclient.EnsureUUID(&acl.UUID)
	ops, err := ovsdbclient.CreateOps(c, ops, acl)
	if err != nil {
		return ops, err
	}
	swUUID, err := ovsdbclient.LookupUUID(c, &LogicalSwitch{Name: sw.Name}, &sw.UUID)
	if err != nil {
		return ops, err
	}
	sel := &LogicalSwitch{UUID: swUUID}
	return ovsdbclient.MutateOps(c, ops, sel, model.Mutation{Field: &sel.ACLs, Mutator: ovsdb.MutateOperationInsert, Value: []string{uuid}})
}
