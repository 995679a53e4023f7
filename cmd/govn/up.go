package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/govn/govn/internal/up"
)

func init() {
	register(func(g *globals) *cobra.Command {
		var cfg up.Config
		cmd := &cobra.Command{
			Use:   "up",
			Short: "Run every central component for one host in one process (nbdb, sbdb, northd, api [, controller])",
			Long: "govn up is the one-command single-host setup. It runs the northbound and southbound databases\n" +
				"(supervised ovsdb-server children, files and unix sockets in --data-dir), northd and the gRPC API\n" +
				"in this one process and, when the host runs Open vSwitch (--controller=auto finds its database\n" +
				"socket), a local controller that uses the local southbound database.\n\n" +
				"When everything is up it prints how to connect. SIGTERM/SIGINT stops all components (controller\n" +
				"first, databases last) and exits 0; if any component fails, all are stopped and govn up exits 1\n" +
				"naming the component.",
			Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				log, err := g.logger()
				if err != nil {
					return err
				}
				defer func() { _ = log.Sync() }()
				cfg.Logger = log
				cfg.Ready = func(i up.Info) { printInfo(cmd.OutOrStdout(), i) }
				return up.Run(cmd.Context(), cfg)
			},
		}
		f := cmd.Flags()
		f.StringVar(&cfg.DataDir, "data-dir", up.DefaultDataDir, "directory for both databases, their logs and unix sockets")
		f.StringArrayVar(&cfg.NBRemotes, "nb-remote", nil, "extra northbound listener, e.g. ptcp:6641:127.0.0.1 (repeatable; the unix socket is always there)")
		f.StringArrayVar(&cfg.SBRemotes, "sb-remote", nil, "extra southbound listener, e.g. ptcp:6642:0.0.0.0 for remote chassis (repeatable)")
		f.StringVar(&cfg.APIListen, "api-listen", up.DefaultAPIListen, "gRPC API listen address: HOST:PORT or unix:PATH")
		f.StringVar(&cfg.APIMetricsAddr, "api-metrics-addr", "", "serve the API's Prometheus metrics on HOST:PORT (empty: off)")
		f.StringVar(&cfg.NorthdMetricsAddr, "northd-metrics-addr", "", "serve northd's Prometheus metrics on HOST:PORT (empty: off)")
		f.StringVar(&cfg.Controller, "controller", up.ControllerAuto, "local controller: auto (if the Open vSwitch database answers), on or off")
		f.StringVar(&cfg.OVS, "ovs", "", "local Open_vSwitch database for the controller (default $OVS_RUNDIR/db.sock, else /var/run/openvswitch/db.sock)")
		f.StringVar(&cfg.ControllerOptions.SystemID, "system-id", "", "controller: chassis name (overrides external_ids:system-id)")
		f.StringVar(&cfg.ControllerOptions.EncapIP, "encap-ip", "", "controller: tunnel endpoint IP (overrides external_ids:ovn-encap-ip)")
		f.StringVar(&cfg.ControllerOptions.EncapType, "encap-type", "", "controller: encapsulation, geneve (overrides external_ids:ovn-encap-type)")
		f.StringVar(&cfg.ControllerOptions.DatapathType, "bridge-datapath-type", "", "controller: br-int datapath type, system or netdev (overrides external_ids:ovn-bridge-datapath-type)")
		cfg.ControllerOptions.Conditional = true
		return cmd
	})
}

// printInfo tells the user how to reach what runs.
func printInfo(w io.Writer, i up.Info) {
	var b strings.Builder
	fmt.Fprintf(&b, "govn is up (data directory %s)\n", i.DataDir)
	fmt.Fprintf(&b, "  northbound database  %s\n", i.NB)
	fmt.Fprintf(&b, "  southbound database  %s\n", i.SB)
	fmt.Fprintf(&b, "  API                  %s\n", i.API)
	if i.Controller != "" {
		fmt.Fprintf(&b, "  controller           on, Open vSwitch at %s\n", i.Controller)
	} else {
		fmt.Fprintf(&b, "  controller           off: %s\n", i.NoController)
	}
	fmt.Fprintf(&b, "\nConnect with:\n  export GOVN_SERVER=%s\n  govnctl show\n  ovn-nbctl --db=%s show\n", i.API, i.NB)
	_, _ = io.WriteString(w, b.String())
	if f, ok := w.(*os.File); ok {
		_ = f.Sync()
	}
}
