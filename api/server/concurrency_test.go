package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	govnv1 "github.com/govn/govn/api/govnv1"
)

// TestConcurrentWriters races writers through two API servers on the same
// NB database: distinct creates all land; creates of one name (switch or
// port) have exactly one winner, whichever server's cache was stale.
func TestConcurrentWriters(t *testing.T) {
	e := newEnv(t)
	conn2 := e.secondServer()
	lsClients := []govnv1.LogicalSwitchServiceClient{e.ls, govnv1.NewLogicalSwitchServiceClient(conn2)}
	lspClients := []govnv1.LogicalSwitchPortServiceClient{e.lsp, govnv1.NewLogicalSwitchPortServiceClient(conn2)}
	ctx := e.ctx

	for round := 0; round < 5; round++ {
		name := fmt.Sprintf("race%d", round)
		var wg sync.WaitGroup
		codesSeen := make(chan codes.Code, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				_, err := lsClients[i%2].CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: name}})
				codesSeen <- status.Code(err)
			}(i)
		}
		wg.Wait()
		close(codesSeen)
		ok := 0
		for c := range codesSeen {
			switch c {
			case codes.OK:
				ok++
			case codes.AlreadyExists:
			default:
				t.Errorf("round %d: unexpected code %v", round, c)
			}
		}
		if ok != 1 {
			t.Errorf("round %d: %d creates of switch %q succeeded, want 1", round, ok, name)
		}
		if out := nbctl(t, e, "--bare", "--columns=_uuid", "find", "Logical_Switch", "name="+name); strings.Count(out, "\n") != 1 {
			t.Errorf("round %d: switches named %q: %q", round, name, out)
		}
	}

	// 16 writers, 25 distinct ports each, on one switch; plus a contested port name.
	var wg sync.WaitGroup
	errs := make(chan error, 16*26)
	var wins sync.Map
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := lspClients[w%2]
			for i := 0; i < 25; i++ {
				n := w*25 + i
				_, err := c.CreateLogicalSwitchPort(ctx, &govnv1.CreateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{
					Name: fmt.Sprintf("p%d", n), Switch: "race0",
					Addresses: []string{fmt.Sprintf("0a:00:00:00:%02x:%02x 10.0.%d.%d", n/256, n%256, n/250, n%250+1)}}})
				if err != nil {
					errs <- fmt.Errorf("writer %d port %d: %w", w, n, err)
				}
			}
			_, err := c.CreateLogicalSwitchPort(ctx, &govnv1.CreateLogicalSwitchPortRequest{LogicalSwitchPort: &govnv1.LogicalSwitchPort{Name: "contested", Switch: "race0"}})
			if err == nil {
				wins.Store(w, true)
			} else if status.Code(err) != codes.AlreadyExists {
				errs <- fmt.Errorf("contested: %w", err)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n := 0
	wins.Range(func(any, any) bool { n++; return true })
	if n != 1 {
		t.Errorf("%d writers created the contested port, want 1", n)
	}
	sw := must(e.ls.GetLogicalSwitch(ctx, &govnv1.GetLogicalSwitchRequest{Name: "race0"}))
	if len(sw.Ports) != 16*25+1 {
		t.Errorf("switch has %d ports, want %d", len(sw.Ports), 16*25+1)
	}
	if out := nbctl(t, e, "lsp-list", "race0"); strings.Count(out, "\n") != 16*25+1 {
		t.Errorf("ovn-nbctl lsp-list shows %d ports", strings.Count(out, "\n"))
	}
	_ = context.Background
}
