package ovs

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/govn/govn/controller/ofctrl"
	"github.com/govn/govn/controller/pinctrl/ofp"
	"github.com/govn/govn/lflow/of"
)

// bundleItem is one message of a bundle and what it came from.
type bundleItem struct {
	msg   []byte // complete OpenFlow message (groups; a flow's is encoded when sent); its xid is set when sent
	flow  *ofctrl.Flow
	cmd   uint8 // a flow's command: ofp.FlowAdd, FlowModifyStrict or FlowDeleteStrict
	group *ofctrl.Group
	add   bool  // an add or modify of a desired flow/group (not a deletion)
	err   error // set when the switch rejected it
}

// encodeFlow encodes a flow item's flow mod (cookies tagged by o).
func (it *bundleItem) encodeFlow(o ofctrl.Owner) ([]byte, error) {
	f := it.flow
	fm := &ofp.FlowMod{Command: it.cmd}
	switch it.cmd {
	case ofp.FlowDeleteStrict:
		fm.Cookie, fm.CookieMask = o.Tag, o.Mask
	case ofp.FlowAdd:
		fm.Cookie = o.Tag | f.Cookie
	}
	m, err := ofctrl.ParseMatch(f.Match)
	if err == nil && it.cmd != ofp.FlowDeleteStrict {
		fm.Actions, err = ofctrl.ParseActions(f.Actions)
	}
	var msg []byte
	if err == nil {
		fm.Table, fm.Priority, fm.Match = f.Table, f.Priority, &m
		msg, err = ofp.EncodeFlowMod(0, fm)
	}
	if err != nil && !it.add {
		// A flow we installed must encode; if it does not, the bundle
		// cannot be built. Report it as the failure.
		err = fmt.Errorf("installed flow cannot be encoded: %w", err)
	}
	return msg, err
}

// encodeDiff lists d as the messages of one bundle, in the order
// ofctrl.Diff.Bundle documents (groups added/changed, flows deleted,
// modified, added, groups deleted). Groups are encoded here (those that
// cannot be are returned as rejections); flows when the bundle is sent, so
// that a full install (~30k flows) never holds all its messages at once.
func encodeDiff(d ofctrl.Diff, o ofctrl.Owner) ([]bundleItem, []Rejected) {
	items := make([]bundleItem, 0, len(d.AddFlows)+len(d.ModFlows)+len(d.ReplFlows)+len(d.DelFlows)+
		len(d.AddGroups)+len(d.ModGroups)+len(d.DelGroups))
	var bad []Rejected
	group := func(g ofctrl.Group, cmd uint16) {
		g2 := g
		var m []byte
		og, err := ofctrl.ParseGroup(g.ID, g.Spec)
		if err == nil {
			m, err = ofp.EncodeGroupMod(0, cmd, &og)
		}
		if err != nil {
			bad = append(bad, Rejected{Group: &g2, Err: err})
			return
		}
		items = append(items, bundleItem{msg: m, group: &g2, add: true})
	}
	for _, g := range d.AddGroups {
		group(g, ofp.GroupAdd)
	}
	for _, g := range d.ModGroups {
		group(g, ofp.GroupModify)
	}
	// Items point into d's slices (not copies: a full install has ~30k).
	for i := range d.DelFlows {
		items = append(items, bundleItem{flow: &d.DelFlows[i], cmd: ofp.FlowDeleteStrict})
	}
	for i := range d.ModFlows {
		items = append(items, bundleItem{flow: &d.ModFlows[i], cmd: ofp.FlowModifyStrict, add: true})
	}
	for _, l := range [][]ofctrl.Flow{d.ReplFlows, d.AddFlows} {
		for i := range l {
			items = append(items, bundleItem{flow: &l[i], cmd: ofp.FlowAdd, add: true})
		}
	}
	for _, g := range d.DelGroups {
		g2 := g
		m, _ := ofp.EncodeGroupMod(0, ofp.GroupDelete, &of.Group{ID: g.ID})
		items = append(items, bundleItem{msg: m, group: &g2})
	}
	return items, bad
}

func (o *OpenFlow) ensureConn(ctx context.Context) error {
	if o.conn != nil && o.conn.alive() {
		return nil
	}
	o.dropConn()
	c, err := dialOF(ctx, strings.TrimPrefix(o.target, "unix:"))
	if err != nil {
		return err
	}
	o.conn = c
	o.lastFull = time.Time{} // the switch may have restarted: count everything
	o.purgeProbed = false    // or have been upgraded: probe again
	return nil
}

