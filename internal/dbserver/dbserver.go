// Package dbserver runs and supervises a real ovsdb-server for one OVSDB
// database (govn's OVN_Northbound or OVN_Southbound).
//
// Lifecycle:
//   - The database file lives in the data directory. If it is absent it is
//     created with `ovsdb-tool create` (standalone) or, in clustered mode,
//     `ovsdb-tool create-cluster` (first member: no cluster remotes) or
//     `ovsdb-tool join-cluster` (other members).
//   - The schema we write to disk carries a "cksum" computed from the embedded
//     schema, so a later start detects a changed schema by comparing
//     `ovsdb-tool db-version`/`db-cksum` with ours. A standalone database is
//     then backed up (DB.bak-VERSION-CKSUM) and converted in place with
//     `ovsdb-tool convert` before the server starts; a clustered database is
//     converted online with `ovsdb-client convert` once the server runs.
//   - ovsdb-server runs in the foreground as our child (never --detach), with
//     its log file, pid file and unixctl socket in the data directory and
//     console logging off. Its stderr is copied to our zap logger.
//   - Stop (or cancelling Run's context) sends SIGTERM to the child by pid and
//     waits for it; SIGKILL after a grace period. The child also gets
//     SIGKILL if we die (Pdeathsig).
//   - If the child exits unexpectedly, Wait/Run return an error that includes
//     the last lines it printed; the daemon exits non-zero. We do not restart
//     the child ourselves: restart policy belongs to the service manager,
//     which then also restarts everything that depends on this process.
//   - The data directory may hold only one server: a live ovsdb-server named
//     by the pid file, or another process serving one of our unix sockets, is
//     an error; a stale socket is removed.
//   - With Config.MetricsAddr, Run serves Prometheus /metrics (up, file size,
//     Raft role/term/status) and /healthz.
//
// Problems a person can fix are reported as plain errors before anything is
// started: ovsdb-server/ovsdb-tool missing from PATH, a data directory that
// cannot be written, a TCP port already in use, a unix socket path too long.
package dbserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Database describes one OVSDB database: its schema and file names.
type Database struct {
	// Name is the schema's database name, e.g. "OVN_Northbound".
	Name string
	// Schema is the schema JSON (.ovsschema contents).
	Schema []byte
	// Base names the files in the data directory: Base+".db", Base+".sock",
	// Base+".ctl", Base+".pid", Base+".log", e.g. "ovnnb_db".
	Base string
	// GlobalTable, if set, is a root table that must hold exactly one row
	// (NB_Global, SB_Global); the row is inserted at start if the table is
	// empty, like `ovn-nbctl init`.
	GlobalTable string
}

// Config configures one ovsdb-server.
type Config struct {
	DB      Database
	DataDir string
	// Remotes are ovsdb-server --remote values: punix:PATH, ptcp:PORT[:IP],
	// pssl:PORT[:IP]. If none is a punix: remote, punix:DataDir/Base.sock is
	// added (the server always has a local unix socket).
	Remotes []string
	// SSL files, required if a pssl: remote is given.
	SSLPrivateKey, SSLCertificate, SSLCACert string

	// ClusterLocal, if set, makes the database a Raft cluster member
	// listening at this address ("tcp:IP:PORT"). ClusterRemotes are the
	// addresses of existing members to join; empty means create a new cluster.
	ClusterLocal   string
	ClusterRemotes []string
	// ElectionTimer (ms) for a new cluster; 0 = ovsdb-tool's default.
	ElectionTimer int

	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	// Default 10s.
	StopTimeout time.Duration
	// ReadyTimeout bounds waiting for the unix socket after start. Default 30s.
	ReadyTimeout time.Duration

	// MetricsAddr, if set, makes Run serve Prometheus /metrics and /healthz
	// on this HOST:PORT.
	MetricsAddr string

	Logger *zap.Logger
}

// Server is a running ovsdb-server child.
type Server struct {
	cfg     Config
	log     *zap.Logger
	dbPath  string
	sock    string
	logPath string
	schema  string // path of the schema file we wrote (with cksum)
	cmd     *exec.Cmd
	started time.Time

	done    chan struct{} // closed when the child has exited
	waitErr error         // child's exit status, valid after done
	stderr  *tailBuffer

	mu       sync.Mutex
	stopping bool
	bgCancel context.CancelFunc
	bgDone   chan struct{}
}

