package sbdb_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/sbdb"
)

// BenchmarkTransact1000LogicalFlows measures one transaction that inserts
// 1000 Logical_Flow rows (a northd-sized batch) into a real ovsdb-server.
func BenchmarkTransact1000LogicalFlows(b *testing.B) {
	s := dbservertest.Start(b, Database, "", nil)
	ctx := context.Background()
	c, err := sbdb.NewClient(ctx, []string{s.Endpoint()}, ovsdbclient.WithTables("Datapath_Binding"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	dp := &sbdb.DatapathBinding{UUID: ovsdbclient.NamedUUID(), TunnelKey: 1}
	ops, _ := ovsdbclient.CreateOps(c, nil, dp)
	res, err := c.Transact(ctx, ops...)
	if err != nil {
		b.Fatal(err)
	}
	dpUUID := res[0].UUID.GoUUID
	b.ResetTimer()
	for n := 0; b.Loop(); n++ {
		batch := make([]*sbdb.LogicalFlow, 0, 1000)
		for i := 0; i < 1000; i++ {
			batch = append(batch, &sbdb.LogicalFlow{UUID: ovsdbclient.NamedUUID(), LogicalDatapath: &dpUUID,
				Pipeline: sbdb.LogicalFlowPipelineIngress, TableID: i % 30, Priority: i % 65535,
				Match: fmt.Sprintf("ip4.dst == 10.%d.%d.%d", n%250, i/250, i%250), Actions: "next;"})
		}
		txOps, err := createFlows(c, batch)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Transact(ctx, txOps...); err != nil {
			b.Fatal(err)
		}
	}
}

func createFlows(c *ovsdbclient.Client, flows []*sbdb.LogicalFlow) ([]ovsdb.Operation, error) {
	var ops []ovsdb.Operation
	var err error
	for _, f := range flows {
		if ops, err = ovsdbclient.CreateOps(c, ops, f); err != nil {
			return nil, err
		}
	}
	return ops, nil
}
