// Package e2e holds govn's end-to-end scenarios: real `govn nbdb`, `govn sbdb`,
// `govn northd` in the root namespace, one `govn controller` per chassis
// (e2e/harness: a network namespace with its own OVS, userspace datapath,
// Geneve over an underlay), configured with the real ovn-nbctl and checked
// with real packets (ping, nc).
//
// The govn and govnctl binaries are built once per run into a temporary
// directory, or taken from $GOVN_BIN (and $GOVNCTL_BIN, default: govnctl next
// to it). GOVN_E2E_IMPL=ovn runs the scenarios on OVN 23.03 instead (see
// referenceOVN). GOVN_E2E_KEEP=1 keeps every daemon's log (the directory is
// printed). On failure a scenario logs the NB/SB contents, each chassis'
// br-int ports and table 0, and the tails of all daemon logs.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/govn/govn/e2e/harness"
)

// govnBin is the govn binary the scenarios run ("" when e2e cannot run
// here); govnctlBin is govnctl (for trace checks).
var govnBin, govnctlBin string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	// Without root/OVS every scenario skips (harness.Start says why): do not
	// build anything.
	if harness.Available() != nil || missingOVNTools() != nil {
		return m.Run()
	}
	if b := os.Getenv("GOVN_BIN"); b != "" {
		abs, err := filepath.Abs(b)
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: GOVN_BIN:", err)
			return 2
		}
		govnBin = abs
		// govnctl next to it, unless $GOVNCTL_BIN says otherwise.
		govnctlBin = filepath.Join(filepath.Dir(abs), "govnctl")
		if b := os.Getenv("GOVNCTL_BIN"); b != "" {
			if govnctlBin, err = filepath.Abs(b); err != nil {
				fmt.Fprintln(os.Stderr, "e2e: GOVNCTL_BIN:", err)
				return 2
			}
		}
		return m.Run()
	}
	root, err := harness.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	dir, err := os.MkdirTemp("", "gvbin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 2
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command("go", "build", "-o", dir, "./cmd/govn", "./cmd/govnctl")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/govn ./cmd/govnctl: %v\n%s", err, out)
		return 2
	}
	govnBin, govnctlBin = filepath.Join(dir, "govn"), filepath.Join(dir, "govnctl")
	return m.Run()
}

// missingOVNTools reports a missing OVN client tool the scenarios need.
func missingOVNTools() error {
	for _, b := range []string{"ovn-nbctl", "ovn-sbctl"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("%s not found in PATH", b)
		}
	}
	return nil
}