// Run starts the server and supervises it until ctx is cancelled (then it
// stops the child and returns nil) or the child exits on its own (then it
// returns an error).
func Run(ctx context.Context, cfg Config) error {
	var ml net.Listener
	if cfg.MetricsAddr != "" {
		var err error
		if ml, err = listenMetrics(cfg.MetricsAddr); err != nil {
			return err
		}
		defer ml.Close()
	}
	s, err := Start(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return nil // asked to stop while starting
		}
		return err
	}
	if ml != nil {
		hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := hs.Serve(ml); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("metrics server failed", zap.Error(err))
			}
		}()
		defer hs.Close()
		s.log.Info("serving metrics", zap.String("address", ml.Addr().String()))
	}
	select {
	case <-ctx.Done():
		return s.Stop()
	case <-s.done:
		return s.Wait()
	}
}

// Start prepares the database (create, join or convert), starts
// ovsdb-server and waits until its unix socket accepts connections.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	if cfg.ReadyTimeout == 0 {
		cfg.ReadyTimeout = 30 * time.Second
	}
	if cfg.DB.Name == "" || cfg.DB.Base == "" || len(cfg.DB.Schema) == 0 {
		return nil, errors.New("dbserver: database name, base name and schema are required")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("no data directory given")
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cfg.DataDir = dataDir
	s := &Server{
		cfg:     cfg,
		log:     cfg.Logger.With(zap.String("db", cfg.DB.Name)),
		dbPath:  filepath.Join(dataDir, cfg.DB.Base+".db"),
		logPath: filepath.Join(dataDir, cfg.DB.Base+".log"),
		done:    make(chan struct{}),
		stderr:  newTailBuffer(20),
	}
	serverBin, toolBin, err := findBinaries()
	if err != nil {
		return nil, err
	}
	if err := checkWritableDir(dataDir); err != nil {
		return nil, err
	}
	remotes, sock, err := s.checkRemotes(cfg.Remotes)
	if err != nil {
		return nil, err
	}
	s.sock = sock
	if err := s.checkNotRunning(remotes); err != nil {
		return nil, err
	}
	if cfg.ClusterLocal != "" {
		if err := checkClusterAddress("--cluster-local", cfg.ClusterLocal, true); err != nil {
			return nil, err
		}
		for _, r := range cfg.ClusterRemotes {
			if err := checkClusterAddress("--cluster-remote", r, false); err != nil {
				return nil, err
			}
		}
	} else if len(cfg.ClusterRemotes) > 0 {
		return nil, errors.New("--cluster-remote needs --cluster-local (this member's own address)")
	}
	s.schema = filepath.Join(dataDir, cfg.DB.Base+".ovsschema")
	schemaVersion, cksum, err := writeSchemaFile(s.schema, cfg.DB.Schema)
	if err != nil {
		return nil, err
	}
	clustered, err := s.prepareDB(ctx, toolBin, schemaVersion, cksum)
	if err != nil {
		return nil, err
	}
	if err := s.startChild(serverBin, remotes); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx); err != nil {
		_ = s.Stop()
		return nil, err
	}
	s.log.Info("ovsdb-server running", zap.Int("pid", s.cmd.Process.Pid), zap.String("socket", s.sock),
		zap.Strings("remotes", remotes), zap.String("file", s.dbPath), zap.Bool("clustered", clustered))

	// Post-start work that needs the server: initialise the global row and,
	// for a cluster, convert online. In a cluster this can only complete once
	// a quorum is up, so it runs in the background and retries.
	bgCtx, cancel := context.WithCancel(context.Background())
	s.bgCancel, s.bgDone = cancel, make(chan struct{})
	if clustered {
		go func() {
			defer close(s.bgDone)
			s.postStartRetry(bgCtx, true)
		}()
	} else {
		err := s.postStart(ctx, false)
		close(s.bgDone)
		if err != nil {
			_ = s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// UnixSocket is the path of the server's unix socket.
func (s *Server) UnixSocket() string { return s.sock }

// Endpoint is the client address of the unix socket ("unix:PATH").
func (s *Server) Endpoint() string { return "unix:" + s.sock }

// PID is the ovsdb-server process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// DBPath is the database file.
func (s *Server) DBPath() string { return s.dbPath }

// LogPath is ovsdb-server's own log file.
func (s *Server) LogPath() string { return s.logPath }

// Done is closed when the child has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Wait waits for the child to exit. It returns nil if it exited because of
// Stop, and an error describing the exit (with its last output) otherwise.
func (s *Server) Wait() error {
	<-s.done
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		return nil
	}
	msg := fmt.Sprintf("ovsdb-server for %s (pid %d) exited unexpectedly", s.cfg.DB.Name, s.cmd.Process.Pid)
	if s.waitErr != nil {
		msg += ": " + s.waitErr.Error()
	}
	if out := s.lastOutput(); out != "" {
		msg += "; last output:\n" + out
	}
	return errors.New(msg)
}

// Stop terminates the child (SIGTERM, then SIGKILL after StopTimeout) and
// waits until it has exited. It is safe to call more than once.
func (s *Server) Stop() error {
	s.mu.Lock()
	s.stopping = true
	if s.bgCancel != nil {
		s.bgCancel()
	}
	s.mu.Unlock()
	if s.bgDone != nil {
		<-s.bgDone
	}
	select {
	case <-s.done:
		return nil
	default:
	}
	pid := s.cmd.Process.Pid
	s.log.Info("stopping ovsdb-server", zap.Int("pid", pid))
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(s.cfg.StopTimeout):
		s.log.Warn("ovsdb-server did not exit after SIGTERM; killing", zap.Int("pid", pid))
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	return nil
}

func findBinaries() (server, tool string, err error) {
	server, err = exec.LookPath("ovsdb-server")
	if err != nil {
		return "", "", errors.New("ovsdb-server not found in PATH; install Open vSwitch (Debian: apt install openvswitch-switch)")
	}
	tool, err = exec.LookPath("ovsdb-tool")
	if err != nil {
		return "", "", errors.New("ovsdb-tool not found in PATH; install Open vSwitch (Debian: apt install openvswitch-common)")
	}
	return server, tool, nil
}

// checkWritableDir creates dir if needed and proves that files can be created in it.
func checkWritableDir(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("data directory %s cannot be created: %w", dir, unwrapPathError(err))
	}
	f, err := os.CreateTemp(dir, ".govn-write-check-*")
	if err != nil {
		return fmt.Errorf("data directory %s is not writable: %w", dir, unwrapPathError(err))
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// maxUnixPath is the longest path a sockaddr_un can hold (108 bytes with NUL).
const maxUnixPath = 107

// checkRemotes validates the remotes, pre-checks that TCP ports are free and
// returns the final remote list and the unix socket path.
func (s *Server) checkRemotes(in []string) ([]string, string, error) {
	var out []string
	sock := ""
	for _, r := range in {
		kind, rest, ok := strings.Cut(r, ":")
		if !ok {
			return nil, "", fmt.Errorf("remote %q: expected punix:PATH, ptcp:PORT[:IP] or pssl:PORT[:IP]", r)
		}
		switch kind {
		case "punix":
			p, err := filepath.Abs(rest)
			if err != nil || rest == "" {
				return nil, "", fmt.Errorf("remote %q: bad path", r)
			}
			if len(p) > maxUnixPath {
				return nil, "", fmt.Errorf("remote %q: unix socket path is %d bytes, longer than the %d the kernel allows", r, len(p), maxUnixPath)
			}
			if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
				return nil, "", fmt.Errorf("remote %q: cannot create socket directory: %w", r, unwrapPathError(err))
			}
			if sock == "" {
				sock = p
			}
			out = append(out, "punix:"+p)
		case "ptcp", "pssl":
			addr, err := listenAddress(rest)
			if err != nil {
				return nil, "", fmt.Errorf("remote %q: %w", r, err)
			}
			if kind == "pssl" && (s.cfg.SSLPrivateKey == "" || s.cfg.SSLCertificate == "" || s.cfg.SSLCACert == "") {
				return nil, "", fmt.Errorf("remote %q: pssl needs --ssl-private-key, --ssl-certificate and --ssl-ca-cert", r)
			}
			if err := checkPortFree(addr); err != nil {
				return nil, "", fmt.Errorf("remote %q: %w", r, err)
			}
			out = append(out, r)
		case "db":
			out = append(out, r)
		default:
			return nil, "", fmt.Errorf("remote %q: unsupported kind %q (use punix:, ptcp: or pssl:)", r, kind)
		}
	}
	if sock == "" {
		sock = filepath.Join(s.cfg.DataDir, s.cfg.DB.Base+".sock")
		if len(sock) > maxUnixPath {
			return nil, "", fmt.Errorf("default unix socket %s is %d bytes, longer than the %d the kernel allows; use a shorter --data-dir or give --remote punix:PATH", sock, len(sock), maxUnixPath)
		}
		out = append([]string{"punix:" + sock}, out...)
	}
	// Let ovn-nbctl/ovn-sbctl set-connection work, as OVN's ovn-ctl does.
	if s.cfg.DB.GlobalTable != "" {
		out = append(out, fmt.Sprintf("db:%s,%s,connections", s.cfg.DB.Name, s.cfg.DB.GlobalTable))
	}
	return out, sock, nil
}

// checkNotRunning fails if another ovsdb-server already uses this data
// directory (its pid file names a live ovsdb-server) or serves one of our
// unix sockets; it removes stale sockets, so that a successful connection to
// the socket later proves that our child is up.
func (s *Server) checkNotRunning(remotes []string) error {
	pidFile := filepath.Join(s.cfg.DataDir, s.cfg.DB.Base+".pid")
	if data, err := os.ReadFile(pidFile); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && pid > 0 {
			comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if err == nil && strings.TrimSpace(string(comm)) == "ovsdb-server" && !isZombie(pid) {
				return fmt.Errorf("another ovsdb-server (pid %d) is already running for %s (pid file %s); stop it first", pid, s.cfg.DataDir, pidFile)
			}
		}
	}
	for _, r := range remotes {
		path, ok := strings.CutPrefix(r, "punix:")
		if !ok {
			continue
		}
		fi, err := os.Lstat(path)
		if err != nil {
			continue
		}
		if fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("remote %q: %s exists and is not a socket", r, path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return fmt.Errorf("remote %q: another process already serves %s", r, path)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remote %q: remove stale socket: %w", r, unwrapPathError(err))
		}
	}
	return nil
}

