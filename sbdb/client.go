package sbdb

import (
	"context"

	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/govn/govn/internal/ovsdbclient"
)

// ClientIndexes are the client-side indexes every southbound client has, in
// addition to the schema's own indexes (Chassis and Chassis_Private by name,
// Port_Binding by logical_port and by datapath+tunnel_key, Datapath_Binding
// by tunnel_key, Multicast_Group, MAC_Binding, Encap, ...).
var ClientIndexes = map[string][]model.ClientIndex{
	"Datapath_Binding": {{Columns: []model.ColumnKey{{Column: "external_ids", Key: "name"}}}},
	"Port_Binding":     {ovsdbclient.Index("chassis")},
	"Logical_Flow":     {ovsdbclient.Index("logical_datapath")},
}

// NewClient connects to the southbound database at one of remotes
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

// CreateChassisOps appends the inserts of ch and its encaps (which become
// ch.Encaps).
func CreateChassisOps(c *ovsdbclient.Client, ops []ovsdb.Operation, ch *Chassis, encaps ...*Encap) ([]ovsdb.Operation, error) {
	ch.Encaps = nil
	for _, e := range encaps {
		if e.ChassisName == "" {
			e.ChassisName = ch.Name
		}
		ch.Encaps = append(ch.Encaps, ovsdbclient.EnsureUUID(&e.UUID))
		var err error
		if ops, err = ovsdbclient.CreateOps(c, ops, e); err != nil {
			return ops, err
		}
	}
	return ovsdbclient.CreateOps(c, ops, ch)
}
