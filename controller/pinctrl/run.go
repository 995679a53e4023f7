package pinctrl

import (
	"context"
	"errors"
	"os/exec"
	"sync"

	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/govn/govn/controller/pinctrl/ofp"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/lflow/action"
	"github.com/govn/govn/sbdb"
)

// Config configures Run.
type Config struct {
	// MgmtSock is br-int's OpenFlow management socket ($OVS_RUNDIR/br-int.mgmt).
	MgmtSock string
	// SB is the southbound client (monitoring at least Datapath_Binding,
	// Port_Binding and MAC_Binding).
	SB *ovsdbclient.Client
	// Resolver maps datapath/port tunnel keys to SB names; nil = SBResolver(SB).
	Resolver Resolver
	// Log defaults to zap.NewNop().
	Log *zap.Logger
	// Metrics, if set, receives the govn_pinctrl_* counters.
	Metrics prometheus.Registerer
	// FlushInterval batches learned MAC bindings into one SB transaction;
	// default 100ms.
	FlushInterval time.Duration
	// Ofctl is the ovs-ofctl binary that sends generated packets (arp{},
	// icmp4{}, icmp4_error{}) back into the pipeline; default "ovs-ofctl".
	Ofctl string
	// MaxBackoff caps the reconnect backoff (default 8s; starts at 100ms).
	MaxBackoff time.Duration
}

type metrics struct {
	packetIns  *prometheus.CounterVec
	errors     *prometheus.CounterVec
	bindings   prometheus.Counter
	aclLog     *prometheus.CounterVec
	connects   prometheus.Counter
	packetOuts *prometheus.CounterVec
	fdb        prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		packetIns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "govn_pinctrl_packet_ins_total",
			Help: "Packet-ins received from br-int, by controller opcode."}, []string{"opcode"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "govn_pinctrl_errors_total",
			Help: "Packet-ins that could not be handled, by opcode."}, []string{"opcode"}),
		bindings: prometheus.NewCounter(prometheus.CounterOpts{Name: "govn_pinctrl_mac_bindings_written_total",
			Help: "MAC_Binding rows inserted or updated in the southbound database."}),
		aclLog: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "govn_pinctrl_acl_log_total",
			Help: "ACL log() hits, by verdict."}, []string{"verdict"}),
		connects: prometheus.NewCounter(prometheus.CounterOpts{Name: "govn_pinctrl_connects_total",
			Help: "OpenFlow connections established to br-int's management socket."}),
		fdb: prometheus.NewCounter(prometheus.CounterOpts{Name: "govn_pinctrl_fdb_written_total",
			Help: "FDB rows inserted or updated in the southbound database (put_fdb)."}),
		packetOuts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "govn_pinctrl_packet_outs_total",
			Help: "Generated packets (arp{}, icmp4{}, icmp4_error{}) sent back into the pipeline, by opcode."}, []string{"opcode"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.packetIns, m.errors, m.bindings, m.aclLog, m.connects, m.packetOuts, m.fdb} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					panic(err) // a programming error: two different collectors with one name
				}
			}
		}
	}
	return m
}

// Run handles packet-ins until ctx ends, reconnecting with exponential
// backoff when the OpenFlow connection fails. It returns ctx's error.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	if cfg.Resolver == nil {
		if cfg.SB == nil {
			return errors.New("pinctrl: Config.SB is required")
		}
		cfg.Resolver = SBResolver(cfg.SB)
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 100 * time.Millisecond
	}
	if cfg.Ofctl == "" {
		cfg.Ofctl = "ovs-ofctl"
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 8 * time.Second
	}
	h := &handler{cfg: cfg, m: newMetrics(cfg.Metrics), outs: make(chan struct{}, 4)}
	defer h.wg.Wait()
	const initialBackoff = 100 * time.Millisecond
	backoff := initialBackoff
	for {
		h.connected = false
		err := h.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if h.connected {
			backoff = initialBackoff // the connection worked: retry soon
		}
		cfg.Log.Warn("pinctrl: openflow connection failed; retrying", zap.String("socket", cfg.MgmtSock),
			zap.Duration("backoff", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, cfg.MaxBackoff)
	}
}

type handler struct {
	cfg     Config
	m       *metrics
	pending []Learned
	fdb     []FDBEntry
	conn    *Conn
	// connected is set once the current session's handshake succeeded.
	connected bool
	ctx       context.Context
	outs      chan struct{} // limits concurrent ovs-ofctl packet-outs
	wg        sync.WaitGroup
}

