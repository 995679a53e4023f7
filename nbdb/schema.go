package nbdb

import _ "embed"

// DatabaseName is the OVSDB database name of the northbound schema.
const DatabaseName = "OVN_Northbound"

// SchemaJSON is nb.ovsschema, embedded so that the govn binary can create and
// convert the database without the source tree.
//
//go:embed nb.ovsschema
var SchemaJSON []byte