// isZombie reports whether pid is a zombie (exited, not yet reaped).
func isZombie(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	st := string(data)
	if i := strings.LastIndexByte(st, ')'); i >= 0 && i+2 < len(st) {
		return st[i+2] == 'Z' || st[i+2] == 'X'
	}
	return false
}

// listenAddress turns "PORT[:IP]" into a host:port for net.Listen.
func listenAddress(spec string) (string, error) {
	portStr, ip, _ := strings.Cut(spec, ":")
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", fmt.Errorf("bad port %q (want PORT[:IP])", portStr)
	}
	if ip != "" {
		ip = strings.TrimSuffix(strings.TrimPrefix(ip, "["), "]")
		if net.ParseIP(ip) == nil {
			return "", fmt.Errorf("bad IP address %q (want PORT[:IP])", ip)
		}
	}
	return net.JoinHostPort(ip, strconv.Itoa(port)), nil
}

// checkPortFree binds addr briefly to report a port already in use before
// ovsdb-server (which would only log the failure and keep retrying) starts.
func checkPortFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("address %s is already in use by another process", addr)
		}
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	return l.Close()
}

// checkClusterAddress validates "tcp:IP:PORT" (or ssl:) and, for our own
// address, that the port is free.
func checkClusterAddress(flag, a string, local bool) error {
	kind, hostport, ok := strings.Cut(a, ":")
	if !ok || (kind != "tcp" && kind != "ssl") {
		return fmt.Errorf("%s %q: expected tcp:IP:PORT", flag, a)
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || net.ParseIP(strings.Trim(host, "[]")) == nil {
		return fmt.Errorf("%s %q: expected tcp:IP:PORT with a literal IP address", flag, a)
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return fmt.Errorf("%s %q: bad port %q", flag, a, port)
	}
	if local {
		if err := checkPortFree(hostport); err != nil {
			return fmt.Errorf("%s %q: %w", flag, a, err)
		}
	}
	return nil
}

// SchemaChecksum is the checksum govn records in the schema it writes to
// disk: "CRC32 LENGTH" of the schema bytes (any change to the schema text,
// including whitespace, changes it).
func SchemaChecksum(schema []byte) string {
	return fmt.Sprintf("%d %d", crc32.ChecksumIEEE(schema), len(schema))
}

// writeSchemaFile writes schema with its "cksum" member set to
// SchemaChecksum(schema), returning the schema's version and checksum.
func writeSchemaFile(path string, schema []byte) (version, cksum string, err error) {
	dec := json.NewDecoder(bytes.NewReader(schema))
	dec.UseNumber() // keep 4294967295 an integer
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return "", "", fmt.Errorf("schema is not valid JSON: %w", err)
	}
	version, _ = m["version"].(string)
	if version == "" {
		return "", "", errors.New("schema has no version")
	}
	cksum = SchemaChecksum(schema)
	m["cksum"] = cksum
	out, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return "", "", err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o640); err != nil {
		return "", "", fmt.Errorf("write schema: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", "", fmt.Errorf("write schema: %w", err)
	}
	return version, cksum, nil
}