// session runs one connection: returns when it fails or ctx ends.
func (h *handler) session(ctx context.Context) error {
	c, err := Dial(ctx, h.cfg.MgmtSock)
	if err != nil {
		return err
	}
	defer c.Close()
	h.ctx, h.conn, h.connected = ctx, c, true
	h.m.connects.Inc()
	h.cfg.Log.Info("pinctrl: connected", zap.String("socket", h.cfg.MgmtSock))
	msgs := make(chan []byte, 64)
	rerr := make(chan error, 1)
	go func() {
		for {
			m, err := c.Recv()
			if err != nil {
				rerr <- err
				close(msgs)
				return
			}
			msgs <- m
		}
	}()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	tick := time.NewTicker(h.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				h.flush(ctx)
				return <-rerr
			}
			h.message(m)
		case <-tick.C:
			h.flush(ctx)
		case <-ctx.Done():
			h.flush(context.Background())
			return ctx.Err()
		}
	}
}

// message handles one OpenFlow message from the switch.
func (h *handler) message(m []byte) {
	hd, err := ofp.ParseHeader(m)
	if err != nil {
		h.cfg.Log.Warn("pinctrl: bad openflow message", zap.Error(err))
		return
	}
	switch hd.Type {
	case ofp.TypeError:
		e, err := ofp.DecodeError(m)
		if err == nil {
			err = e
		}
		h.cfg.Log.Warn("pinctrl: switch reported an error", zap.Uint32("xid", hd.Xid), zap.Error(err))
		return
	case ofp.TypeExperimenter:
	default:
		return
	}
	if id, sub, err := ofp.Experimenter(m); err != nil || id != ofp.NiciraID || sub != ofp.NXTPacketIn2 {
		return
	}
	p, err := ofp.DecodePacketIn2(m)
	if err != nil {
		h.m.errors.WithLabelValues("decode").Inc()
		h.cfg.Log.Warn("pinctrl: bad packet-in", zap.Error(err))
		return
	}
	ud, err := Decode(p)
	if err != nil {
		h.m.errors.WithLabelValues("userdata").Inc()
		h.cfg.Log.Warn("pinctrl: bad controller userdata", zap.Binary("userdata", p.Userdata), zap.Error(err))
		return
	}
	op := ud.Op.String()
	h.m.packetIns.WithLabelValues(op).Inc()
	switch ud.Op {
	case action.OpPutARP:
		l, err := HandlePutARP(p)
		if err != nil {
			h.m.errors.WithLabelValues(op).Inc()
			h.cfg.Log.Warn("pinctrl: put_arp", zap.Error(err))
			return
		}
		h.cfg.Log.Debug("pinctrl: learned", zap.Stringer("binding", l))
		h.pending = append(h.pending, l)
	case action.OpPutND:
		l, err := HandlePutND(p)
		if err != nil {
			h.m.errors.WithLabelValues(op).Inc()
			h.cfg.Log.Warn("pinctrl: put_nd", zap.Error(err))
			return
		}
		h.cfg.Log.Debug("pinctrl: learned", zap.Stringer("binding", l))
		h.pending = append(h.pending, l)
	case action.OpPutFDB:
		e, err := HandlePutFDB(p)
		if err != nil {
			h.m.errors.WithLabelValues(op).Inc()
			h.cfg.Log.Warn("pinctrl: put_fdb", zap.Error(err))
			return
		}
		h.fdb = append(h.fdb, e)
	case action.OpPutDHCPOpts:
		if err := h.putDHCPOpts(p, ud); err != nil {
			h.m.errors.WithLabelValues(op).Inc()
			h.cfg.Log.Warn("pinctrl: put_dhcp_opts", zap.Error(err))
		}
	case action.OpLog:
		e := HandleLog(ud, p.Packet)
		h.m.aclLog.WithLabelValues(e.Verdict).Inc()
		h.cfg.Log.Info("acl log", zap.String("name", e.Name), zap.String("verdict", e.Verdict),
			zap.String("severity", e.Severity), zap.String("packet", e.Packet))
	case action.OpARP, action.OpICMP4, action.OpICMP4Error, action.OpReject, action.OpTCPReset, action.OpNDNA:
		var pkt []byte
		switch ud.Op {
		case action.OpARP:
			pkt, err = BuildARP(p.Packet)
		case action.OpNDNA:
			pkt, err = BuildNDNA(p.Packet)
		case action.OpReject:
			pkt, err = BuildReject(p.Packet)
		case action.OpTCPReset:
			pkt, err = BuildTCPReset(p.Packet, false)
		default:
			pkt, err = BuildICMP4(p.Packet, ud.Op == action.OpICMP4Error)
		}
		if err != nil {
			h.m.errors.WithLabelValues(op).Inc()
			h.cfg.Log.Warn("pinctrl: building packet", zap.String("opcode", op), zap.Error(err))
			return
		}
		if acts, ok := PacketOutActions(p, ud.Actions); ok {
			m, err := ofp.PacketOut(h.conn.NextXid(), []ofp.Field{ofp.InPort(inPortOf(p))}, acts, pkt)
			if err == nil {
				err = h.conn.Send(m)
			}
			if err != nil {
				h.m.errors.WithLabelValues(op).Inc()
				h.cfg.Log.Warn("pinctrl: packet-out", zap.String("opcode", op), zap.Error(err))
				return
			}
			h.m.packetOuts.WithLabelValues(op).Inc()
			return
		}
		spec, err := PacketOutSpec(p, ud.Actions, pkt)
		if errors.Is(err, errNoActions) {
			return
		}
		if err != nil {
			h.m.errors.WithLabelValues(op).Inc()
			h.cfg.Log.Warn("pinctrl: packet-out", zap.String("opcode", op), zap.Error(err))
			return
		}
		select {
		case h.outs <- struct{}{}:
		default:
			h.m.errors.WithLabelValues("packet_out_busy").Inc()
			h.cfg.Log.Debug("pinctrl: dropping generated packet: packet-outs busy", zap.String("opcode", op))
			return
		}
		h.wg.Add(1)
		go func(ctx context.Context) {
			defer func() { <-h.outs; h.wg.Done() }()
			h.packetOut(ctx, op, spec)
		}(h.ctx)
	default:
		h.m.errors.WithLabelValues(op).Inc()
		h.cfg.Log.Debug("pinctrl: controller opcode not handled by this chassis", zap.String("opcode", op))
	}
}

