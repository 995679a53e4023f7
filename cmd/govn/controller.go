package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/govn/govn/controller/run"
)

func init() {
	register(newControllerCommand)
}

func newControllerCommand(g *globals) *cobra.Command {
	o := run.Options{}
	var gcPct int
	var memLimit string
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the per-chassis controller: make the southbound database real on the local Open vSwitch",
		Long: "govn controller runs on every chassis. Like ovn-controller it reads its configuration from the local\n" +
			"Open_vSwitch table's external_ids (system-id, ovn-remote, ovn-encap-type, ovn-encap-ip, ovn-bridge,\n" +
			"ovn-bridge-datapath-type, ovn-bridge-mappings); each flag below overrides one key. It registers the\n" +
			"chassis, claims the Port_Bindings of interfaces with external_ids:iface-id, creates Geneve tunnels to\n" +
			"the other chassis and keeps the integration bridge's OpenFlow tables equal to the translated logical\n" +
			"flows of the local datapaths.\n\n" +
			"SIGTERM/SIGINT: unregister the chassis and release its ports, then exit. SIGUSR1: exit keeping the\n" +
			"registration (for a restart; installed flows are reconciled, not flushed, by the next start).\n" +
			"SIGHUP: full recompute (drop the translation caches, recompute every flow, sync OpenFlow).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer func() { _ = log.Sync() }()
			o.Log = log.Named("controller")
			limit, err := run.ParseMemoryLimit(memLimit)
			if err != nil {
				return fmt.Errorf("--memory-limit: %w", err)
			}
			if gcPct < 0 && limit <= 0 {
				return fmt.Errorf("--gc-percent %d turns the garbage collector off: give a --memory-limit too", gcPct)
			}
			run.ConfigureMemory(run.Memory{GCPercent: gcPct, Limit: limit})
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			usr1 := make(chan os.Signal, 1)
			signal.Notify(usr1, syscall.SIGUSR1)
			defer signal.Stop(usr1)
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			c := run.New(o)
			go func() {
				for {
					select {
					case <-usr1:
						log.Info("SIGUSR1: exiting for a restart (registration kept)")
						c.KeepOnExit()
						cancel()
						return
					case <-hup:
						log.Info("SIGHUP: full recompute")
						c.ForceRecompute()
					case <-ctx.Done():
						return
					}
				}
			}()
			log.Info("starting govn controller", zap.String("ovs", o.OVS))
			return c.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.OVS, "ovs", run.DefaultOVS(), "local Open_vSwitch database (unix:PATH)")
	f.StringVar(&o.RunDir, "ovs-rundir", "", "directory of the bridge's OpenFlow socket <bridge>.mgmt (default: $OVS_RUNDIR, else the --ovs socket's directory)")
	f.StringVar(&o.SystemID, "system-id", "", "chassis name (overrides external_ids:system-id)")
	f.StringVar(&o.Remote, "remote", "", "southbound database, e.g. unix:/run/govn/sb.sock or tcp:IP:6642 (overrides external_ids:ovn-remote)")
	f.StringVar(&o.EncapType, "encap-type", "", "encapsulation, geneve (overrides external_ids:ovn-encap-type)")
	f.StringVar(&o.EncapIP, "encap-ip", "", "this chassis' tunnel endpoint IP (overrides external_ids:ovn-encap-ip)")
	f.StringVar(&o.Bridge, "bridge", "", "integration bridge, default br-int (overrides external_ids:ovn-bridge)")
	f.StringVar(&o.DatapathType, "bridge-datapath-type", "", "integration bridge datapath type: system or netdev (overrides external_ids:ovn-bridge-datapath-type)")
	f.StringVar(&o.BridgeMappings, "bridge-mappings", "", "physnet:bridge,... (overrides external_ids:ovn-bridge-mappings)")
	f.StringVar(&o.Hostname, "hostname", "", "hostname reported in Chassis.hostname (default: the system's)")
	f.StringVar(&o.MetricsAddr, "metrics-addr", "", "serve Prometheus /metrics, /healthz and /debug/pprof/ on this address (e.g. 127.0.0.1:9476; empty: off)")
	f.BoolVar(&o.Conditional, "conditional-monitoring", true, "monitor only the southbound rows of the local datapaths")
	f.BoolVar(&o.KeepOnExit, "keep-on-exit", false, "on SIGTERM keep the chassis registration and port claims (as for a restart)")
	f.DurationVar(&o.Resync, "resync", 0, "full reconcile period even without changes (default 30s)")
	f.IntVar(&gcPct, "gc-percent", 0, "garbage collector target percentage (GOGC; default: $GOGC, else 50; negative: off, only with --memory-limit)")
	f.StringVar(&memLimit, "memory-limit", "", "soft limit on the Go runtime's memory, e.g. 512MiB, a safety net (GOMEMLIMIT; default: $GOMEMLIMIT, else none; none: off)")
	return cmd
}
