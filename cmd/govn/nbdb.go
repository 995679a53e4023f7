package main

import (
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/nbdb"
)

func init() {
	register(func(g *globals) *cobra.Command {
		return newDBCommand(g, "nbdb", "northbound", dbserver.Database{
			Name:        nbdb.DatabaseName,
			Schema:      nbdb.SchemaJSON,
			Base:        nbdb.FileBase,
			GlobalTable: nbdb.GlobalTable,
		})
	})
}

// newDBCommand builds `govn nbdb` / `govn sbdb`: both run an ovsdb-server for
// one database and differ only in the database they serve.
func newDBCommand(g *globals, use, what string, db dbserver.Database) *cobra.Command {
	cfg := dbserver.Config{DB: db}
	cmd := &cobra.Command{
		Use:   use,
		Short: "Run the " + what + " database (" + db.Name + ") in a supervised ovsdb-server",
		Long: "Run the " + what + " database (" + db.Name + ", OVN-compatible schema) in an ovsdb-server child process.\n" +
			"The database file is created in --data-dir if absent and converted when the schema changed.\n" +
			"With --cluster-local the database is a Raft cluster member: without --cluster-remote it creates\n" +
			"a new cluster, otherwise it joins the cluster of the given members.\n" +
			"The default remote is punix:DATA_DIR/" + db.Base + ".sock. SIGTERM stops the server cleanly.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			cfg.Logger = log.Named(use)
			err = dbserver.Run(cmd.Context(), cfg)
			if err == nil {
				log.Info("stopped", zap.String("db", db.Name))
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", "/var/lib/govn", "directory for the database file, its log, pid file and sockets")
	f.StringArrayVar(&cfg.Remotes, "remote", nil, "listen on punix:PATH, ptcp:PORT[:IP] or pssl:PORT[:IP] (repeatable)")
	f.StringVar(&cfg.ClusterLocal, "cluster-local", "", "this member's Raft address, tcp:IP:PORT (enables clustered mode)")
	f.StringArrayVar(&cfg.ClusterRemotes, "cluster-remote", nil, "address tcp:IP:PORT of an existing cluster member to join (repeatable)")
	f.IntVar(&cfg.ElectionTimer, "election-timer", 0, "Raft election timer in ms when creating a cluster (0: ovsdb-tool default)")
	f.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics and /healthz on this address (e.g. 127.0.0.1:9480; empty: off)")
	f.StringVar(&cfg.SSLPrivateKey, "ssl-private-key", "", "SSL private key file (for pssl: remotes)")
	f.StringVar(&cfg.SSLCertificate, "ssl-certificate", "", "SSL certificate file (for pssl: remotes)")
	f.StringVar(&cfg.SSLCACert, "ssl-ca-cert", "", "SSL CA certificate file (for pssl: remotes)")
	return cmd
}
