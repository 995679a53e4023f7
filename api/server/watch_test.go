package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/server"
	"github.com/govn/govn/internal/dbserver/dbservertest"
)

// nextEvent reads events until one matches want (kind/type/name), failing
// after a timeout. Other events are skipped but recorded for the message.
func nextEvent(t *testing.T, stream govnv1.WatchService_WatchClient, typ govnv1.WatchEvent_Type, kind, name string) *govnv1.WatchEvent {
	t.Helper()
	var seen []string
	done := make(chan *govnv1.WatchEvent, 1)
	errc := make(chan error, 1)
	go func() {
		for {
			ev, err := stream.Recv()
			if err != nil {
				errc <- err
				return
			}
			if ev.Type == typ && ev.Kind == kind && ev.Name == name {
				done <- ev
				return
			}
			seen = append(seen, fmt.Sprintf("%s %s %q", ev.Type, ev.Kind, ev.Name))
		}
	}()
	select {
	case ev := <-done:
		return ev
	case err := <-errc:
		t.Fatalf("watch ended while waiting for %s %s %q: %v (seen %v)", typ, kind, name, err, seen)
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s %s %q event within 10s", typ, kind, name)
	}
	return nil
}

// TestWatchSeesOVNNbctl checks that Watch streams changes made by the real
// ovn-nbctl (not through the API), and the initial listing.
func TestWatchSeesOVNNbctl(t *testing.T) {
	e := newEnv(t)
	nbctl(t, e, "ls-add", "sw-pre")
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	w := govnv1.NewWatchServiceClient(e.conn)
	stream, err := w.Watch(ctx, &govnv1.WatchRequest{Initial: true, Kinds: []string{"logical_switch", "logical_switch_port", "acl", "logical_router_port"}})
	if err != nil {
		t.Fatal(err)
	}
	nextEvent(t, stream, govnv1.WatchEvent_ADDED, "logical_switch", "sw-pre")
	nextEvent(t, stream, govnv1.WatchEvent_SYNCED, "", "")

	nbctl(t, e, "ls-add", "sw0")
	ev := nextEvent(t, stream, govnv1.WatchEvent_ADDED, "logical_switch", "sw0")
	if ev.GetLogicalSwitch().GetName() != "sw0" || ev.Uuid == "" {
		t.Errorf("event object %v", ev)
	}
	nbctl(t, e, "lsp-add", "sw0", "p1", "--", "lsp-set-addresses", "p1", "00:00:00:00:00:01 10.0.0.11")
	ev = nextEvent(t, stream, govnv1.WatchEvent_ADDED, "logical_switch_port", "p1")
	if got := ev.GetLogicalSwitchPort(); got.GetSwitch() != "sw0" || len(got.GetAddresses()) != 1 {
		t.Errorf("port event %v", ev)
	}
	nbctl(t, e, "lsp-set-addresses", "p1", "00:00:00:00:00:01 10.0.0.99")
	ev = nextEvent(t, stream, govnv1.WatchEvent_MODIFIED, "logical_switch_port", "p1")
	if a := ev.GetLogicalSwitchPort().GetAddresses(); len(a) != 1 || a[0] != "00:00:00:00:00:01 10.0.0.99" {
		t.Errorf("modified port %v", ev)
	}
	nbctl(t, e, "acl-add", "sw0", "to-lport", "1001", "ip4 && tcp.dst == 22", "drop")
	ev = nextEvent(t, stream, govnv1.WatchEvent_ADDED, "acl", "sw0 to-lport 1001 ip4 && tcp.dst == 22")
	if ev.GetAcl().GetAction() != "drop" {
		t.Errorf("acl event %v", ev)
	}
	nbctl(t, e, "lsp-del", "p1")
	nextEvent(t, stream, govnv1.WatchEvent_DELETED, "logical_switch_port", "p1")
	// Changes through the API show up too.
	must(e.ls.DeleteLogicalSwitch(e.ctx, &govnv1.DeleteLogicalSwitchRequest{Name: "sw0"}))
	nextEvent(t, stream, govnv1.WatchEvent_DELETED, "logical_switch", "sw0")
	// Kinds filter: router ports were requested, routers were not.
	nbctl(t, e, "lr-add", "lr0", "--", "lrp-add", "lr0", "lrp0", "00:00:00:00:ff:01", "10.1.0.1/24")
	ev = nextEvent(t, stream, govnv1.WatchEvent_ADDED, "logical_router_port", "lrp0")
	if ev.GetLogicalRouterPort().GetRouter() != "lr0" {
		t.Errorf("router port event %v", ev)
	}
}

// TestWatchSlowWatcherEnded checks that a watcher that does not read is
// ended with ResourceExhausted instead of holding events forever, while
// writes keep working.
func TestWatchSlowWatcherEnded(t *testing.T) {
	db := dbservertest.Start(t, nbDatabase, "", nil)
	api, err := server.Start(t.Context(), server.Config{NB: []string{db.Endpoint()}, Listen: "127.0.0.1:0", WatchBuffer: 8, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Stop)
	conn, err := grpc.NewClient(api.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(1<<16), grpc.WithInitialConnWindowSize(1<<16))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	stream, err := govnv1.NewWatchServiceClient(conn).Watch(wctx, &govnv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	ls := govnv1.NewLogicalSwitchServiceClient(conn)
	// Large events (long external_ids) fill the HTTP/2 window quickly.
	big := map[string]string{"pad": strings.Repeat("x", 4000)}
	for i := 0; i < 200; i++ {
		if _, err := ls.CreateLogicalSwitch(t.Context(), &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{
			Name: fmt.Sprintf("sw%d", i), ExternalIds: big}}); err != nil {
			t.Fatalf("write %d while a watcher stalls: %v", i, err)
		}
	}
	for {
		_, err := stream.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "fell too far behind") {
			t.Fatalf("stalled watcher ended with %v, want ResourceExhausted", err)
		}
		return
	}
}

// TestTraceWithoutSB: an API server started without --sb cannot trace and
// says so (FailedPrecondition); the request is not otherwise looked at.
func TestTraceWithoutSB(t *testing.T) {
	e := newEnv(t)
	_, err := govnv1.NewTraceServiceClient(e.conn).Trace(e.ctx, &govnv1.TraceRequest{Datapath: "sw0", Microflow: `inport == "p1"`})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "the API server was started without --sb") {
		t.Fatalf("Trace without --sb: %v", err)
	}
}