// probeDatapath decides whether committed changes must be followed by a
// datapath flow purge (asked again after every new connection, since
// ovs-vswitchd may have been upgraded). A failed probe is logged and leaves
// purging off.
func (o *OpenFlow) probeDatapath(ctx context.Context) {
	mgmt := strings.TrimPrefix(o.target, "unix:")
	ctl, version, dpType, err := probeMegaflowBug(ctx, mgmt)
	o.purgeCtl, o.purgeProbed = ctl, true
	if err != nil {
		o.log.Warn("cannot tell whether this ovs-vswitchd can keep stale datapath flows after flow changes; not purging them",
			zap.String("bridge_socket", mgmt), zap.String("ovs_version", version), zap.Error(err))
		return
	}
	if ctl != "" {
		o.log.Warn("ovs-vswitchd has the userspace datapath's stale-megaflow bug (fixed in OVS 2.17.8, 3.0.5, 3.1.3, 3.2.0): "+
			"every flow change is followed by revalidator/purge, so the next packet of every connection is translated again",
			zap.String("ovs_version", version), zap.String("datapath_type", dpType), zap.String("unixctl", ctl))
		return
	}
	o.log.Debug("datapath flows are revalidated by ovs-vswitchd alone",
		zap.String("ovs_version", version), zap.String("datapath_type", dpType))
}

// purgeDatapath drops ovs-vswitchd's cached datapath flows after a
// committed change, when probeDatapath found it necessary (see megaflow.go).
// A failure is logged and counted; the flows themselves are installed.
func (o *OpenFlow) purgeDatapath(ctx context.Context) {
	if !o.purgeProbed {
		o.probeDatapath(ctx)
	}
	if o.purgeCtl == "" {
		return
	}
	_, err := unixctlCall(ctx, o.purgeCtl, "revalidator/purge")
	result := "ok"
	if err != nil {
		result = "error"
		o.log.Error("purging datapath flows after a flow change failed: cached datapath flows may keep old actions",
			zap.String("unixctl", o.purgeCtl), zap.Error(err))
	}
	if o.metrics != nil {
		o.metrics.DatapathPurges.WithLabelValues(result).Inc()
	}
}

func (o *OpenFlow) dropConn() {
	if o.conn != nil {
		o.conn.close()
		o.conn = nil
	}
}

// bundleChunk is how many bytes of a bundle are written at once.
const bundleChunk = 256 << 10

// exchangeTimeout bounds one request/reply exchange with the switch.
const exchangeTimeout = 2 * time.Minute

// countOwned returns how many of our flows the switch holds in table
// (ofp.TableAll: in all), with one aggregate-statistics request filtered by
// our cookie.
func (o *OpenFlow) countOwned(ctx context.Context, table uint8) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	c := o.conn
	c.drain()
	x := c.nextXid()
	if err := c.send(ofp.AggregateRequest(x, table, o.owner.Tag, o.owner.Mask)); err != nil {
		return 0, fmt.Errorf("aggregate request: %w", err)
	}
	for {
		m, err := c.recv(ctx)
		if err != nil {
			return 0, fmt.Errorf("aggregate request: %w", err)
		}
		h, err := ofp.ParseHeader(m)
		if err != nil {
			return 0, err
		}
		if h.Xid != x {
			continue
		}
		switch h.Type {
		case ofp.TypeMultipartReply:
			n, err := ofp.DecodeAggregateReply(m)
			return int(n), err
		case ofp.TypeError:
			e, err := ofp.DecodeError(m)
			if err != nil {
				return 0, err
			}
			return 0, fmt.Errorf("aggregate request: %s", e.Name())
		}
	}
}

