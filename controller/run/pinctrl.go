package run

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"go.uber.org/zap"

	"github.com/govn/govn/controller/pinctrl"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/sbdb"
)

// keyResolver answers pinctrl's key → name questions from the local
// datapaths of the last reconcile (a packet-in only comes from a datapath
// whose flows this controller installed).
type keyResolver struct {
	v atomic.Pointer[keyMaps]
}

type keyMaps struct {
	dps   map[uint32]string    // datapath tunnel key → Datapath_Binding UUID
	ports map[[2]uint32]string // (datapath key, port key) → logical port
}

func (r *keyResolver) Datapath(dp uint32) (string, bool) {
	m := r.v.Load()
	if m == nil {
		return "", false
	}
	u, ok := m.dps[dp]
	return u, ok
}

func (r *keyResolver) PortName(dp, port uint32) (string, bool) {
	m := r.v.Load()
	if m == nil {
		return "", false
	}
	n, ok := m.ports[[2]uint32{dp, port}]
	return n, ok
}

// pinctrlRunner is the packet-in handler's goroutine and what it was
// started with.
type pinctrlRunner struct {
	sock    string
	remotes []string
	cancel  context.CancelFunc
	done    chan struct{}
}

// ensurePinctrl (re)starts the packet-in handler for the bridge's
// management socket and the southbound remotes. Its failures are logged
// and retried inside its goroutine; they never reach the controller.
func (c *Controller) ensurePinctrl(ctx context.Context, sock string, remotes []string) {
	if p := c.pin; p != nil {
		if p.sock == sock && slices.Equal(p.remotes, remotes) {
			return
		}
		c.stopPinctrl()
	}
	pctx, cancel := context.WithCancel(ctx)
	p := &pinctrlRunner{sock: sock, remotes: slices.Clone(remotes), cancel: cancel, done: make(chan struct{})}
	c.pin = p
	log := c.log.Named("pinctrl")
	go func() {
		defer close(p.done)
		backoff := 100 * time.Millisecond
		for pctx.Err() == nil {
			err := c.runPinctrl(pctx, p, log)
			if pctx.Err() != nil {
				return
			}
			log.Warn("packet-in handler stopped; restarting", zap.Error(err), zap.Duration("in", backoff))
			select {
			case <-pctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 5*time.Second)
		}
	}()
}

// runPinctrl runs one pinctrl session with its own southbound client
// (MAC_Binding and FDB rows, for insert-or-update). A panic is turned into
// an error so that the controller keeps running.
func (c *Controller) runPinctrl(ctx context.Context, p *pinctrlRunner, log *zap.Logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	sb, err := sbdb.NewClient(ctx, p.remotes, ovsdbclient.WithLogger(log.Named("sb")),
		ovsdbclient.WithMonitor(client.WithTable(&sbdb.MACBinding{}), client.WithTable(&sbdb.FDB{})))
	if err != nil {
		return fmt.Errorf("southbound %v: %w", p.remotes, err)
	}
	defer sb.Close()
	return pinctrl.Run(ctx, pinctrl.Config{MgmtSock: p.sock, SB: sb, Resolver: &c.keys, Log: log, Metrics: c.m.reg})
}

// stopPinctrl stops the packet-in handler and waits for it.
func (c *Controller) stopPinctrl() {
	if c.pin == nil {
		return
	}
	c.pin.cancel()
	<-c.pin.done
	c.pin = nil
}
