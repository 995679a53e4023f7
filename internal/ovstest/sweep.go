package ovstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Each instance directory holds an "owner" file: "govn-ovstest PID
// STARTTIME NETNS" (NETNS "-" unless the instance created its namespace), so
// that Sweep can clean up instances whose test process died without calling
// Stop (e.g. killed by go test's -timeout).
const ownerFile = "owner"

func (v *OVS) writeOwner() error {
	st, err := StartTime(os.Getpid())
	if err != nil {
		return err
	}
	ns := "-"
	if v.ownNetns {
		ns = v.netns
	}
	return os.WriteFile(filepath.Join(v.dir, ownerFile), fmt.Appendf(nil, "govn-ovstest %d %s %s\n", os.Getpid(), st, ns), 0o644)
}

// Sweep stops the daemons (by their pidfiles), deletes the private namespace
// and removes the directory of every instance under dir (default
// os.TempDir()) whose owning process is gone. Instances of live processes
// are left alone. Start calls it.
func Sweep(dir string) error {
	if dir == "" {
		dir = os.TempDir()
	}
	owners, err := filepath.Glob(filepath.Join(dir, "ovs*", ownerFile))
	if err != nil {
		return err
	}
	var errs []error
	for _, of := range owners {
		b, err := os.ReadFile(of)
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) != 4 || f[0] != "govn-ovstest" {
			continue
		}
		pid, err := strconv.Atoi(f[1])
		if err != nil || SameProcess(pid, f[2]) {
			continue
		}
		d := filepath.Dir(of)
		var derrs []error
		for _, name := range []string{"ovs-vswitchd", "ovsdb-server"} {
			if p, err := ReadPidfile(filepath.Join(d, name+".pid")); err == nil {
				if err := StopPid(p, 2*time.Second); err != nil {
					derrs = append(derrs, err)
				}
			}
		}
		if ns := f[3]; ns != "-" {
			if _, err := os.Stat("/run/netns/" + ns); err == nil {
				if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
					derrs = append(derrs, fmt.Errorf("ip netns del %s: %w: %s", ns, err, strings.TrimSpace(string(out))))
				}
			}
		}
		if len(derrs) == 0 {
			derrs = append(derrs, os.RemoveAll(d))
		}
		errs = append(errs, derrs...)
	}
	return errors.Join(errs...)
}
