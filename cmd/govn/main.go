// Command govn runs the govn daemons: govn nbdb | sbdb | northd | controller | api | up.
//
// Each daemon lives in its own file of this package and registers its cobra
// command with register() from an init function.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/govn/govn/internal/logging"
)

// subcommands are the daemons; each file adds its constructor in init().
var subcommands []func(*globals) *cobra.Command

func register(f func(*globals) *cobra.Command) { subcommands = append(subcommands, f) }

// globals are the flags every subcommand shares.
type globals struct {
	log logging.Options
}

// logger builds the zap logger from the global flags.
func (g *globals) logger() (*zap.Logger, error) { return logging.New(g.log) }

func newRootCommand() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "govn",
		Short:         "govn: an OVN-style SDN control plane (daemons)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.log.Format, "log-format", "console", "log format: json or console")
	root.PersistentFlags().StringVar(&g.log.Level, "log-level", "info", "log level: debug, info, warn or error")
	for _, f := range subcommands {
		root.AddCommand(f(g))
	}
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "govn:", err)
		os.Exit(1)
	}
}
