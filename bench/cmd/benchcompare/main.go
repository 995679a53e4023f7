// Command benchcompare drives the same OVN_Northbound workload against govn
// and OVN 23.03 on this machine, one system after the other for each size,
// and prints one table per size with the ratio govn/ovn, plus a JSON file.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/govn/govn/bench"
)

func main() {
	var (
		sizes, systems, jsonOut, mdOut, govnBin, profDir          string
		switches, samples, recomps, batch, profSecs, ctrlProfSecs int
		quick                                                     bool
	)
	cmd := &cobra.Command{
		Use:   "benchcompare",
		Short: "Compare govn and OVN 23.03 with one OVSDB workload driver, on the same machine in the same run",
		Long: "For each size and each system in turn: start NB, SB, northd and one chassis (controller on a userspace\n" +
			"OVS in its own network namespace, 3 bound ports), then measure bulk load (to sb_cfg and hv_cfg),\n" +
			"single-change latency (port add/delete, ACL add, address-set add-IP; wait=sb and wait=hv), forced\n" +
			"recomputes, SB logical flow and OpenFlow flow counts, RSS and CPU of every daemon. Needs root.",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if quick {
				switches, sizes, samples, recomps, batch = 2, "100", 3, 1, 50
			}
			cfg := bench.Config{Samples: samples, Recomps: recomps, GovnBin: govnBin, ProfileDir: profDir, ControllerProfileSeconds: ctrlProfSecs,
				ProfileSeconds: profSecs, Logf: func(f string, a ...any) {
					fmt.Fprintf(os.Stderr, "%s "+f+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
				}}
			for _, s := range strings.Split(systems, ",") {
				s = strings.TrimSpace(s)
				if s != bench.SystemGovn && s != bench.SystemOVN {
					return fmt.Errorf("--systems: unknown system %q (want govn, ovn)", s)
				}
				cfg.Systems = append(cfg.Systems, s)
			}
			for _, f := range strings.Split(sizes, ",") {
				n, err := strconv.Atoi(strings.TrimSpace(f))
				if err != nil || n < switches || n%switches != 0 {
					return fmt.Errorf("--sizes: %q is not a multiple of --switches %d", f, switches)
				}
				cfg.Sizes = append(cfg.Sizes, bench.Workload{Switches: switches, PortsPerSwitch: n / switches, Batch: batch})
			}
			if govnBin == "" && strings.Contains(systems, bench.SystemGovn) {
				dir, err := os.MkdirTemp("", "gvbin")
				if err != nil {
					return err
				}
				defer os.RemoveAll(dir)
				govnBin = filepath.Join(dir, "govn")
				if out, err := exec.Command("go", "build", "-o", govnBin, "./cmd/govn").CombinedOutput(); err != nil {
					return fmt.Errorf("go build ./cmd/govn (run from the repository root or pass --govn-bin): %v\n%s", err, out)
				}
				cfg.GovnBin = govnBin
			}
			if profDir != "" {
				if err := os.MkdirAll(profDir, 0o755); err != nil {
					return err
				}
			}
			start := time.Now()
			results, runErr := bench.Run(context.Background(), cfg)
			if len(results) > 0 {
				if err := bench.WriteTable(os.Stdout, results); err != nil {
					return err
				}
				wins, losses := bench.Wins(results)
				fmt.Printf("\ngovn lower (better): %d metrics; higher (worse): %d metrics. Total run %v.\n",
					len(wins), len(losses), time.Since(start).Round(time.Second))
				if jsonOut != "" {
					b, err := json.MarshalIndent(map[string]any{"config": cfg, "results": results,
						"govn_better": wins, "govn_worse": losses}, "", "  ")
					if err != nil {
						return err
					}
					if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
						return err
					}
				}
				if mdOut != "" {
					f, err := os.Create(mdOut)
					if err != nil {
						return err
					}
					if err := bench.WriteTable(f, results); err != nil {
						f.Close()
						return err
					}
					if err := f.Close(); err != nil {
						return err
					}
				}
			}
			return runErr
		},
	}
	f := cmd.Flags()
	f.StringVar(&sizes, "sizes", "1000,5000,10000", "total ports per size, comma-separated (multiples of --switches)")
	f.IntVar(&switches, "switches", 100, "logical switches")
	f.StringVar(&systems, "systems", "govn,ovn", "systems to run, in order")
	f.IntVar(&samples, "samples", 20, "samples per single-change scenario")
	f.IntVar(&recomps, "recomputes", 3, "forced recompute samples")
	f.IntVar(&batch, "batch", 1000, "ports per bulk transaction (whole switches)")
	f.BoolVar(&quick, "quick", false, "CI size: 2 switches x 50 ports, 3 samples, 1 recompute")
	f.StringVar(&jsonOut, "json", "", "write the results as JSON to this file")
	f.StringVar(&mdOut, "markdown", "", "also write the tables to this file")
	f.StringVar(&govnBin, "govn-bin", "", "govn binary (default: go build ./cmd/govn)")
	f.StringVar(&profDir, "profile-dir", "", "save a CPU profile of govn northd during each bulk load here")
	f.IntVar(&profSecs, "profile-seconds", 10, "length of the northd CPU profile")
	f.IntVar(&ctrlProfSecs, "controller-profile-seconds", 0, "with --profile-dir, also save a CPU profile of govn controller over this many seconds from the start of the single changes (0: off)")
	if err := cmd.Execute(); err != nil {
		os.Exit(1)
	}
}
