// Package nbdb is govn's northbound database: nb.ovsschema (database
// OVN_Northbound, with OVN 23.03's tables, column types, references and
// indexes, so that real ovn-nbctl works against it), the libovsdb models
// generated from it by modelgen (go generate; never edit the generated files),
// NewClient, and Ops helpers that append operations to one transaction.
//
// Extensions beyond OVN 23.03 (the complete list is govnExtensions in
// schema_test.go, which checks it against the installed OVN schema), each
// with the column type of the later OVN release that added it:
//   - ACL.tier (OVN 23.06): integer 0..3, default 0 — tiered ACL evaluation;
//   - ACL.action "pass" (OVN 23.06): go on with the next tier.
//
// Real ovn-nbctl 23.03 ignores ACL.tier (its ACLs get tier 0) and keeps
// working; a "pass" ACL is outside its compiled-in enum: acl-list shows it
// without an action (and warns), acl-del deletes it. Schema
// version 1.1.0 added both; an older database file is converted at start
// (existing ACLs get tier 0).
package nbdb

import _ "embed"

const (
	// DatabaseName is the OVSDB database name of the schema.
	DatabaseName = "OVN_Northbound"
	// FileBase names the database's files in a data directory as OVN does:
	// ovnnb_db.db, ovnnb_db.sock, ovnnb_db.ctl, ovnnb_db.pid, ovnnb_db.log.
	FileBase = "ovnnb_db"
	// GlobalTable is the schema's one-row root table.
	GlobalTable = "NB_Global"
)

// SchemaJSON is nb.ovsschema, embedded so that the govn binary can create and
// convert the database without the source tree.
//
//go:embed nb.ovsschema
var SchemaJSON []byte
