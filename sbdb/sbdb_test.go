package sbdb_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/sbdb"
)

// Database is the southbound database as `govn sbdb` runs it.
var Database = dbserver.Database{Name: sbdb.DatabaseName, Schema: sbdb.SchemaJSON, Base: sbdb.FileBase, GlobalTable: sbdb.GlobalTable}

// TestOVNSbctlAndTrace drives our southbound database with the real
// ovn-sbctl and ovn-trace, and with sbdb.NewClient.
func TestOVNSbctlAndTrace(t *testing.T) {
	dbservertest.RequireOVS(t)
	if _, err := dbservertest.RunErr("ovn-sbctl", "--version"); err != nil {
		t.Skipf("ovn-sbctl not installed (apt install ovn-central): %v", err)
	}
	s := dbservertest.Start(t, Database, "", nil)
	db := "--db=" + s.Endpoint()
	sbctl := func(args ...string) string { return dbservertest.Run(t, "ovn-sbctl", append([]string{db}, args...)...) }

	sbctl("chassis-add", "ch1", "geneve", "192.0.2.1")
	show := sbctl("show")
	for _, want := range []string{`Chassis ch1`, `Encap geneve`, `ip: "192.0.2.1"`} {
		if !strings.Contains(show, want) {
			t.Errorf("ovn-sbctl show lacks %q:\n%s", want, show)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sbdb.NewClient(ctx, []string{s.Endpoint()}, ovsdbclient.WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ch := &sbdb.Chassis{Name: "ch1"}
	if err := c.Get(ctx, ch); err != nil {
		t.Fatalf("chassis by name: %v", err)
	}
	if len(ch.Encaps) != 1 {
		t.Fatalf("chassis %+v", ch)
	}
	enc := &sbdb.Encap{UUID: ch.Encaps[0]}
	if err := c.Get(ctx, enc); err != nil || enc.IP != "192.0.2.1" || enc.Type != sbdb.EncapTypeGeneve || enc.ChassisName != "ch1" {
		t.Errorf("encap %+v, %v", enc, err)
	}

	// A second chassis through the Ops helper; ovn-sbctl sees it.
	ops, err := sbdb.CreateChassisOps(c, nil, &sbdb.Chassis{Name: "ch2", Hostname: "host2"},
		&sbdb.Encap{Type: sbdb.EncapTypeGeneve, IP: "192.0.2.2"})
	if err != nil {
		t.Fatal(err)
	}
	// One datapath with one port and two logical flows, in the same transaction.
	dp := &sbdb.DatapathBinding{UUID: ovsdbclient.NamedUUID(), TunnelKey: 1, ExternalIDs: map[string]string{"name": "sw0"}}
	pb := &sbdb.PortBinding{UUID: ovsdbclient.NamedUUID(), LogicalPort: "sw0-p1", Datapath: dp.UUID, TunnelKey: 1,
		MAC: []string{"00:00:00:00:00:01 10.0.0.11"}}
	lf1 := &sbdb.LogicalFlow{UUID: ovsdbclient.NamedUUID(), LogicalDatapath: &dp.UUID, Pipeline: sbdb.LogicalFlowPipelineIngress,
		TableID: 0, Priority: 50, Match: `inport == "sw0-p1"`, Actions: "next;"}
	lf2 := &sbdb.LogicalFlow{UUID: ovsdbclient.NamedUUID(), LogicalDatapath: &dp.UUID, Pipeline: sbdb.LogicalFlowPipelineIngress,
		TableID: 1, Priority: 100, Match: "1", Actions: "drop;", ExternalIDs: map[string]string{"stage-name": "ls_in_test"}}
	if ops, err = ovsdbclient.CreateOps(c, ops, dp, pb, lf1, lf2); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transact(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	if out := sbctl("--columns=hostname", "list", "Chassis", "ch2"); !strings.Contains(out, "host2") {
		t.Errorf("ch2: %q", out)
	}
	lflows := sbctl("lflow-list")
	for _, want := range []string{`Datapath: "sw0"`, `table=0 (                   ), priority=50   , match=(inport == "sw0-p1"), action=(next;)`,
		`table=1 (ls_in_test         ), priority=100  , match=(1), action=(drop;)`} {
		if !strings.Contains(lflows, want) {
			t.Errorf("lflow-list lacks %q:\n%s", want, lflows)
		}
	}
	if _, err := dbservertest.RunErr("ovn-trace", "--version"); err == nil {
		trace := dbservertest.Run(t, "ovn-trace", db, "sw0", `inport == "sw0-p1" && eth.src == 00:00:00:00:00:01 && eth.dst == 00:00:00:00:00:02`)
		for _, want := range []string{`ingress(dp="sw0", inport="sw0-p1")`, `0. inport == "sw0-p1", priority 50`,
			`1. ls_in_test: 1, priority 100`, "drop;"} {
			if !strings.Contains(trace, want) {
				t.Errorf("ovn-trace output lacks %q:\n%s", want, trace)
			}
		}
	}
	pbGot := &sbdb.PortBinding{LogicalPort: "sw0-p1"}
	if err := c.Get(ctx, pbGot); err != nil || pbGot.TunnelKey != 1 {
		t.Errorf("port binding by logical_port: %+v %v", pbGot, err)
	}
}