// prepareDB creates, joins or converts the database file. It reports whether
// the database is clustered.
func (s *Server) prepareDB(ctx context.Context, tool, version, cksum string) (bool, error) {
	_, err := os.Stat(s.dbPath)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return s.createDB(ctx, tool)
	case err != nil:
		return false, fmt.Errorf("database file %s: %w", s.dbPath, unwrapPathError(err))
	}
	name, err := runTool(ctx, tool, "db-name", s.dbPath)
	if err != nil {
		return false, fmt.Errorf("database file %s is not a readable OVSDB database: %w", s.dbPath, err)
	}
	if name != s.cfg.DB.Name {
		return false, fmt.Errorf("database file %s holds database %q, not %q", s.dbPath, name, s.cfg.DB.Name)
	}
	_, err = runTool(ctx, tool, "db-is-clustered", s.dbPath)
	clustered := err == nil
	if clustered != (s.cfg.ClusterLocal != "") {
		if clustered {
			return false, fmt.Errorf("database file %s is clustered; give --cluster-local (its address is in the file: ovsdb-tool db-local-address)", s.dbPath)
		}
		return false, fmt.Errorf("database file %s is standalone but --cluster-local was given; remove the file to create a cluster member", s.dbPath)
	}
	if clustered {
		// Converted online after start (postStart).
		return true, nil
	}
	dbVersion, err := runTool(ctx, tool, "db-version", s.dbPath)
	if err != nil {
		return false, err
	}
	dbCksum, err := runTool(ctx, tool, "db-cksum", s.dbPath)
	if err != nil {
		return false, err
	}
	if dbVersion == version && dbCksum == cksum {
		return false, nil
	}
	backup := fmt.Sprintf("%s.bak-%s-%s", s.dbPath, dbVersion, strings.ReplaceAll(dbCksum, " ", "-"))
	if err := copyFile(s.dbPath, backup); err != nil {
		return false, fmt.Errorf("back up %s before conversion: %w", s.dbPath, err)
	}
	s.log.Info("converting database to new schema", zap.String("file", s.dbPath),
		zap.String("from_version", dbVersion), zap.String("from_cksum", dbCksum),
		zap.String("to_version", version), zap.String("to_cksum", cksum), zap.String("backup", backup))
	if _, err := runTool(ctx, tool, "convert", s.dbPath, s.schema); err != nil {
		return false, fmt.Errorf("convert %s to the new schema (backup kept at %s): %w", s.dbPath, backup, err)
	}
	return false, nil
}

