package main

import (
	"github.com/spf13/cobra"

	"github.com/govn/govn/api/server"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var cfg server.Config
		cmd := &cobra.Command{
			Use:   "api",
			Short: "Serve the govn.v1 gRPC API over the northbound database",
			Long: "Serve the govn.v1 gRPC API (logical switches, ports, ACLs, address sets, port groups, routers,\n" +
				"router ports, static routes, load balancers, NAT, DHCP options, Watch, Sync, Trace) over the northbound\n" +
				"database. Every request is validated first and written as one OVSDB transaction.\n" +
				"--sb gives the southbound database for Trace (the packet simulator, as govnctl trace): the server\n" +
				"monitors it and traces over a snapshot it rebuilds when the southbound database changes; without\n" +
				"--sb, Trace fails with FailedPrecondition.\n" +
				"--tls-cert/--tls-key enable TLS; adding --tls-ca requires client certificates (mTLS).\n" +
				"The gRPC health service reports SERVING while the northbound database is connected.",
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				log, err := g.logger()
				if err != nil {
					return err
				}
				defer func() { _ = log.Sync() }()
				cfg.Logger = log.Named("api")
				return server.Run(cmd.Context(), cfg)
			},
		}
		f := cmd.Flags()
		f.StringSliceVar(&cfg.NB, "nb", nil, "northbound database remote(s): unix:PATH, tcp:IP:PORT or ssl:IP:PORT (repeatable; list every cluster member)")
		f.StringSliceVar(&cfg.SB, "sb", nil, "southbound database remote(s) for Trace: unix:PATH, tcp:IP:PORT or ssl:IP:PORT (repeatable; optional)")
		f.StringVar(&cfg.Listen, "listen", "127.0.0.1:6690", "gRPC listen address: HOST:PORT or unix:PATH")
		f.StringVar(&cfg.TLSCert, "tls-cert", "", "server TLS certificate (PEM)")
		f.StringVar(&cfg.TLSKey, "tls-key", "", "server TLS private key (PEM)")
		f.StringVar(&cfg.TLSCA, "tls-ca", "", "CA certificate(s) for verifying client certificates (enables mTLS)")
		f.StringVar(&cfg.MetricsAddr, "metrics-addr", "", "serve Prometheus metrics on HOST:PORT/metrics (empty: off)")
		_ = cmd.MarkFlagRequired("nb")
		return cmd
	})
}
