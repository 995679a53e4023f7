package main

import (
	"github.com/spf13/cobra"

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/sbdb"
)

func init() {
	register(func(g *globals) *cobra.Command {
		return newDBCommand(g, "sbdb", "southbound", dbserver.Database{
			Name:        sbdb.DatabaseName,
			Schema:      sbdb.SchemaJSON,
			Base:        sbdb.FileBase,
			GlobalTable: sbdb.GlobalTable,
		})
	})
}
