package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// Server is a TCP or UDP server inside a network namespace that answers
// every TCP connection and every UDP datagram with one line "NAME PEER\n":
// its name and the client address it saw. A client thus learns which
// backend served it (load balancing) and how its source address was
// translated (SNAT). It runs inside the test process: its socket is created
// in the namespace (a thread that entered it), which is all a socket needs.
type Server struct {
	Name  string // what it answers
	Netns string
	Proto string // "tcp" or "udp"
	Port  int

	mu     sync.Mutex
	conns  []Conn
	closer io.Closer
	done   chan struct{}
	once   sync.Once
}

// Conn is one connection (TCP) or datagram (UDP) a Server answered.
type Conn struct {
	Peer  netip.AddrPort // the client, as the server saw it
	Local netip.AddrPort // the server address the client reached
}

// Serve starts a Server named name on all addresses of netns (a namespace
// of this topology: a pod's or an external host's). It is closed at Close.
func (t *Topology) Serve(netns, name, proto string, port int) (*Server, error) {
	if strings.ContainsAny(name, " \n") || name == "" {
		return nil, fmt.Errorf("serve: bad name %q", name)
	}
	s := &Server{Name: name, Netns: netns, Proto: proto, Port: port, done: make(chan struct{})}
	addr := ":" + strconv.Itoa(port)
	switch proto {
	case "tcp":
		var l net.Listener
		err := inNetns(netns, func() (err error) { l, err = net.Listen("tcp4", addr); return err })
		if err != nil {
			return nil, fmt.Errorf("serve tcp/%d in %s: %w", port, netns, err)
		}
		s.closer = l
		go s.acceptLoop(l)
	case "udp":
		var c net.PacketConn
		err := inNetns(netns, func() (err error) { c, err = net.ListenPacket("udp4", addr); return err })
		if err != nil {
			return nil, fmt.Errorf("serve udp/%d in %s: %w", port, netns, err)
		}
		s.closer = c
		go s.udpLoop(c.(*net.UDPConn))
	default:
		return nil, fmt.Errorf("serve: protocol %q: want tcp or udp", proto)
	}
	t.mu.Lock()
	t.servers = append(t.servers, s)
	t.mu.Unlock()
	return s, nil
}

// Serve starts a Server in the pod that answers with the pod's name.
func (p *Pod) Serve(proto string, port int) (*Server, error) {
	return p.Chassis.topo.Serve(p.Netns, p.Name, proto, port)
}

func (s *Server) record(peer, local netip.AddrPort) {
	s.mu.Lock()
	s.conns = append(s.conns, Conn{Peer: peer, Local: local})
	s.mu.Unlock()
}

func (s *Server) answer(peer netip.AddrPort) []byte {
	return []byte(s.Name + " " + peer.Addr().Unmap().String() + "\n")
}

func (s *Server) acceptLoop(l net.Listener) {
	defer close(s.done)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			peer := c.RemoteAddr().(*net.TCPAddr).AddrPort()
			local := c.LocalAddr().(*net.TCPAddr).AddrPort()
			s.record(peer, local)
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := c.Write(s.answer(peer)); err != nil {
				return
			}
			// Read until the client closes its side (or the deadline):
			// closing with unread data would reset the connection.
			_, _ = io.Copy(io.Discard, c)
		}()
	}
}

func (s *Server) udpLoop(c *net.UDPConn) {
	defer close(s.done)
	// The socket listens on every address: ask for each datagram's
	// destination, to record it and to answer from it.
	pc := ipv4.NewPacketConn(c)
	dstKnown := pc.SetControlMessage(ipv4.FlagDst, true) == nil
	buf := make([]byte, 2048)
	for {
		_, cm, src, err := pc.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ICMP errors reported on the socket
		}
		ua, ok := src.(*net.UDPAddr)
		if !ok {
			continue
		}
		peer := ua.AddrPort()
		var local netip.AddrPort
		var reply *ipv4.ControlMessage
		if dstKnown && cm != nil {
			if a, ok := netip.AddrFromSlice(cm.Dst.To4()); ok {
				local = netip.AddrPortFrom(a, uint16(s.Port))
				reply = &ipv4.ControlMessage{Src: cm.Dst}
			}
		}
		s.record(peer, local)
		_, _ = pc.WriteTo(s.answer(peer), reply, src)
	}
}

// Conns returns what the server answered so far.
func (s *Server) Conns() []Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Conn(nil), s.conns...)
}

// Close stops the server (idempotent) and waits for its handlers.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		err = s.closer.Close()
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			err = fmt.Errorf("server %s %s/%d in %s: handlers did not finish", s.Name, s.Proto, s.Port, s.Netns)
		}
	})
	return err
}

// inNetns runs f on an OS thread that entered network namespace netns
// (/run/netns/<netns>), so the sockets f creates belong to it. The thread
// is never reused: the goroutine ends locked, and the Go runtime then
// terminates the thread instead of returning it to the pool.
func inNetns(netns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("namespace %s: %w", netns, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", netns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// Reply is a Server's answer.
type Reply struct {
	From string     // the server's name
	Peer netip.Addr // the client address the server saw
}

// ErrRefused is returned (wrapped) by Request when a TCP connection was
// actively refused (RST or ICMP unreachable). A UDP request that is refused
// just gets no answer (nc does not tell).
var ErrRefused = errors.New("connection refused")

// Request asks a Server at dst:port (through whatever translation lies
// between) from the pod, with the real nc: TCP connects, reads the answer
// and closes; UDP sends one datagram and waits up to timeout for the answer.
// The error wraps ErrRefused when a TCP connection was refused.
func (p *Pod) Request(proto string, dst netip.Addr, port int, timeout time.Duration) (Reply, error) {
	return request(p.Netns, p.Name, proto, dst, port, timeout)
}

func request(netns, name, proto string, dst netip.Addr, port int, timeout time.Duration) (Reply, error) {
	secs := strconv.Itoa(max(1, int((timeout+time.Second-1)/time.Second)))
	args := []string{"netns", "exec", netns, "nc", "-w", secs}
	var stdin string
	switch proto {
	case "tcp":
		// -v: say why a connection failed; -N: close our side at EOF of
		// (empty) stdin.
		args = append(args, "-v", "-N")
	case "udp":
		// No -v: with it nc probes the port with extra datagrams first.
		args = append(args, "-u")
		stdin = "?\n"
	default:
		return Reply{}, fmt.Errorf("request: protocol %q: want tcp or udp", proto)
	}
	args = append(args, dst.String(), strconv.Itoa(port))
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("ip", args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	what := fmt.Sprintf("%s %s -> %s:%d", proto, name, dst, port)
	line, _, _ := strings.Cut(stdout.String(), "\n")
	if f := strings.Fields(line); len(f) == 2 {
		if peer, err := netip.ParseAddr(f[1]); err == nil {
			return Reply{From: f[0], Peer: peer}, nil
		}
	}
	msg := strings.TrimSpace(stderr.String())
	if strings.Contains(msg, "refused") {
		return Reply{}, fmt.Errorf("%s: %w (%s)", what, ErrRefused, msg)
	}
	if runErr != nil {
		return Reply{}, fmt.Errorf("%s: %v: %s", what, runErr, msg)
	}
	return Reply{}, fmt.Errorf("%s: no answer (stdout %q, stderr %q)", what, stdout.String(), msg)
}

// String formats a reply as the server wrote it.
func (r Reply) String() string { return r.From + " " + r.Peer.String() }
