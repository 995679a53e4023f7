// Package sbdb is govn's southbound database: sb.ovsschema (database
// OVN_Southbound, with OVN 23.03's tables, column types, references and
// indexes, so that real ovn-sbctl and ovn-trace work against it), the
// libovsdb models generated from it by modelgen (go generate; never edit the
// generated files), NewClient, and Ops helpers that append operations to one
// transaction.
package sbdb

import _ "embed"

const (
	// DatabaseName is the OVSDB database name of the schema.
	DatabaseName = "OVN_Southbound"
	// FileBase names the database's files in a data directory as OVN does:
	// ovnsb_db.db, ovnsb_db.sock, ovnsb_db.ctl, ovnsb_db.pid, ovnsb_db.log.
	FileBase = "ovnsb_db"
	// GlobalTable is the schema's one-row root table.
	GlobalTable = "SB_Global"
)

// SchemaJSON is sb.ovsschema, embedded so that the govn binary can create and
// convert the database without the source tree.
//
//go:embed sb.ovsschema
var SchemaJSON []byte