// sendBundle sends items as one atomic, ordered bundle: open, add every
// message, a barrier to collect the switch's verdict on each message, then
// commit (or discard, if any message was refused). failed is the first
// refused item (nil if the failure concerns the bundle as a whole).
func (o *OpenFlow) sendBundle(ctx context.Context, items []bundleItem) (failed *bundleItem, bad []Rejected, err error) {
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	c := o.conn
	c.drain()
	o.bundleID++
	id := o.bundleID
	const flags = ofp.BundleAtomic | ofp.BundleOrdered
	byXid := make(map[uint32]int, len(items))
	openX := c.nextXid()
	// The messages go out in chunks of one reused buffer (a full install
	// is ~30k messages, ~7 MB: building them all in one buffer doubled
	// the memory of the biggest sync); each message's own encoding is
	// dropped once copied.
	buf := make([]byte, 0, bundleChunk+ofp.MaxLen)
	buf = append(buf, ofp.BundleControl(openX, id, ofp.BundleOpenRequest, flags)...)
	opened := false // the open request was sent
	for i := range items {
		msg := items[i].msg
		if items[i].flow != nil {
			m, err := items[i].encodeFlow(o.owner)
			if err != nil {
				// Not sent: the bundle is discarded below. The rest is
				// still encoded, to report every such flow at once.
				f := *items[i].flow
				bad = append(bad, Rejected{Flow: &f, Err: err})
				continue
			}
			msg = m
		}
		if len(bad) > 0 {
			continue
		}
		x := c.nextXid()
		binary.BigEndian.PutUint32(msg[4:], x)
		var err error
		if buf, err = ofp.AppendBundleAdd(buf, x, id, flags, msg); err != nil {
			return nil, nil, err
		}
		items[i].msg = nil
		byXid[x] = i
		if len(buf) >= bundleChunk {
			if err := c.send(buf); err != nil {
				return nil, nil, fmt.Errorf("bundle: %w", err)
			}
			buf, opened = buf[:0], true
		}
	}
	if len(bad) > 0 {
		if opened {
			dx := c.nextXid()
			if err := c.send(ofp.BundleControl(dx, id, ofp.BundleDiscardRequest, flags)); err == nil {
				o.await(ctx, dx)
			}
		}
		return nil, bad, fmt.Errorf("bundle: %d messages cannot be encoded", len(bad))
	}
	barX := c.nextXid()
	buf = append(buf, ofp.BarrierRequest(barX)...)
	if err := c.send(buf); err != nil {
		return nil, nil, fmt.Errorf("bundle: %w", err)
	}
	// Phase 1: the switch validates each message as it is added.
	var first *bundleItem
	var bundleErr error
	for done := false; !done; {
		m, err := c.recv(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("bundle: %w", err)
		}
		h, err := ofp.ParseHeader(m)
		if err != nil {
			return nil, nil, err
		}
		switch h.Type {
		case ofp.TypeBarrierReply:
			done = h.Xid == barX
		case ofp.TypeError:
			e, err := ofp.DecodeError(m)
			if err != nil {
				return nil, nil, err
			}
			if i, ok := byXid[h.Xid]; ok {
				if first == nil {
					items[i].err = errors.New(e.Name())
					first = &items[i]
				}
			} else if bundleErr == nil {
				bundleErr = fmt.Errorf("bundle: %s", e.Name())
			}
		}
	}
	if first != nil || bundleErr != nil {
		// Discard the bundle (its messages are not applied either way).
		dx := c.nextXid()
		if err := c.send(ofp.BundleControl(dx, id, ofp.BundleDiscardRequest, flags)); err == nil {
			o.await(ctx, dx)
		}
		if first != nil {
			return first, nil, fmt.Errorf("bundle: switch refused a message: %w", first.err)
		}
		return nil, nil, bundleErr
	}
	// Phase 2: commit; a message that fails to apply is reported with
	// its own xid before the commit's error.
	cx := c.nextXid()
	if err := c.send(ofp.BundleControl(cx, id, ofp.BundleCommitRequest, flags)); err != nil {
		return nil, nil, fmt.Errorf("bundle commit: %w", err)
	}
	for {
		m, err := c.recv(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("bundle commit: %w", err)
		}
		h, err := ofp.ParseHeader(m)
		if err != nil {
			return nil, nil, err
		}
		switch h.Type {
		case ofp.TypeError:
			e, err := ofp.DecodeError(m)
			if err != nil {
				return nil, nil, err
			}
			if i, ok := byXid[h.Xid]; ok {
				if first == nil {
					items[i].err = errors.New(e.Name())
					first = &items[i]
				}
				continue
			}
			if h.Xid == cx {
				if first != nil {
					return first, nil, fmt.Errorf("bundle commit: %s: %w", e.Name(), first.err)
				}
				return nil, nil, fmt.Errorf("bundle commit: %s", e.Name())
			}
		case ofp.TypeBundleControl:
			if h.Xid != cx {
				continue
			}
			if _, typ, err := ofp.DecodeBundleControl(m); err != nil || typ != ofp.BundleCommitReply {
				return nil, nil, fmt.Errorf("bundle commit: unexpected reply type %d (%v)", typ, err)
			}
			if first != nil {
				return first, nil, fmt.Errorf("bundle committed although the switch refused a message: %w", first.err)
			}
			return nil, nil, nil
		}
	}
}

