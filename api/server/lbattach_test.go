package server_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	govnv1 "github.com/govn/govn/api/govnv1"
)

// TestConcurrentLBAttachDetach races attaches and detaches of many load
// balancers on one switch and one router, from many goroutines through two
// API servers on one real NB ovsdb-server: every change lands (no lost
// updates), because each RPC is a mutate of the load_balancer set, not a
// rewrite of it.
func TestConcurrentLBAttachDetach(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	conn2 := e.secondServer()
	lbClients := []govnv1.LoadBalancerServiceClient{e.lb, govnv1.NewLoadBalancerServiceClient(conn2)}
	lr := govnv1.NewLogicalRouterServiceClient(e.conn)

	must(e.ls.CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0"}}))
	must(lr.CreateLogicalRouter(ctx, &govnv1.CreateLogicalRouterRequest{LogicalRouter: &govnv1.LogicalRouter{Name: "lr0"}}))
	const n = 32
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("lb%02d", i)
		must(e.lb.CreateLoadBalancer(ctx, &govnv1.CreateLoadBalancerRequest{LoadBalancer: &govnv1.LoadBalancer{Name: names[i],
			Vips: map[string]string{fmt.Sprintf("10.0.1.%d:80", i+1): "10.0.0.11:8080"}}}))
	}
	// The odd ones start attached; the race detaches them and attaches the
	// even ones, each load balancer on the switch and on the router.
	for i := 1; i < n; i += 2 {
		must(e.lb.AttachLoadBalancer(ctx, &govnv1.AttachLoadBalancerRequest{LoadBalancer: names[i], Switch: "sw0"}))
		must(e.lb.AttachLoadBalancer(ctx, &govnv1.AttachLoadBalancerRequest{LoadBalancer: names[i], Router: "lr0"}))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*n)
	for i := range names {
		for _, target := range []string{"switch", "router"} {
			wg.Add(1)
			go func(i int, target string) {
				defer wg.Done()
				req := &govnv1.AttachLoadBalancerRequest{LoadBalancer: names[i]}
				if target == "switch" {
					req.Switch = "sw0"
				} else {
					req.Router = "lr0"
				}
				c := lbClients[i%2]
				// Attach, then detach (odd) / detach, then attach (even): the
				// final state is even attached, odd detached.
				first, second := c.AttachLoadBalancer, c.DetachLoadBalancer
				if i%2 == 0 {
					first, second = c.DetachLoadBalancer, c.AttachLoadBalancer
				}
				for _, call := range []func(context.Context, *govnv1.AttachLoadBalancerRequest, ...grpc.CallOption) (*govnv1.AttachLoadBalancerResponse, error){first, second} {
					if _, err := call(ctx, req); err != nil {
						errs <- fmt.Errorf("%s %s: %w", names[i], target, err)
					}
				}
			}(i, target)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	var want []string
	for i := 0; i < n; i += 2 {
		want = append(want, names[i])
	}
	ls := must(e.ls.GetLogicalSwitch(ctx, &govnv1.GetLogicalSwitchRequest{Name: "sw0"}))
	if got := slices.Sorted(slices.Values(ls.LoadBalancers)); !slices.Equal(got, want) {
		t.Errorf("switch load balancers after the race:\n got %v\nwant %v", got, want)
	}
	r := must(lr.GetLogicalRouter(ctx, &govnv1.GetLogicalRouterRequest{Name: "lr0"}))
	if got := slices.Sorted(slices.Values(r.LoadBalancers)); !slices.Equal(got, want) {
		t.Errorf("router load balancers after the race:\n got %v\nwant %v", got, want)
	}
	// What the database holds (not only the API's cache).
	out := nbctl(t, e, "--bare", "--columns=load_balancer", "list", "Logical_Switch", "sw0")
	if got := len(splitFields(out)); got != len(want) {
		t.Errorf("ovn-nbctl: switch has %d load balancers, want %d: %q", got, len(want), out)
	}
}

// TestLBAttachConcurrentDelete races attaches of a load balancer against its
// deletion: each attach either succeeds (before the delete) or fails with
// NOT_FOUND, and the switch never keeps a reference to the deleted row.
// Attach and detach of something that does not exist write nothing.
func TestLBAttachConcurrentDelete(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx
	must(e.ls.CreateLogicalSwitch(ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0"}}))
	e.expectNothingWritten(codes.NotFound, func() error {
		_, err := e.lb.AttachLoadBalancer(ctx, &govnv1.AttachLoadBalancerRequest{LoadBalancer: "nosuch", Switch: "sw0"})
		return err
	})
	e.expectNothingWritten(codes.InvalidArgument, func() error {
		_, err := e.lb.AttachLoadBalancer(ctx, &govnv1.AttachLoadBalancerRequest{LoadBalancer: "x", Switch: "sw0", Router: "lr0"})
		return err
	})
	e.expectNothingWritten(codes.InvalidArgument, func() error {
		_, err := e.lb.DetachLoadBalancer(ctx, &govnv1.AttachLoadBalancerRequest{LoadBalancer: "x"})
		return err
	})
	for round := 0; round < 5; round++ {
		name := fmt.Sprintf("victim%d", round)
		must(e.lb.CreateLoadBalancer(ctx, &govnv1.CreateLoadBalancerRequest{LoadBalancer: &govnv1.LoadBalancer{Name: name,
			Vips: map[string]string{"10.0.2.1:80": "10.0.0.11:8080"}}}))
		var wg sync.WaitGroup
		codesSeen := make(chan codes.Code, 16)
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if i == 8 {
					if _, err := e.lb.DeleteLoadBalancer(ctx, &govnv1.DeleteLoadBalancerRequest{Name: name}); err != nil {
						t.Errorf("delete %s: %v", name, err)
					}
					return
				}
				_, err := e.lb.AttachLoadBalancer(ctx, &govnv1.AttachLoadBalancerRequest{LoadBalancer: name, Switch: "sw0"})
				codesSeen <- status.Code(err)
			}(i)
		}
		wg.Wait()
		close(codesSeen)
		for c := range codesSeen {
			if c != codes.OK && c != codes.NotFound {
				t.Errorf("round %d: attach during delete: code %v, want OK or NotFound", round, c)
			}
		}
		ls := must(e.ls.GetLogicalSwitch(ctx, &govnv1.GetLogicalSwitchRequest{Name: "sw0"}))
		if len(ls.LoadBalancers) != 0 {
			t.Errorf("round %d: switch still lists %v after the delete", round, ls.LoadBalancers)
		}
	}
	if out := nbctl(t, e, "--bare", "--columns=load_balancer", "list", "Logical_Switch", "sw0"); len(splitFields(out)) != 0 {
		t.Errorf("ovn-nbctl: switch keeps load balancer references %q", out)
	}
}

func splitFields(s string) []string { return strings.Fields(s) }
