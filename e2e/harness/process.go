package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a long-running program the harness started (a govn daemon, a
// test server…), optionally inside a network namespace, with stdout and
// stderr captured to a log file. It is stopped by its pid (and its process
// group, which the harness created for it), never by name.
type Process struct {
	Name  string   // short label, also the log file's base name
	Netns string   // "" for the caller's namespace
	Args  []string // the command line (without the netns wrapper)
	Log   string   // path of the captured output
	Pid   int

	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{}
	waitErr error
	once    sync.Once
}

// ProcessSpec describes a process to start.
type ProcessSpec struct {
	Name  string   // label; log file is <dir>/<name>.log
	Netns string   // network namespace to run in ("" = the caller's)
	Env   []string // extra environment (KEY=VALUE), added to the caller's
	Args  []string // program and arguments
	Dir   string   // directory for the log file (required)
}

// StartProcess starts a process as described. The caller must Stop it.
func StartProcess(s ProcessSpec) (*Process, error) {
	if len(s.Args) == 0 {
		return nil, errors.New("StartProcess: no command")
	}
	if s.Name == "" || strings.ContainsAny(s.Name, "/ ") {
		return nil, fmt.Errorf("StartProcess: bad name %q", s.Name)
	}
	logPath := filepath.Join(s.Dir, s.Name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	argv := s.Args
	if s.Netns != "" {
		argv = append([]string{"ip", "netns", "exec", s.Netns}, s.Args...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", strings.Join(argv, " "), err)
	}
	p := &Process{Name: s.Name, Netns: s.Netns, Args: s.Args, Log: logPath, Pid: cmd.Process.Pid,
		cmd: cmd, logFile: f, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Exited reports whether the process has ended, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Wait waits up to d for the process to end by itself.
func (p *Process) Wait(d time.Duration) (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	case <-time.After(d):
		return false, nil
	}
}

// Stop sends SIGTERM to the process group, waits up to 5 s, then SIGKILL.
// It is idempotent and returns an error only if the process survives.
func (p *Process) Stop() error {
	var err error
	p.once.Do(func() {
		if ok, _ := p.Exited(); ok {
			return
		}
		_ = syscall.Kill(-p.Pid, syscall.SIGTERM)
		if ok, _ := p.Wait(5 * time.Second); ok {
			return
		}
		_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
		if ok, _ := p.Wait(5 * time.Second); !ok {
			err = fmt.Errorf("process %s (pid %d) survived SIGKILL", p.Name, p.Pid)
		}
	})
	return err
}

// LogTail returns the last n lines of the process's output.
func (p *Process) LogTail(n int) string {
	b, err := os.ReadFile(p.Log)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
