package main

import (
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/govn/govn/northd/run"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var nb, sb, metrics string
		var reconcile time.Duration
		var gcPercent int
		cmd := &cobra.Command{
			Use:   "northd",
			Short: "translate northbound intent into southbound logical flows, datapaths and port bindings",
			Long: "govn northd watches the northbound database (OVN_Northbound) and keeps the southbound database\n" +
				"(OVN_Southbound) in step: Datapath_Binding, Port_Binding, Multicast_Group, Logical_Flow,\n" +
				"Port_Group and Address_Set rows, following ovn-northd(8). It also reports nb_cfg progress\n" +
				"(sb_cfg, hv_cfg) so that ovn-nbctl --wait=sb/hv work. SIGHUP forces a full recompute.",
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				log, err := g.logger()
				if err != nil {
					return err
				}
				defer func() { _ = log.Sync() }()
				log = log.Named("northd")
				if os.Getenv("GOGC") == "" && gcPercent > 0 {
					// northd's heap is mostly long-lived (flow tables, caches);
					// a tighter GC target keeps RSS near it.
					debug.SetGCPercent(gcPercent)
				}
				log.Info("starting", zap.String("nb", nb), zap.String("sb", sb))
				n, err := run.Start(cmd.Context(), run.Config{
					NB: strings.Split(nb, ","), SB: strings.Split(sb, ","), MetricsAddr: metrics, Logger: log,
					ReconcileInterval: reconcile,
				})
				if err != nil {
					return err
				}
				// SIGHUP forces a full recompute.
				hup := make(chan os.Signal, 1)
				signal.Notify(hup, syscall.SIGHUP)
				defer signal.Stop(hup)
				go func() {
					for range hup {
						log.Info("SIGHUP: full recompute")
						n.Recompute()
					}
				}()
				return n.Run(cmd.Context())
			},
		}
		f := cmd.Flags()
		f.StringVar(&nb, "nb", "", "northbound database remote(s), comma-separated (unix:PATH, tcp:IP:PORT, ssl:IP:PORT)")
		f.StringVar(&sb, "sb", "", "southbound database remote(s), comma-separated")
		f.StringVar(&metrics, "metrics-addr", "", "serve Prometheus metrics on this address (e.g. 127.0.0.1:9477); empty disables")
		f.DurationVar(&reconcile, "reconcile-interval", 10*time.Minute,
			"re-read the southbound rows northd owns and repair differences this often (0 disables)")
		f.IntVar(&gcPercent, "gc-percent", 50, "Go GC target percentage (GOGC) unless GOGC is set in the environment")
		_ = cmd.MarkFlagRequired("nb")
		_ = cmd.MarkFlagRequired("sb")
		return cmd
	})
}
