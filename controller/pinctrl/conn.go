package pinctrl

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/govn/govn/controller/pinctrl/ofp"
)

// Conn is an OpenFlow 1.5 connection to a bridge's management socket
// ($OVS_RUNDIR/<bridge>.mgmt), set up to receive NXT_PACKET_IN2.
//
// Connections to the management socket are OVS "service" connections. With
// OpenFlow 1.4 and later, OVS sends service connections the same
// asynchronous messages as controllers, including packet-ins from
// controller() actions (verified against ovs-vswitchd 3.1 by
// TestPacketInFromOVS), so no Controller row or role request is needed —
// the same arrangement ovn-controller uses.
type Conn struct {
	c   net.Conn
	xid atomic.Uint32
	wmu sync.Mutex
}

// Dial connects to the unix socket sock, exchanges hellos, selects the
// NXT_PACKET_IN2 format and waits for a barrier so that errors surface here.
func Dial(ctx context.Context, sock string) (*Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return nil, err
	}
	c := &Conn{c: nc}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	} else {
		_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	}
	if err := c.handshake(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("openflow handshake on %s: %w", sock, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return c, nil
}

func (c *Conn) handshake() error {
	if err := c.Send(ofp.Hello(c.NextXid())); err != nil {
		return err
	}
	m, err := ofp.ReadMessage(c.c)
	if err != nil {
		return err
	}
	if m[1] != ofp.TypeHello {
		return fmt.Errorf("expected hello, got message type %d", m[1])
	}
	if m[0] < ofp.Version {
		return fmt.Errorf("switch speaks OpenFlow wire version %d, need %d (OpenFlow 1.5)", m[0], ofp.Version)
	}
	if err := c.Send(ofp.SetPacketInFormat(c.NextXid(), ofp.NXPIFNXT2)); err != nil {
		return err
	}
	// Packet-ins of every reason (table miss .. packet-out): controller()
	// actions run from a packet-out report OFPR_PACKET_OUT.
	if err := c.Send(ofp.SetAsyncPacketIn(c.NextXid(), 0x3f)); err != nil {
		return err
	}
	bx := c.NextXid()
	if err := c.Send(ofp.BarrierRequest(bx)); err != nil {
		return err
	}
	return ofp.AwaitBarrier(c.c, bx)
}

// NextXid returns a fresh transaction id.
func (c *Conn) NextXid() uint32 { return c.xid.Add(1) }

// Send writes one message. It is safe for concurrent use.
func (c *Conn) Send(m []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := c.c.Write(m)
	return err
}

// Recv returns the next message other than an echo request (which it
// answers).
func (c *Conn) Recv() ([]byte, error) {
	for {
		m, err := ofp.ReadMessage(c.c)
		if err != nil {
			return nil, err
		}
		if m[1] == ofp.TypeEchoRequest {
			h, err := ofp.ParseHeader(m)
			if err != nil {
				return nil, err
			}
			if err := c.Send(ofp.EchoReply(h.Xid, m[ofp.HeaderLen:])); err != nil {
				return nil, err
			}
			continue
		}
		return m, nil
	}
}

// SetReadDeadline sets the deadline of Recv.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.c.SetReadDeadline(t) }

// Close closes the connection.
func (c *Conn) Close() error { return c.c.Close() }