// putDHCPOpts answers a paused put_dhcp_opts: the reply (or the unchanged
// packet if it is not a DHCP request) is resumed with the result bit set
// (or cleared). A packet-in that cannot be answered is still resumed (bit
// 0) so the pipeline never stalls on it.
func (h *handler) putDHCPOpts(p *ofp.PacketIn, ud action.UserData) error {
	if p.Continuation == nil {
		return errors.New("packet-in has no continuation (action not paused)")
	}
	reg, bit, err := ParseResultBit(ud.Result)
	if err != nil {
		return err
	}
	pkt, ok, berr := BuildDHCPReply(p.Packet, ud.DHCPOptions)
	if berr != nil || !ok {
		pkt, ok = p.Packet, false
	}
	md, err := p.SetRegBit(reg, bit, ok)
	if err != nil {
		return err
	}
	m, err := ofp.ResumeWith(h.conn.NextXid(), p, pkt, md)
	if err != nil {
		return err
	}
	if err := h.conn.Send(m); err != nil {
		return err
	}
	if ok {
		h.m.packetOuts.WithLabelValues("put_dhcp_opts").Inc()
	}
	return berr
}

// packetOut runs ovs-ofctl packet-out with spec (see PacketOutSpec).
func (h *handler) packetOut(sctx context.Context, op, spec string) {
	ctx, cancel := context.WithTimeout(sctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.cfg.Ofctl, "-O", "OpenFlow15", "packet-out", "unix:"+h.cfg.MgmtSock, spec)
	if out, err := cmd.CombinedOutput(); err != nil {
		if sctx.Err() != nil {
			return // shutting down
		}
		h.m.errors.WithLabelValues(op).Inc()
		h.cfg.Log.Warn("pinctrl: packet-out failed", zap.String("opcode", op), zap.String("spec", spec),
			zap.ByteString("output", out), zap.Error(err))
		return
	}
	h.m.packetOuts.WithLabelValues(op).Inc()
}

// flush writes the pending learned bindings in one SB transaction.
func (h *handler) flush(ctx context.Context) {
	if len(h.pending) == 0 && len(h.fdb) == 0 {
		return
	}
	learned, fdb := h.pending, h.fdb
	h.pending, h.fdb = nil, nil
	ops, n, err := MACBindingOps(h.cfg.SB, h.cfg.Resolver, learned, time.Now())
	if err != nil {
		h.m.errors.WithLabelValues("put_arp").Inc()
		h.cfg.Log.Warn("pinctrl: MAC bindings", zap.Error(err))
	}
	fops, fn, err := FDBOps(h.cfg.SB, fdb)
	if err != nil {
		h.m.errors.WithLabelValues("put_fdb").Inc()
		h.cfg.Log.Warn("pinctrl: FDB", zap.Error(err))
	}
	ops = append(ops, fops...)
	if len(ops) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := h.cfg.SB.Transact(ctx, ops...); err != nil {
		// Keep them for the next flush: the SB may be reconnecting.
		h.pending = append(learned, h.pending...)
		h.fdb = append(fdb, h.fdb...)
		h.m.errors.WithLabelValues("sb").Inc()
		h.cfg.Log.Warn("pinctrl: writing MAC bindings and FDB entries", zap.Int("mac_bindings", n), zap.Int("fdb", fn), zap.Error(err))
		return
	}
	h.m.bindings.Add(float64(n))
	h.m.fdb.Add(float64(fn))
	h.cfg.Log.Info("pinctrl: wrote MAC bindings and FDB entries", zap.Int("mac_bindings", n), zap.Int("fdb", fn))
}

