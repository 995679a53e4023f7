// Package nbdb is govn's northbound database: nb.ovsschema (database
// OVN_Northbound, with OVN 23.03's tables, column types, references and
// indexes, so that real ovn-nbctl works against it), the libovsdb models
// generated from it by modelgen (go generate; never edit the generated files),
// NewClient, and Ops helpers that append operations to one transaction.
package nbdb

import _ "embed"

// DatabaseName is the OVSDB database name of the northbound schema.
const DatabaseName = "OVN_Northbound"

// SchemaJSON is nb.ovsschema, embedded so that the govn binary can create and
// convert the database without the source tree.
//
//go:embed nb.ovsschema
var SchemaJSON []byte
