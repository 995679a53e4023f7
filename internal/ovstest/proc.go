package ovstest

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ReadPidfile returns the pid stored in an OVS-style pidfile.
func ReadPidfile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	pid, err := strconv.Atoi(s)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pidfile %s: %q is not a pid", path, s)
	}
	return pid, nil
}

// Alive reports whether pid names a live process. A zombie (state Z, exited
// but not yet reaped by its parent) counts as dead: detached daemons are
// re-parented to PID 1, which on some machines reaps only every few seconds.
func Alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && errors.Is(err, syscall.ESRCH) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// Format: "pid (comm) S ...": comm may contain spaces and ')'; the state
	// follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	st := s[i+2]
	return st != 'Z' && st != 'X'
}

// StopPid sends SIGTERM to pid and waits up to grace for it to die, then sends
// SIGKILL and waits again. It returns nil once the process is gone (or a
// zombie). It signals exactly that pid and nothing else.
func StopPid(pid int, grace time.Duration) error {
	if !Alive(pid) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill -TERM %d: %w", pid, err)
	}
	if waitDead(pid, grace) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill -KILL %d: %w", pid, err)
	}
	if waitDead(pid, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("pid %d still alive after SIGKILL", pid)
}

func waitDead(pid int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for sleep := time.Millisecond; ; sleep = min(sleep*2, 50*time.Millisecond) {
		if !Alive(pid) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(sleep)
	}
}

// StartTime returns a process's start time in clock ticks since boot (field
// 22 of /proc/PID/stat); with the pid it identifies a process across pid
// reuse.
func StartTime(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	return f[19], nil // f[0] is field 3
}

// SameProcess reports whether pid is alive and still the process that had
// start time st.
func SameProcess(pid int, st string) bool {
	now, err := StartTime(pid)
	return err == nil && now == st && Alive(pid)
}