func (s *Server) createDB(ctx context.Context, tool string) (bool, error) {
	tmp := s.dbPath + ".creating"
	_ = os.Remove(tmp)
	var args []string
	switch {
	case s.cfg.ClusterLocal == "":
		args = []string{"create", tmp, s.schema}
	case len(s.cfg.ClusterRemotes) == 0:
		if s.cfg.ElectionTimer > 0 {
			args = append(args, "--election-timer="+strconv.Itoa(s.cfg.ElectionTimer))
		}
		args = append(args, "create-cluster", tmp, s.schema, s.cfg.ClusterLocal)
	default:
		args = append([]string{"join-cluster", tmp, s.cfg.DB.Name, s.cfg.ClusterLocal}, s.cfg.ClusterRemotes...)
	}
	if _, err := runTool(ctx, tool, args...); err != nil {
		_ = os.Remove(tmp)
		return false, fmt.Errorf("create database %s: %w", s.dbPath, err)
	}
	if err := os.Rename(tmp, s.dbPath); err != nil {
		return false, err
	}
	s.log.Info("created database", zap.String("file", s.dbPath), zap.String("command", args[0]))
	return s.cfg.ClusterLocal != "", nil
}

func runTool(ctx context.Context, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("%s %s: %s", filepath.Base(bin), strings.Join(args, " "), msg)
	}
	return strings.TrimSpace(stdout.String()), nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (s *Server) startChild(bin string, remotes []string) error {
	dir := s.cfg.DataDir
	args := []string{
		s.dbPath,
		"-vconsole:off",
		"-vfile:info",
		"--log-file=" + s.logPath,
		"--pidfile=" + filepath.Join(dir, s.cfg.DB.Base+".pid"),
		"--unixctl=" + filepath.Join(dir, s.cfg.DB.Base+".ctl"),
		"--no-chdir",
	}
	for _, r := range remotes {
		args = append(args, "--remote="+r)
	}
	if s.cfg.SSLPrivateKey != "" {
		args = append(args, "--private-key="+s.cfg.SSLPrivateKey, "--certificate="+s.cfg.SSLCertificate,
			"--ca-cert="+s.cfg.SSLCACert)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "OVS_RUNDIR="+dir, "OVS_DBDIR="+dir, "OVS_LOGDIR="+dir)
	// Pdeathsig fires when the OS thread that forked the child exits, not the
	// process; so fork from a goroutine locked to its thread that lives until
	// the child is reaped.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- fmt.Errorf("start ovsdb-server: %w", err)
			return
		}
		s.cmd = cmd
		s.started = time.Now()
		started <- nil
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.stderr.add(line)
			s.log.Warn("ovsdb-server stderr", zap.String("line", line))
		}
		s.waitErr = cmd.Wait()
		close(s.done)
	}()
	return <-started
}

