// Package sbdb is govn's southbound database: sb.ovsschema (database
// OVN_Southbound, with OVN 23.03's tables, column types, references and
// indexes, so that real ovn-sbctl and ovn-trace work against it), the
// libovsdb models generated from it by modelgen (go generate; never edit the
// generated files), NewClient, and Ops helpers that append operations to one
// transaction.
package sbdb

import _ "embed"

// DatabaseName is the OVSDB database name of the southbound schema.
const DatabaseName = "OVN_Southbound"

// SchemaJSON is sb.ovsschema, embedded so that the govn binary can create and
// convert the database without the source tree.
//
//go:embed sb.ovsschema
var SchemaJSON []byte
