package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/govn/govn/internal/ovstest"
)

// A topology records in its directory who owns it ("owner": "PID
// STARTTIME PREFIX") and which processes it started ("procs": one "PID
// STARTTIME" per line), so that Sweep can clean up after a test binary that
// died without tearing down (e.g. killed by go test's -timeout).

const (
	ownerFile = "owner"
	procsFile = "procs"
)

func (t *Topology) writeOwner() error {
	st, err := ovstest.StartTime(os.Getpid())
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(t.Dir, ownerFile), fmt.Appendf(nil, "%d %s %s\n", os.Getpid(), st, t.Prefix), 0o644)
}

func (t *Topology) recordProcess(pid int) error {
	st, err := ovstest.StartTime(pid)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(t.Dir, procsFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = fmt.Fprintf(f, "%d %s\n", pid, st)
	return err
}

// Sweep removes what earlier topologies left behind when their test
// process died without tearing down: for every harness directory in the
// temp dir whose owner process is gone, it stops the processes it recorded
// and the OVS daemons in their pidfiles (by pid), deletes namespaces with
// its prefix and removes the directory. Topologies of live processes are
// left alone. Start calls it before building a topology.
func Sweep() error {
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), "gve*"))
	if err != nil {
		return err
	}
	var errs []error
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not ours, or still being created
		}
		f := strings.Fields(string(b))
		if len(f) != 3 || !strings.HasPrefix(f[2], "gv") {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil || ovstest.SameProcess(pid, f[1]) {
			continue
		}
		errs = append(errs, sweepDir(dir, f[2]))
	}
	return errors.Join(errs...)
}

func sweepDir(dir, prefix string) error {
	var errs []error
	if b, err := os.ReadFile(filepath.Join(dir, procsFile)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) != 2 {
				continue
			}
			pid, err := strconv.Atoi(f[0])
			if err != nil || !ovstest.SameProcess(pid, f[1]) {
				continue
			}
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	pidfiles, _ := filepath.Glob(filepath.Join(dir, "ovs*", "*.pid"))
	for _, pf := range pidfiles {
		if pid, err := ovstest.ReadPidfile(pf); err == nil {
			if err := ovstest.StopPid(pid, 2*time.Second); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix+"-") {
				if err := run("ip", "netns", "del", f[0]); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweeping %s: %w", dir, err)
	}
	return os.RemoveAll(dir)
}