// waitReady waits until the unix socket accepts connections. It fails early
// if the child exits.
func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(s.cfg.ReadyTimeout)
	for {
		c, err := net.DialTimeout("unix", s.sock, time.Second)
		if err == nil {
			c.Close()
			return s.checkLogForListenErrors()
		}
		select {
		case <-s.done:
			return fmt.Errorf("ovsdb-server for %s exited during start-up: %v%s", s.cfg.DB.Name, s.waitErr, s.outputSuffix())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ovsdb-server for %s did not open %s within %v%s", s.cfg.DB.Name, s.sock, s.cfg.ReadyTimeout, s.outputSuffix())
		}
	}
}

// checkLogForListenErrors catches a remote that failed to bind after our
// pre-check (ovsdb-server logs it and keeps running).
func (s *Server) checkLogForListenErrors() error {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "listen failed") || strings.Contains(line, "bind failed") ||
			(strings.Contains(line, "|ERR|") && strings.Contains(line, "Address already in use")) {
			return fmt.Errorf("ovsdb-server for %s could not listen: %s", s.cfg.DB.Name, line)
		}
	}
	return nil
}

func (s *Server) outputSuffix() string {
	if out := s.lastOutput(); out != "" {
		return "; last output:\n" + out
	}
	return ""
}

// lastOutput is the child's last stderr lines, or else the tail of its log.
func (s *Server) lastOutput() string {
	if out := s.stderr.String(); out != "" {
		return out
	}
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 10 {
		lines = lines[len(lines)-10:]
	}
	return strings.Join(lines, "\n")
}

// tailBuffer keeps the last n lines.
type tailBuffer struct {
	mu    sync.Mutex
	n     int
	lines []string
}

func newTailBuffer(n int) *tailBuffer { return &tailBuffer{n: n} }

func (t *tailBuffer) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > t.n {
		t.lines = t.lines[len(t.lines)-t.n:]
	}
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