// MACBindingOps returns the operations that store learned in MAC_Binding
// (insert, or update the MAC/datapath/timestamp of an existing row), the
// number of rows they write, and the bindings that did not resolve (joined).
func MACBindingOps(sb *ovsdbclient.Client, r Resolver, learned []Learned, now time.Time) ([]ovsdb.Operation, int, error) {
	existing := func(k BindingKey) (Existing, bool) {
		row, err := ovsdbclient.Lookup(sb, &sbdb.MACBinding{LogicalPort: k.LogicalPort, IP: k.IP})
		if err != nil {
			return Existing{}, false
		}
		return Existing{UUID: row.UUID, Datapath: row.Datapath, MAC: row.MAC}, true
	}
	insert, update, errs := Plan(learned, r, existing)
	ts := int(now.UnixMilli())
	var ops []ovsdb.Operation
	var err error
	for _, b := range insert {
		row := &sbdb.MACBinding{Datapath: b.DatapathUUID, LogicalPort: b.LogicalPort, IP: b.IP, MAC: b.MAC, Timestamp: ts}
		if ops, err = ovsdbclient.CreateOps(sb, ops, row); err != nil {
			return nil, 0, err
		}
	}
	for uuid, b := range update {
		row := &sbdb.MACBinding{UUID: uuid, Datapath: b.DatapathUUID, LogicalPort: b.LogicalPort, IP: b.IP, MAC: b.MAC, Timestamp: ts}
		if ops, err = ovsdbclient.UpdateOps(sb, ops, row, &row.Datapath, &row.MAC, &row.Timestamp); err != nil {
			return nil, 0, err
		}
	}
	return ops, len(insert) + len(update), errors.Join(errs...)
}

// FDBOps returns the operations that store learned FDB entries (insert, or
// update the port of an existing (mac, dp_key) row) and the number of rows.
func FDBOps(sb *ovsdbclient.Client, learned []FDBEntry) ([]ovsdb.Operation, int, error) {
	if len(learned) == 0 {
		return nil, 0, nil
	}
	existing := func(mac string, dp uint32) (string, uint32, bool) {
		row, err := ovsdbclient.Lookup(sb, &sbdb.FDB{MAC: mac, DpKey: int(dp)})
		if err != nil {
			return "", 0, false
		}
		return row.UUID, uint32(row.PortKey), true
	}
	insert, update := PlanFDB(learned, existing)
	var ops []ovsdb.Operation
	var err error
	for _, e := range insert {
		if ops, err = ovsdbclient.CreateOps(sb, ops, &sbdb.FDB{MAC: e.MAC.String(), DpKey: int(e.Datapath), PortKey: int(e.PortKey)}); err != nil {
			return nil, 0, err
		}
	}
	for uuid, port := range update {
		row := &sbdb.FDB{UUID: uuid, PortKey: int(port)}
		if ops, err = ovsdbclient.UpdateOps(sb, ops, row, &row.PortKey); err != nil {
			return nil, 0, err
		}
	}
	return ops, len(insert) + len(update), nil
}

// SBResolver resolves keys through the SB client's cache (Datapath_Binding
// by tunnel_key, Port_Binding by datapath + tunnel_key).
func SBResolver(sb *ovsdbclient.Client) Resolver { return sbResolver{sb} }

type sbResolver struct{ sb *ovsdbclient.Client }

func (r sbResolver) Datapath(dp uint32) (string, bool) {
	row, err := ovsdbclient.Lookup(r.sb, &sbdb.DatapathBinding{TunnelKey: int(dp)})
	if err != nil {
		return "", false
	}
	return row.UUID, true
}

func (r sbResolver) PortName(dp, port uint32) (string, bool) {
	d, ok := r.Datapath(dp)
	if !ok {
		return "", false
	}
	row, err := ovsdbclient.Lookup(r.sb, &sbdb.PortBinding{Datapath: d, TunnelKey: int(port)})
	if err != nil {
		return "", false
	}
	return row.LogicalPort, true
}
