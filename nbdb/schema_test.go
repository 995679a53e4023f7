package nbdb

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
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
	diffs, err := dbserver.SchemaDifferences(SchemaJSON, ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range diffs {
		t.Errorf("incompatible with %s: %s", ovnSchemaPath, d)
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
