package sbdb

import _ "embed"

// DatabaseName is the OVSDB database name of the southbound schema.
const DatabaseName = "OVN_Southbound"

// SchemaJSON is sb.ovsschema, embedded so that the govn binary can create and
// convert the database without the source tree.
//
//go:embed sb.ovsschema
var SchemaJSON []byte
