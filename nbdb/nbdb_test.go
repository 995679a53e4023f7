package nbdb_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

// Database is the northbound database as `govn nbdb` runs it.
var Database = dbserver.Database{Name: nbdb.DatabaseName, Schema: nbdb.SchemaJSON, Base: nbdb.FileBase, GlobalTable: nbdb.GlobalTable}

func newClient(t *testing.T, remotes ...string) *ovsdbclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := nbdb.NewClient(ctx, remotes, ovsdbclient.WithLogger(zaptest.NewLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// waitFor polls cond (against the client cache) until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOVNNbctl drives our northbound database with the real ovn-nbctl and
// reads the result back through nbdb.NewClient.
func TestOVNNbctl(t *testing.T) {
	dbservertest.RequireOVS(t)
	if _, err := dbservertest.RunErr("ovn-nbctl", "--version"); err != nil {
		t.Skipf("ovn-nbctl not installed (apt install ovn-central): %v", err)
	}
	s := dbservertest.Start(t, Database, "", nil)
	db := "--db=" + s.Endpoint()
	nbctl := func(args ...string) string { return dbservertest.Run(t, "ovn-nbctl", append([]string{db}, args...)...) }

	nbctl("ls-add", "sw0")
	nbctl("lsp-add", "sw0", "sw0-p1")
	nbctl("lsp-set-addresses", "sw0-p1", "00:00:00:00:00:01 10.0.0.11")
	nbctl("acl-add", "sw0", "to-lport", "1001", "ip4 && tcp.dst == 80", "allow-related")
	nbctl("lr-add", "lr0")
	nbctl("lrp-add", "lr0", "lr0-sw0", "00:00:00:00:ff:01", "10.0.0.1/24")
	nbctl("lb-add", "lb0", "10.0.0.100:80", "10.0.0.11:8080", "tcp")
	nbctl("ls-lb-add", "sw0", "lb0")
	show := nbctl("show")
	for _, want := range []string{"switch", "(sw0)", "port sw0-p1", "addresses: [\"00:00:00:00:00:01 10.0.0.11\"]",
		"router", "(lr0)", "port lr0-sw0", "mac: \"00:00:00:00:ff:01\"", "networks: [\"10.0.0.1/24\"]"} {
		if !strings.Contains(show, want) {
			t.Errorf("ovn-nbctl show lacks %q:\n%s", want, show)
		}
	}
	if out := nbctl("acl-list", "sw0"); !strings.Contains(out, "to-lport  1001 (ip4 && tcp.dst == 80) allow-related") {
		t.Errorf("acl-list: %q", out)
	}
	if out := nbctl("lb-list"); !strings.Contains(out, "lb0") || !strings.Contains(out, "10.0.0.100:80") {
		t.Errorf("lb-list: %q", out)
	}

	c := newClient(t, s.Endpoint())
	ctx := context.Background()
	var switches []nbdb.LogicalSwitch
	if err := c.List(ctx, &switches); err != nil {
		t.Fatal(err)
	}
	if len(switches) != 1 || switches[0].Name != "sw0" || len(switches[0].Ports) != 1 || len(switches[0].ACLs) != 1 ||
		len(switches[0].LoadBalancer) != 1 {
		t.Fatalf("Logical_Switch rows: %+v", switches)
	}
	// Schema index: Logical_Switch_Port by name.
	lsp := &nbdb.LogicalSwitchPort{Name: "sw0-p1"}
	if err := c.Get(ctx, lsp); err != nil {
		t.Fatalf("get port by name: %v", err)
	}
	if lsp.UUID != switches[0].Ports[0] || !slices.Equal(lsp.Addresses, []string{"00:00:00:00:00:01 10.0.0.11"}) {
		t.Errorf("port %+v", lsp)
	}
	acl := &nbdb.ACL{UUID: switches[0].ACLs[0]}
	if err := c.Get(ctx, acl); err != nil {
		t.Fatal(err)
	}
	if acl.Priority != 1001 || acl.Direction != nbdb.ACLDirectionToLport || acl.Action != nbdb.ACLActionAllowRelated || acl.Match != "ip4 && tcp.dst == 80" {
		t.Errorf("acl %+v", acl)
	}
	var routers []nbdb.LogicalRouter
	if err := c.List(ctx, &routers); err != nil {
		t.Fatal(err)
	}
	if len(routers) != 1 || routers[0].Name != "lr0" || len(routers[0].Ports) != 1 {
		t.Fatalf("Logical_Router rows: %+v", routers)
	}
	lrp := &nbdb.LogicalRouterPort{Name: "lr0-sw0"}
	if err := c.Get(ctx, lrp); err != nil || lrp.MAC != "00:00:00:00:ff:01" || !slices.Equal(lrp.Networks, []string{"10.0.0.1/24"}) {
		t.Errorf("router port %+v, %v", lrp, err)
	}
	lbs := []nbdb.LoadBalancer{}
	if err := c.List(ctx, &lbs); err != nil {
		t.Fatal(err)
	}
	if len(lbs) != 1 || lbs[0].Name != "lb0" || lbs[0].Vips["10.0.0.100:80"] != "10.0.0.11:8080" ||
		lbs[0].Protocol == nil || *lbs[0].Protocol != nbdb.LoadBalancerProtocolTCP {
		t.Errorf("Load_Balancer rows: %+v", lbs)
	}
	// The global row was created at start, like ovn-nbctl init.
	var globals []nbdb.NBGlobal
	if err := c.List(ctx, &globals); err != nil || len(globals) != 1 {
		t.Errorf("NB_Global rows: %+v, %v", globals, err)
	}

	// Our client writes with the Ops helpers; ovn-nbctl sees them.
	ops, err := ovsdbclient.CreateOps(c, nil, &nbdb.LogicalSwitch{UUID: ovsdbclient.NamedUUID(), Name: "sw1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transact(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "sw1 in cache", func() bool {
		_, err := ovsdbclient.Lookup(c, &nbdb.LogicalSwitch{Name: "sw1"})
		return err == nil
	})
	ops, err = nbdb.CreateLogicalSwitchPortOps(c, nil, &nbdb.LogicalSwitch{Name: "sw1"}, &nbdb.LogicalSwitchPort{Name: "sw1-p1", Addresses: []string{"unknown"}})
	if err != nil {
		t.Fatal(err)
	}
	ops, err = nbdb.CreateACLOps(c, ops, &nbdb.LogicalSwitch{Name: "sw1"}, &nbdb.ACL{Priority: 100, Direction: nbdb.ACLDirectionFromLport, Match: "ip4", Action: nbdb.ACLActionDrop})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transact(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	if out := nbctl("lsp-list", "sw1"); !strings.Contains(out, "(sw1-p1)") {
		t.Errorf("lsp-list sw1: %q", out)
	}
	if out := nbctl("acl-list", "sw1"); !strings.Contains(out, "from-lport   100 (ip4) drop") {
		t.Errorf("acl-list sw1: %q", out)
	}
}

// TestSchemaViolation: a transaction that breaks the schema gets the server's
// error and commits nothing.
func TestSchemaViolation(t *testing.T) {
	s := dbservertest.Start(t, Database, "", nil)
	c := newClient(t, s.Endpoint())
	ctx := context.Background()

	cases := []struct {
		name    string
		ops     func() ([]ovsdb.Operation, error)
		wantErr string
	}{{
		name: "duplicate index value",
		ops: func() ([]ovsdb.Operation, error) {
			// Address_Set is a root table indexed by name.
			return ovsdbclient.CreateOps(c, nil, &nbdb.LogicalSwitch{UUID: ovsdbclient.NamedUUID(), Name: "bad1"},
				&nbdb.AddressSet{UUID: ovsdbclient.NamedUUID(), Name: "dup"},
				&nbdb.AddressSet{UUID: ovsdbclient.NamedUUID(), Name: "dup"})
		},
		wantErr: "constraint violation",
	}, {
		name: "integer out of range",
		ops: func() ([]ovsdb.Operation, error) {
			ops, err := ovsdbclient.CreateOps(c, nil, &nbdb.LogicalSwitch{UUID: ovsdbclient.NamedUUID(), Name: "bad2"})
			if err != nil {
				return nil, err
			}
			sw := &nbdb.LogicalSwitch{UUID: ops[0].UUIDName}
			return nbdb.CreateACLOps(c, ops, sw, &nbdb.ACL{Priority: 40000,
				Direction: nbdb.ACLDirectionToLport, Match: "ip4", Action: nbdb.ACLActionDrop})
		},
		wantErr: "constraint violation",
	}, {
		name: "dangling strong reference",
		ops: func() ([]ovsdb.Operation, error) {
			return ovsdbclient.CreateOps(c, nil, &nbdb.LogicalSwitch{UUID: ovsdbclient.NamedUUID(), Name: "bad3",
				Ports: []string{"0a1b2c3d-0000-4000-8000-000000000001"}})
		},
		wantErr: "referential integrity violation",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ops, err := tc.ops()
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Transact(ctx, ops...)
			var te *ovsdbclient.TransactionError
			if !errors.As(err, &te) {
				t.Fatalf("want a TransactionError, got %v", err)
			}
			if !slices.Contains(te.ServerErrors(), tc.wantErr) {
				t.Errorf("server errors %q, want %q; error text: %v", te.ServerErrors(), tc.wantErr, err)
			}
			t.Logf("error: %v", err)
		})
	}
	// Nothing was committed: a fresh client sees no switch and no port.
	fresh := newClient(t, s.Endpoint())
	var switches []nbdb.LogicalSwitch
	var ports []nbdb.LogicalSwitchPort
	var acls []nbdb.ACL
	var sets []nbdb.AddressSet
	if err := fresh.List(ctx, &switches); err != nil {
		t.Fatal(err)
	}
	_ = fresh.List(ctx, &ports)
	_ = fresh.List(ctx, &acls)
	_ = fresh.List(ctx, &sets)
	if len(switches)+len(ports)+len(acls)+len(sets) != 0 {
		t.Errorf("rejected transactions left rows: switches %+v ports %+v acls %+v address sets %+v", switches, ports, acls, sets)
	}
}
