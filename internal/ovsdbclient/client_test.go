package ovsdbclient_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

var nbDatabase = dbserver.Database{Name: nbdb.DatabaseName, Schema: nbdb.SchemaJSON, Base: nbdb.FileBase, GlobalTable: nbdb.GlobalTable}

func connect(t *testing.T, remotes []string, opts ...ovsdbclient.Option) *ovsdbclient.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := nbdb.NewClient(ctx, remotes, append([]ovsdbclient.Option{ovsdbclient.WithLogger(zaptest.NewLogger(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func addSwitches(t *testing.T, s *dbserver.Server, names ...string) {
	t.Helper()
	for _, n := range names {
		dbservertest.Run(t, "ovn-nbctl", "--db="+s.Endpoint(), "--may-exist", "ls-add", n)
	}
}

func switchNames(t *testing.T, c *ovsdbclient.Client) []string {
	t.Helper()
	var ls []nbdb.LogicalSwitch
	if err := c.List(context.Background(), &ls); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Name)
	}
	return names
}

func TestMonitorChoices(t *testing.T) {
	s := dbservertest.Start(t, nbDatabase, "", nil)
	addSwitches(t, s, "a", "b")
	dbservertest.Run(t, "ovn-nbctl", "--db="+s.Endpoint(), "acl-add", "a", "to-lport", "1", "ip4", "drop")

	all := connect(t, []string{s.Endpoint()})
	var acls []nbdb.ACL
	if err := all.List(context.Background(), &acls); err != nil || len(acls) != 1 {
		t.Errorf("monitor-all client: ACLs %v, %v", acls, err)
	}

	onlyLS := connect(t, []string{s.Endpoint()}, ovsdbclient.WithTables("Logical_Switch"))
	if got := switchNames(t, onlyLS); len(got) != 2 {
		t.Errorf("WithTables client switches = %v", got)
	}
	acls = nil
	_ = onlyLS.List(context.Background(), &acls)
	if len(acls) != 0 {
		t.Errorf("WithTables(Logical_Switch) client has ACLs in its cache: %v", acls)
	}

	ls := &nbdb.LogicalSwitch{}
	cond := connect(t, []string{s.Endpoint()}, ovsdbclient.WithMonitor(client.WithConditionalTable(ls,
		[]model.Condition{{Field: &ls.Name, Function: ovsdb.ConditionEqual, Value: "b"}})))
	if got := switchNames(t, cond); len(got) != 1 || got[0] != "b" {
		t.Errorf("conditional monitor switches = %v, want [b]", got)
	}
	addSwitches(t, s, "c")
	eventually(t, "c in the monitor-all cache", func() bool { return len(switchNames(t, all)) == 3 })
	if got := switchNames(t, cond); len(got) != 1 {
		t.Errorf("conditional monitor picked up a non-matching row: %v", got)
	}

	if _, err := nbdb.NewClient(context.Background(), []string{s.Endpoint()}, ovsdbclient.WithTables("No_Such_Table"),
		ovsdbclient.WithBackoff(time.Millisecond, time.Millisecond)); err == nil {
		t.Error("monitoring an unknown table succeeded")
	}
}

func TestLookupByClientIndex(t *testing.T) {
	s := dbservertest.Start(t, nbDatabase, "", nil)
	addSwitches(t, s, "uniq")
	// Logical_Switch names are not unique in the schema: ovn-nbctl can add a
	// second "twin" without --may-exist.
	dbservertest.Run(t, "ovn-nbctl", "--db="+s.Endpoint(), "ls-add", "twin")
	dbservertest.Run(t, "ovn-nbctl", "--db="+s.Endpoint(), "--", "create", "Logical_Switch", "name=twin")
	c := connect(t, []string{s.Endpoint()})
	got, err := ovsdbclient.Lookup(c, &nbdb.LogicalSwitch{Name: "uniq"})
	if err != nil || got.Name != "uniq" || got.UUID == "" {
		t.Errorf("Lookup(uniq) = %+v, %v", got, err)
	}
	if _, err := ovsdbclient.Lookup(c, &nbdb.LogicalSwitch{Name: "nope"}); !errors.Is(err, ovsdbclient.ErrNotFound) {
		t.Errorf("Lookup(nope) error = %v, want ErrNotFound", err)
	}
	if _, err := ovsdbclient.Lookup(c, &nbdb.LogicalSwitch{Name: "twin"}); err == nil || !strings.Contains(err.Error(), "2 rows match") {
		t.Errorf("Lookup(twin) error = %v, want ambiguity", err)
	}
}

// TestReconnect: NewClient waits for a server that is not up yet, and the
// client reconnects (and re-monitors) after the server restarts.
func TestReconnect(t *testing.T) {
	dbservertest.RequireOVS(t)
	dir := dbservertest.ShortTempDir(t)
	remote := "unix:" + dir + "/ovnnb_db.sock"
	type result struct {
		c   *ovsdbclient.Client
		err error
	}
	res := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := nbdb.NewClient(ctx, []string{remote}, ovsdbclient.WithBackoff(20*time.Millisecond, 200*time.Millisecond))
		res <- result{c, err}
	}()
	time.Sleep(300 * time.Millisecond) // the client is retrying now
	s := dbservertest.Start(t, nbDatabase, dir, nil)
	r := <-res
	if r.err != nil {
		t.Fatal(r.err)
	}
	c := r.c
	defer c.Close()
	addSwitches(t, s, "before")
	eventually(t, "switch before", func() bool { return len(switchNames(t, c)) == 1 })

	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	s = dbservertest.Start(t, nbDatabase, dir, nil)
	addSwitches(t, s, "after")
	eventually(t, "switch after, through the reconnected monitor", func() bool { return len(switchNames(t, c)) == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ops, err := ovsdbclient.CreateOps(c, nil, &nbdb.LogicalSwitch{UUID: ovsdbclient.NamedUUID(), Name: "written"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transact(ctx, ops...); err != nil {
		t.Fatalf("write after reconnect: %v", err)
	}
}

func TestMetricsAndBadRemote(t *testing.T) {
	s := dbservertest.Start(t, nbDatabase, "", nil)
	reg := prometheus.NewRegistry()
	c := connect(t, []string{s.Endpoint()}, ovsdbclient.WithMetrics(reg, "test"))
	addSwitches(t, s, "m")
	eventually(t, "switch m", func() bool { return len(switchNames(t, c)) == 1 })
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		if f.GetName() != "govn_ovsdb_client_monitors" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if m.GetGauge().GetValue() >= 1 && labels["client"] == "test" && labels["primary_model"] == nbdb.DatabaseName {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no govn_ovsdb_client_monitors{client=\"test\"} >= 1 among %d metric families", len(families))
	}

	_, err = nbdb.NewClient(context.Background(), []string{"http://x"})
	if err == nil || !strings.Contains(err.Error(), "expected unix:PATH, tcp:IP:PORT or ssl:IP:PORT") {
		t.Errorf("bad remote error = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = nbdb.NewClient(ctx, []string{"unix:/nonexistent/sock"})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/sock") {
		t.Errorf("unreachable remote error = %v", err)
	}
}

// TestWithoutDefaultIndexes: without the standard client indexes a row is
// not found by a client-indexed column any more, still by UUID and by a
// schema index; indexes given explicitly are kept.
func TestWithoutDefaultIndexes(t *testing.T) {
	s := dbservertest.Start(t, nbDatabase, "", nil)
	addSwitches(t, s, "a")
	dbservertest.Run(t, "ovn-nbctl", "--db="+s.Endpoint(), "lsp-add", "a", "a-p1")
	std := connect(t, []string{s.Endpoint()})
	bare := connect(t, []string{s.Endpoint()}, ovsdbclient.WithoutDefaultIndexes())
	own := connect(t, []string{s.Endpoint()}, ovsdbclient.WithoutDefaultIndexes(),
		ovsdbclient.WithIndexes(map[string][]model.ClientIndex{"Logical_Switch": {ovsdbclient.Index("name")}}))
	for _, c := range []*ovsdbclient.Client{std, bare, own} {
		eventually(t, "port in cache", func() bool {
			_, err := ovsdbclient.Lookup(c, &nbdb.LogicalSwitchPort{Name: "a-p1"}) // schema index
			return err == nil
		})
	}
	ls, err := ovsdbclient.Lookup(std, &nbdb.LogicalSwitch{Name: "a"})
	if err != nil {
		t.Fatalf("standard indexes: switch by name: %v", err)
	}
	if _, err := ovsdbclient.Lookup(bare, &nbdb.LogicalSwitch{Name: "a"}); !errors.Is(err, ovsdbclient.ErrNotFound) {
		t.Fatalf("without default indexes: switch by name = %v, want ErrNotFound", err)
	}
	if got, err := ovsdbclient.Lookup(bare, &nbdb.LogicalSwitch{UUID: ls.UUID}); err != nil || got.Name != "a" {
		t.Fatalf("without default indexes: switch by UUID = %+v, %v", got, err)
	}
	if got, err := ovsdbclient.Lookup(own, &nbdb.LogicalSwitch{Name: "a"}); err != nil || got.UUID != ls.UUID {
		t.Fatalf("explicit index: switch by name = %+v, %v", got, err)
	}
	if n := len(bare.Cache().DatabaseModel().Client().Indexes("Logical_Switch")); n != 0 {
		t.Fatalf("without default indexes: %d Logical_Switch client indexes", n)
	}
	if n := len(std.Cache().DatabaseModel().Client().Indexes("Logical_Router")); n != 1 {
		t.Fatalf("standard: %d Logical_Router client indexes, want 1", n)
	}
	// Writes by UUID work without them.
	upd := &nbdb.LogicalSwitch{UUID: ls.UUID, ExternalIDs: map[string]string{"k": "v"}}
	ops, err := ovsdbclient.UpdateOps(bare, nil, upd, &upd.ExternalIDs)
	if err == nil {
		_, err = bare.Transact(context.Background(), ops...)
	}
	if err != nil {
		t.Fatalf("update by UUID without default indexes: %v", err)
	}
}
