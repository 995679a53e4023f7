package server

import (
	"context"
	"fmt"
	"sync"

	"github.com/ovn-kubernetes/libovsdb/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/nbdb"
)

type watchService struct {
	govnv1.UnimplementedWatchServiceServer
	s *Server
}

// kinds maps NB tables to Watch kinds.
var kinds = map[string]string{
	nbdb.LogicalSwitchTable:            "logical_switch",
	nbdb.LogicalSwitchPortTable:        "logical_switch_port",
	nbdb.ACLTable:                      "acl",
	nbdb.AddressSetTable:               "address_set",
	nbdb.PortGroupTable:                "port_group",
	nbdb.LogicalRouterTable:            "logical_router",
	nbdb.LogicalRouterPortTable:        "logical_router_port",
	nbdb.LogicalRouterStaticRouteTable: "static_route",
	nbdb.LoadBalancerTable:             "load_balancer",
	nbdb.NATTable:                      "nat",
	nbdb.DHCPOptionsTable:              "dhcp_options",
}

// watcher is one Watch stream's subscription.
type watcher struct {
	kinds map[string]bool // empty: all
	ch    chan *govnv1.WatchEvent
	lost  chan struct{} // closed when the buffer overflowed
	once  sync.Once
}

func (w *watcher) wants(kind string) bool { return len(w.kinds) == 0 || w.kinds[kind] }

// hub fans cache events out to watchers. Events arrive in the order the
// database sent them; each watcher has a bounded buffer, and a watcher that
// falls behind is ended (its client resumes with initial=true).
type hub struct {
	s        *Server
	buf      int
	mu       sync.Mutex
	watchers map[*watcher]struct{}
}

func newHub(s *Server, buf int) *hub {
	return &hub{s: s, buf: buf, watchers: map[*watcher]struct{}{}}
}

func (h *hub) add(kindsList []string) *watcher {
	w := &watcher{kinds: map[string]bool{}, ch: make(chan *govnv1.WatchEvent, h.buf), lost: make(chan struct{})}
	for _, k := range kindsList {
		w.kinds[k] = true
	}
	h.mu.Lock()
	h.watchers[w] = struct{}{}
	h.mu.Unlock()
	return w
}

func (h *hub) remove(w *watcher) {
	h.mu.Lock()
	delete(h.watchers, w)
	h.mu.Unlock()
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		w.once.Do(func() { close(w.lost) })
		delete(h.watchers, w)
	}
}

// event is called from the cache's event loop.
func (h *hub) event(typ govnv1.WatchEvent_Type, table string, m model.Model) {
	kind, ok := kinds[table]
	if !ok {
		return
	}
	h.mu.Lock()
	var targets []*watcher
	for w := range h.watchers {
		if w.wants(kind) {
			targets = append(targets, w)
		}
	}
	h.mu.Unlock()
	if len(targets) == 0 {
		return
	}
	ev := h.s.watchEvent(typ, kind, m)
	for _, w := range targets {
		select {
		case w.ch <- ev:
		default:
			w.once.Do(func() { close(w.lost) })
		}
	}
}

