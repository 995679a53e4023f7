package nbdb_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

// BenchmarkTransactInsertSwitch measures one round trip: a one-row insert
// committed by a real ovsdb-server over its unix socket (the client cache is
// updated by the monitor asynchronously).
func BenchmarkTransactInsertSwitch(b *testing.B) {
	s := dbservertest.Start(b, Database, "", nil)
	ctx := context.Background()
	c, err := nbdb.NewClient(ctx, []string{s.Endpoint()})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		ops, err := ovsdbclient.CreateOps(c, nil, &nbdb.LogicalSwitch{UUID: ovsdbclient.NamedUUID(), Name: fmt.Sprintf("b%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Transact(ctx, ops...); err != nil {
			b.Fatal(err)
		}
	}
}
