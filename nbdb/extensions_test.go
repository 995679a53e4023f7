package nbdb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/nbdb"
)

// schemaWithoutExtensions is nb.ovsschema as it was before the govn
// extensions (version 1.0.0, no ACL.tier, no "pass" action): the schema of an
// existing database that an upgrade must convert.
func schemaWithoutExtensions(t *testing.T) []byte {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(nbdb.SchemaJSON))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	m["version"] = "1.0.0"
	acl := m["tables"].(map[string]any)["ACL"].(map[string]any)["columns"].(map[string]any)
	if _, ok := acl["tier"]; !ok {
		t.Fatal("nb.ovsschema has no ACL.tier")
	}
	delete(acl, "tier")
	set := acl["action"].(map[string]any)["type"].(map[string]any)["key"].(map[string]any)["enum"].([]any)
	var vals []any
	for _, v := range set[1].([]any) {
		if v != "pass" {
			vals = append(vals, v)
		}
	}
	set[1] = vals
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUpgradeAddsACLTier: a database file made with the schema before the
// extensions, holding ACLs, is converted when the server starts with the
// current schema; the ACLs keep every column and get tier 0, and the new
// column and action are usable afterwards.
func TestUpgradeAddsACLTier(t *testing.T) {
	dbservertest.RequireOVS(t)
	if _, err := dbservertest.RunErr("ovn-nbctl", "--version"); err != nil {
		t.Skipf("ovn-nbctl not installed: %v", err)
	}
	dir := dbservertest.ShortTempDir(t)
	old := Database
	old.Schema = schemaWithoutExtensions(t)
	s := dbservertest.Start(t, old, dir, nil)
	nbctl := func(args ...string) string {
		return dbservertest.Run(t, "ovn-nbctl", append([]string{"--db=" + s.Endpoint()}, args...)...)
	}
	nbctl("ls-add", "sw0")
	nbctl("acl-add", "sw0", "from-lport", "100", "ip4", "drop")
	nbctl("--label=7", "acl-add", "sw0", "to-lport", "200", "tcp", "allow-related")
	cols := dbservertest.Run(t, "ovsdb-client", "list-columns", s.Endpoint(), nbdb.DatabaseName, "ACL")
	if strings.Contains(cols, "tier") {
		t.Fatalf("old schema already has ACL.tier:\n%s", cols)
	}
	wantACL := nbctl("acl-list", "sw0")
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	s = dbservertest.Start(t, Database, dir, nil)
	if v := strings.TrimSpace(dbservertest.Run(t, "ovsdb-tool", "db-version", s.DBPath())); v != "1.1.0" {
		t.Errorf("db-version after upgrade = %q, want 1.1.0", v)
	}
	if b, _ := filepath.Glob(filepath.Join(dir, nbdb.FileBase+".db.bak-1.0.0-*")); len(b) != 1 {
		t.Errorf("want one backup of the 1.0.0 file, got %v", b)
	}
	if got := dbservertest.Run(t, "ovn-nbctl", "--db="+s.Endpoint(), "acl-list", "sw0"); got != wantACL {
		t.Errorf("acl-list after upgrade = %q, want %q", got, wantACL)
	}
	c := newClient(t, s.Endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var acls []nbdb.ACL
	if err := c.List(ctx, &acls); err != nil {
		t.Fatal(err)
	}
	if len(acls) != 2 {
		t.Fatalf("ACL rows after upgrade: %+v", acls)
	}
	for _, a := range acls {
		if a.Tier != 0 {
			t.Errorf("ACL %s %d after upgrade: tier %d, want 0", a.Direction, a.Priority, a.Tier)
		}
		if a.Priority == 200 && (a.Label != 7 || a.Action != nbdb.ACLActionAllowRelated || a.Match != "tcp") {
			t.Errorf("ACL 200 lost columns in the upgrade: %+v", a)
		}
	}
	// The new column and action work after the upgrade.
	ops, err := nbdb.CreateACLOps(c, nil, &nbdb.LogicalSwitch{Name: "sw0"},
		&nbdb.ACL{Priority: 300, Direction: nbdb.ACLDirectionFromLport, Match: "udp", Action: nbdb.ACLActionPass, Tier: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transact(ctx, ops...); err != nil {
		t.Fatalf("insert tier-3 pass ACL after upgrade: %v", err)
	}
	dump := dbservertest.Run(t, "ovsdb-client", "dump", s.Endpoint(), nbdb.DatabaseName, "ACL", "priority", "action", "tier")
	// ovsdb-client prints the columns sorted: action, priority, tier.
	if !strings.Contains(strings.Join(strings.Fields(dump), " "), "pass 300 3") {
		t.Errorf("dump lacks the tier-3 pass ACL:\n%q", dump)
	}
}

// TestOVNNbctlExtensions: the real ovn-nbctl 23.03 works against the extended
// schema. Its own ACLs get tier 0; tiered ACLs written by others are listed
// (ovn-nbctl does not know the column and ignores it) and deleted normally.
// An ACL with action "pass" is outside ovn-nbctl 23.03's enum: the server
// accepts it, ovn-nbctl still runs, lists it without an action and deletes it.
func TestOVNNbctlExtensions(t *testing.T) {
	dbservertest.RequireOVS(t)
	if _, err := dbservertest.RunErr("ovn-nbctl", "--version"); err != nil {
		t.Skipf("ovn-nbctl not installed: %v", err)
	}
	s := dbservertest.Start(t, Database, "", nil)
	nbctl := func(args ...string) string {
		return dbservertest.Run(t, "ovn-nbctl", append([]string{"--db=" + s.Endpoint()}, args...)...)
	}
	nbctl("ls-add", "sw0")
	nbctl("acl-add", "sw0", "from-lport", "100", "ip4", "drop")
	dump := strings.Join(strings.Fields(dbservertest.Run(t, "ovsdb-client", "dump", s.Endpoint(), nbdb.DatabaseName, "ACL", "priority", "tier")), " ")
	if !strings.Contains(dump, "100 0") {
		t.Errorf("ovn-nbctl's ACL should have tier 0:\n%s", dump)
	}

	c := newClient(t, s.Endpoint())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ops, err := nbdb.CreateACLOps(c, nil, &nbdb.LogicalSwitch{Name: "sw0"},
		&nbdb.ACL{Priority: 200, Direction: nbdb.ACLDirectionToLport, Match: "tcp", Action: nbdb.ACLActionAllow, Tier: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transact(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	list := nbctl("acl-list", "sw0")
	for _, want := range []string{"from-lport   100 (ip4) drop", "  to-lport   200 (tcp) allow"} {
		if !strings.Contains(list, want) {
			t.Errorf("acl-list lacks %q:\n%s", want, list)
		}
	}
	nbctl("acl-del", "sw0", "to-lport", "200", "tcp")
	if list := nbctl("acl-list", "sw0"); strings.Contains(list, "200") {
		t.Errorf("tiered ACL not deleted by ovn-nbctl:\n%s", list)
	}

	// A "pass" ACL: accepted by the server; ovn-nbctl commands keep working.
	ops, err = nbdb.CreateACLOps(c, nil, &nbdb.LogicalSwitch{Name: "sw0"},
		&nbdb.ACL{Priority: 300, Direction: nbdb.ACLDirectionFromLport, Match: "udp", Action: nbdb.ACLActionPass, Tier: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transact(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	nbctl("ls-add", "sw1")
	if out := nbctl("ls-list"); !strings.Contains(out, "(sw0)") || !strings.Contains(out, "(sw1)") {
		t.Errorf("ls-list with a pass ACL in the database: %q", out)
	}
	// ovn-nbctl 23.03 lists the pass ACL without an action (warning that
	// "pass" is outside its enum) and deletes it like any other.
	out, errOut, err := dbservertest.RunOutput("ovn-nbctl", "--db="+s.Endpoint(), "acl-list", "sw0")
	if err != nil || !strings.Contains(out, "from-lport   300 (udp)") || !strings.Contains(errOut, "pass is not one of the allowed values") {
		t.Errorf("acl-list with a pass ACL: err %v, out %q, stderr %q", err, out, errOut)
	}
	if _, _, err := dbservertest.RunOutput("ovn-nbctl", "--db="+s.Endpoint(), "acl-del", "sw0"); err != nil {
		t.Errorf("acl-del with a pass ACL: %v", err)
	}
	var left []nbdb.ACL
	if err := c.List(ctx, &left); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ACLs deleted by ovn-nbctl gone from the cache", func() bool {
		left = left[:0]
		_ = c.List(ctx, &left)
		return len(left) == 0
	})
}
