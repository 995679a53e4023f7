package ovs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/govn/govn/controller/pinctrl/ofp"
)

// ofConn is an OpenFlow 1.5 connection to a bridge's management socket used
// to install flows. A reader goroutine answers echo requests and hands every
// other message to the caller through in; asynchronous messages are turned
// off at the handshake, so what arrives is replies to our requests.
type ofConn struct {
	nc   net.Conn
	wmu  sync.Mutex
	xid  uint32 // guarded by the OpenFlow mutex (one user at a time)
	in   chan []byte
	done chan struct{}
	quit chan struct{} // closed by close
	err  error         // set before done is closed
}

func dialOF(ctx context.Context, sock string) (*ofConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, err
	}
	c := &ofConn{nc: nc, in: make(chan []byte, 4096), done: make(chan struct{}), quit: make(chan struct{})}
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := c.handshake(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("openflow handshake on %s: %w", sock, err)
	}
	_ = nc.SetDeadline(time.Time{})
	go c.read()
	return c, nil
}

func (c *ofConn) nextXid() uint32 {
	c.xid++
	if c.xid == 0 {
		c.xid = 1
	}
	return c.xid
}

func (c *ofConn) handshake() error {
	if _, err := c.nc.Write(ofp.Hello(c.nextXid())); err != nil {
		return err
	}
	m, err := ofp.ReadMessage(c.nc)
	if err != nil {
		return err
	}
	if m[1] != ofp.TypeHello {
		return fmt.Errorf("expected hello, got message type %d", m[1])
	}
	if m[0] < ofp.Version {
		return fmt.Errorf("switch speaks OpenFlow wire version %d, need %d (OpenFlow 1.5)", m[0], ofp.Version)
	}
	// No asynchronous messages (packet-ins, port status, flow removed…):
	// this connection only installs flows.
	bx := c.nextXid()
	msg := append(ofp.SetAsyncNone(c.nextXid()), ofp.BarrierRequest(bx)...)
	if _, err := c.nc.Write(msg); err != nil {
		return err
	}
	return ofp.AwaitBarrier(c.nc, bx)
}

func (c *ofConn) read() {
	defer close(c.done)
	for {
		m, err := ofp.ReadMessage(c.nc)
		if err != nil {
			c.err = err
			return
		}
		if m[1] == ofp.TypeEchoRequest {
			h, err := ofp.ParseHeader(m)
			if err == nil {
				err = c.send(ofp.EchoReply(h.Xid, m[ofp.HeaderLen:]))
			}
			if err != nil {
				c.err = err
				return
			}
			continue
		}
		// Asynchronous messages are off, so what arrives is replies to
		// our requests: never drop one (a lost barrier reply would stall
		// a sync until its timeout).
		select {
		case c.in <- m:
		case <-c.quit:
			c.err = errors.New("connection closed")
			return
		}
	}
}

// alive reports whether the connection is still up.
func (c *ofConn) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

func (c *ofConn) send(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.nc.Write(b)
	return err
}

// drain discards messages left over from an earlier exchange.
func (c *ofConn) drain() {
	for {
		select {
		case <-c.in:
		default:
			return
		}
	}
}

// recv returns the next message.
func (c *ofConn) recv(ctx context.Context) ([]byte, error) {
	select {
	case m := <-c.in:
		return m, nil
	case <-c.done:
		// Deliver what was queued before the connection ended.
		select {
		case m := <-c.in:
			return m, nil
		default:
		}
		return nil, fmt.Errorf("openflow connection: %w", c.err)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *ofConn) close() {
	close(c.quit)
	c.nc.Close()
}
