package nbdb

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/govn/govn/internal/dbserver"
)

// ovnSchemaPath is where Debian's ovn-common installs OVN's northbound schema.
const ovnSchemaPath = "/usr/share/ovn/ovn-nb.ovsschema"

// TestSchemaCompatibleWithOVN checks that every table and column we define has
// exactly OVN's type, isRoot, maxRows and indexes, so real ovn-nbctl works
// against our database.
func TestSchemaCompatibleWithOVN(t *testing.T) {
	ref, err := os.ReadFile(ovnSchemaPath)
	if errors.Is(err, fs.ErrNotExist) {
		t.Skipf("OVN's schema %s is not installed (apt install ovn-common); cannot check compatibility", ovnSchemaPath)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Against OVN 23.03 itself, exactly the extensions differ.
	diffs, err := dbserver.SchemaDifferences(SchemaJSON, ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != len(govnExtensions) {
		t.Errorf("%d differences from %s, want exactly the %d govn extensions:\n%s",
			len(diffs), ovnSchemaPath, len(govnExtensions), strings.Join(diffs, "\n"))
	}
	for _, d := range diffs {
		if !isExtension(d) {
			t.Errorf("incompatible with %s: %s", ovnSchemaPath, d)
		}
	}
	// Against OVN 23.03 with the extensions applied, nothing differs: each
	// extension is exactly what it claims (type and all).
	extended := applyExtensions(t, ref)
	diffs, err = dbserver.SchemaDifferences(SchemaJSON, extended)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("incompatible with %s plus the govn extensions: %s", ovnSchemaPath, d)
	}
	// Newer OVN releases add tables and columns; report them, they are not
	// incompatibilities (OVN's tools warn and carry on without them).
	missing, err := dbserver.SchemaMissing(SchemaJSON, ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range missing {
		t.Logf("%s has %s, which we do not define", ovnSchemaPath, m)
	}
}

// TestSchemaMatchesModels checks that the generated models are up to date with
// nb.ovsschema (same tables and columns).
func TestSchemaMatchesModels(t *testing.T) {
	var raw struct {
		Name   string `json:"name"`
		Tables map[string]struct {
			Columns map[string]json.RawMessage `json:"columns"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(SchemaJSON, &raw); err != nil {
		t.Fatalf("nb.ovsschema: %v", err)
	}
	if raw.Name != DatabaseName {
		t.Errorf("schema name %q, want %q", raw.Name, DatabaseName)
	}
	gen := Schema()
	if len(gen.Tables) != len(raw.Tables) {
		t.Errorf("generated models have %d tables, schema has %d: run go generate", len(gen.Tables), len(raw.Tables))
	}
	for name, tbl := range raw.Tables {
		g, ok := gen.Tables[name]
		if !ok {
			t.Errorf("table %s missing from generated models: run go generate", name)
			continue
		}
		for col := range tbl.Columns {
			if _, ok := g.Columns[col]; !ok {
				t.Errorf("column %s.%s missing from generated models: run go generate", name, col)
			}
		}
	}
	if _, err := FullDatabaseModel(); err != nil {
		t.Fatal(err)
	}
}

// govnExtensions is the complete, documented list of the places where
// nb.ovsschema differs from OVN 23.03's schema. Each is a feature of a later
// OVN release that govn implements, with the column type that release uses
// (OVN 23.06's ovn-nb.ovsschema), so that the database stays what a newer
// ovn-nbctl expects too. Real ovn-nbctl 23.03 ignores the extra column; it
// lists an ACL whose action is "pass" without its action (see TestOVNNbctlExtensions).
var govnExtensions = []struct {
	table, column string
	// kind: "column" = a column OVN 23.03 lacks (its whole definition is
	// ours); "enum" = OVN 23.03's column with extra enum values.
	kind  string
	extra []string // for "enum": the added values
}{
	// ACL.tier (OVN 23.06): integer 0..3, default 0; tiered ACL evaluation.
	{table: "ACL", column: "tier", kind: "column"},
	// ACL.action "pass" (OVN 23.06): go on with the next tier.
	{table: "ACL", column: "action", kind: "enum", extra: []string{"pass"}},
}

// isExtension reports whether a SchemaDifferences line is about a column
// listed in govnExtensions.
func isExtension(diff string) bool {
	for _, e := range govnExtensions {
		if strings.HasPrefix(diff, "column "+e.table+"."+e.column+":") {
			return true
		}
	}
	return false
}

// applyExtensions returns the reference schema with govnExtensions applied:
// "column" extensions get our definition, "enum" extensions get the extra
// values appended to the reference's own enum (so anything else about that
// column that differs still shows up).
func applyExtensions(t *testing.T, ref []byte) []byte {
	t.Helper()
	var theirs, ours map[string]any
	if err := json.Unmarshal(ref, &theirs); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(SchemaJSON, &ours); err != nil {
		t.Fatal(err)
	}
	cols := func(s map[string]any, table string) map[string]any {
		tb, _ := s["tables"].(map[string]any)[table].(map[string]any)
		if tb == nil {
			t.Fatalf("extension names table %s, which is not in both schemas", table)
		}
		return tb["columns"].(map[string]any)
	}
	for _, e := range govnExtensions {
		tc, oc := cols(theirs, e.table), cols(ours, e.table)
		switch e.kind {
		case "column":
			if _, ok := tc[e.column]; ok {
				t.Fatalf("extension %s.%s: OVN's schema already has the column", e.table, e.column)
			}
			if oc[e.column] == nil {
				t.Fatalf("extension %s.%s: nb.ovsschema lacks the column", e.table, e.column)
			}
			tc[e.column] = oc[e.column]
		case "enum":
			// {"type": {"key": {"type": ..., "enum": ["set", [...]]}}}
			key := tc[e.column].(map[string]any)["type"].(map[string]any)["key"].(map[string]any)
			set := key["enum"].([]any)
			vals := set[1].([]any)
			for _, x := range e.extra {
				if slices.Contains(vals, any(x)) {
					t.Fatalf("extension %s.%s: OVN's enum already has %q", e.table, e.column, x)
				}
				vals = append(vals, x)
			}
			set[1] = vals
		default:
			t.Fatalf("extension %s.%s: unknown kind %q", e.table, e.column, e.kind)
		}
	}
	out, err := json.Marshal(theirs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