// watchEvent converts a row to its API resource.
func (s *Server) watchEvent(typ govnv1.WatchEvent_Type, kind string, m model.Model) *govnv1.WatchEvent {
	ctx := context.Background()
	ev := &govnv1.WatchEvent{Type: typ, Kind: kind}
	switch r := m.(type) {
	case *nbdb.LogicalSwitch:
		ev.Name, ev.Uuid = r.Name, r.UUID
		ev.Object = &govnv1.WatchEvent_LogicalSwitch{LogicalSwitch: s.switchProto(r)}
	case *nbdb.LogicalSwitchPort:
		ev.Name, ev.Uuid = r.Name, r.UUID
		sw := ""
		if ls, _ := s.switchOfPort(ctx, r.UUID); ls != nil {
			sw = ls.Name
		}
		ev.Object = &govnv1.WatchEvent_LogicalSwitchPort{LogicalSwitchPort: portProto(r, sw)}
	case *nbdb.ACL:
		parents, _ := s.aclParents(ctx)
		a := aclProto(r, parents[r.UUID])
		ev.Uuid = r.UUID
		ev.Name = fmt.Sprintf("%s%s %s %d %s", a.Switch, prefixed("@", a.PortGroup), a.Direction, a.Priority, a.Match)
		ev.Object = &govnv1.WatchEvent_Acl{Acl: a}
	case *nbdb.AddressSet:
		ev.Name, ev.Uuid = r.Name, r.UUID
		ev.Object = &govnv1.WatchEvent_AddressSet{AddressSet: addressSetProto(r)}
	case *nbdb.PortGroup:
		ev.Name, ev.Uuid = r.Name, r.UUID
		ev.Object = &govnv1.WatchEvent_PortGroup{PortGroup: s.portGroupProto(r)}
	case *nbdb.LogicalRouter:
		ev.Name, ev.Uuid = r.Name, r.UUID
		ev.Object = &govnv1.WatchEvent_LogicalRouter{LogicalRouter: s.routerProto(r)}
	case *nbdb.LogicalRouterPort:
		ev.Name, ev.Uuid = r.Name, r.UUID
		lr := ""
		if x, _ := s.routerOfPort(ctx, r.UUID); x != nil {
			lr = x.Name
		}
		ev.Object = &govnv1.WatchEvent_LogicalRouterPort{LogicalRouterPort: s.routerPortProto(r, lr)}
	case *nbdb.LogicalRouterStaticRoute:
		owners, _ := s.routerChildren(ctx, false)
		ev.Uuid = r.UUID
		ev.Name = fmt.Sprintf("%s %s via %s", owners[r.UUID], r.IPPrefix, r.Nexthop)
		ev.Object = &govnv1.WatchEvent_StaticRoute{StaticRoute: routeProto(r, owners[r.UUID])}
	case *nbdb.LoadBalancer:
		ev.Name, ev.Uuid = r.Name, r.UUID
		ev.Object = &govnv1.WatchEvent_LoadBalancer{LoadBalancer: lbProto(r)}
	case *nbdb.NAT:
		owners, _ := s.routerChildren(ctx, true)
		ev.Uuid = r.UUID
		ev.Name = fmt.Sprintf("%s %s %s", owners[r.UUID], r.Type, natKey(string(r.Type), r.ExternalIP, r.LogicalIP))
		ev.Object = &govnv1.WatchEvent_Nat{Nat: natProto(r, owners[r.UUID])}
	case *nbdb.DHCPOptions:
		ev.Uuid, ev.Name = r.UUID, r.Cidr
		ev.Object = &govnv1.WatchEvent_DhcpOptions{DhcpOptions: dhcpProto(r)}
	}
	return ev
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func (x watchService) Watch(req *govnv1.WatchRequest, stream govnv1.WatchService_WatchServer) error {
	s := x.s
	known := map[string]string{}
	for t, k := range kinds {
		known[k] = t
	}
	for _, k := range req.Kinds {
		if _, ok := known[k]; !ok {
			return badField("watch", "kinds", k, "unknown kind")
		}
	}
	// Subscribe first, then list: a change made in between is reported
	// twice (as ADDED and again as MODIFIED), never lost.
	w := s.hub.add(req.Kinds)
	defer s.hub.remove(w)
	if req.Initial {
		for table, kind := range kinds {
			if !w.wants(kind) {
				continue
			}
			tc := s.nb.Cache().Table(table)
			if tc == nil {
				continue
			}
			for _, m := range tc.Rows() {
				if err := stream.Send(s.watchEvent(govnv1.WatchEvent_ADDED, kind, m)); err != nil {
					return err
				}
			}
		}
		if err := stream.Send(&govnv1.WatchEvent{Type: govnv1.WatchEvent_SYNCED}); err != nil {
			return err
		}
	}
	for {
		select {
		case ev := <-w.ch:
			if err := stream.Send(ev); err != nil {
				return err
			}
		case <-w.lost:
			return status.Error(codes.ResourceExhausted, "watcher fell too far behind (or the server is stopping); watch again with initial=true")
		case <-stream.Context().Done():
			return nil
		}
	}
}