// await reads until the reply (or error) with xid x.
func (o *OpenFlow) await(ctx context.Context, x uint32) {
	for {
		m, err := o.conn.recv(ctx)
		if err != nil {
			return
		}
		if h, err := ofp.ParseHeader(m); err != nil || h.Xid == x {
			return
		}
	}
}

// reconcileText brings a switch that already holds flows of ours (a
// restarted controller) to the desired state without disturbing the flows
// that are already right. Our text and OVS's differ in spelling, so both
// sides are compared in OVS's canonical form: desired flows normalized by
// `ovs-ofctl parse-flows`, installed ones read by dump-flows. The changes go
// in one `ovs-ofctl bundle`. Afterwards the installed-state cache holds the
// desired flows in our own text, and later syncs are native.
func (o *OpenFlow) reconcileText(ctx context.Context, desired, installed *ofctrl.State, res *SyncResult) error {
	// What the native path would refuse is refused here too.
	var flows []ofctrl.Flow
	for _, f := range desired.Flows {
		if err := checkEncodable(f); err != nil {
			f := f
			res.Rejected = append(res.Rejected, Rejected{Flow: &f, Err: err})
			delete(desired.Flows, f.Key())
			continue
		}
		flows = append(flows, f)
	}
	var groups []ofctrl.Group
	for _, g := range desired.Groups {
		og, err := ofctrl.ParseGroup(g.ID, g.Spec)
		if err == nil {
			_, err = ofp.EncodeGroupMod(0, ofp.GroupAdd, &og)
		}
		if err != nil {
			g := g
			res.Rejected = append(res.Rejected, Rejected{Group: &g, Err: err})
			delete(desired.Groups, g.ID)
			continue
		}
		groups = append(groups, g)
	}
	defer func() { o.flowNorm, o.groupNorm = map[ofctrl.Flow]ofctrl.Flow{}, map[ofctrl.Group]ofctrl.Group{} }()
	nf, rej, err := o.normalizeFlows(ctx, flows)
	if err != nil {
		return err
	}
	res.Rejected = append(res.Rejected, rej...)
	ng, rej, err := o.normalizeGroups(ctx, groups)
	if err != nil {
		return err
	}
	res.Rejected = append(res.Rejected, rej...)
	nf, ng, rej = o.dropConflicts(nf, ng)
	res.Rejected = append(res.Rejected, rej...)
	ndesired, err := ofctrl.NewState(o.owner, nf, ng)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		d := ofctrl.Compute(ndesired, installed)
		if !d.Empty() {
			stderr, err := o.ofctl(ctx, d.Bundle(o.owner), "-O", "OpenFlow15", "bundle", o.target, "-")
			if err != nil {
				be, ok := ofctrl.ParseBundleError(stderr)
				if !ok || attempt >= o.maxRetries {
					return err
				}
				if be.IsGroup {
					g, found := ndesired.Groups[be.GroupID]
					if !found {
						return fmt.Errorf("%w (rejected group %d is not one we sent)", err, be.GroupID)
					}
					delete(ndesired.Groups, be.GroupID)
					res.Rejected = append(res.Rejected, Rejected{Group: &g, Err: errors.New(be.Reason)})
					continue
				}
				f, found := ndesired.Flows[be.Flow]
				if !found {
					return fmt.Errorf("%w (rejected flow %+v is not a desired flow)", err, be.Flow)
				}
				delete(ndesired.Flows, be.Flow)
				res.Rejected = append(res.Rejected, Rejected{Flow: &f, Err: errors.New(be.Reason)})
				continue
			}
			o.purgeDatapath(ctx)
		}
		res.Diff = d
		break
	}
	// The cache, in our text: the desired flows whose normalized form is
	// now installed.
	st := newFlowCache(nil)
	for _, f := range flows {
		if n, ok := o.flowNorm[f]; ok {
			if cur, ok := ndesired.Flows[n.Key()]; ok && cur == n {
				st.add(f.Key(), f)
			}
		}
	}
	for _, g := range groups {
		if n, ok := o.groupNorm[g]; ok {
			if cur, ok := ndesired.Groups[n.ID]; ok && cur == n {
				st.groups[g.ID] = g
			}
		}
	}
	o.installed = st
	return nil
}

// checkEncodable reports whether a flow can be encoded natively.
func checkEncodable(f ofctrl.Flow) error {
	m, err := ofctrl.ParseMatch(f.Match)
	if err != nil {
		return err
	}
	as, err := ofctrl.ParseActions(f.Actions)
	if err != nil {
		return err
	}
	_, err = ofp.EncodeFlowMod(0, &ofp.FlowMod{Table: f.Table, Priority: f.Priority, Match: &m, Actions: as})
	return err
}
