package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/govn/govn/e2e/harness"
)

// Helpers shared by the load-balancer and NAT scenarios.

// requester is a pod or the external host: something that asks a
// harness.Server and gets back who answered and the address it saw.
type requester interface {
	Request(proto string, dst netip.Addr, port int, timeout time.Duration) (harness.Reply, error)
}

func requesterName(r requester) string {
	switch v := r.(type) {
	case *pod:
		return v.Name
	case *harness.External:
		return v.Name
	}
	return fmt.Sprintf("%T", r)
}

// answered waits (up to 20 s: flows may still be on their way) until a
// request from src to dst:port is answered and returns the answer.
func (o *ovn) answered(src requester, proto string, dst netip.Addr, port int) harness.Reply {
	o.t.Helper()
	var r harness.Reply
	o.eventually(20*time.Second, fmt.Sprintf("%s %s -> %s:%d answered", proto, requesterName(src), dst, port), func() error {
		var err error
		r, err = src.Request(proto, dst, port, 2*time.Second)
		return err
	})
	return r
}

// unanswered asserts that, within settle, requests from src to dst:port stop
// being answered (each attempt waits up to a second).
func (o *ovn) unanswered(src requester, proto string, dst netip.Addr, port int) {
	o.t.Helper()
	o.eventually(settle, fmt.Sprintf("%s %s -> %s:%d no longer answered", proto, requesterName(src), dst, port), func() error {
		r, err := src.Request(proto, dst, port, time.Second)
		if err == nil {
			return fmt.Errorf("answered: %s", r)
		}
		return nil
	})
}

// requestN sends n requests from src to dst:port, parallel goroutines of
// at most 8 (each request is a fresh nc, so a fresh source port and
// connection), and returns the answers; any failed request is an error.
func requestN(src requester, proto string, dst netip.Addr, port, n int) ([]harness.Reply, error) {
	replies := make([]harness.Reply, n)
	errs := make([]error, n)
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			replies[i], errs[i] = src.Request(proto, dst, port, 3*time.Second)
		}()
	}
	wg.Wait()
	return replies, errors.Join(errs...)
}

// countFrom counts replies per server name.
func countFrom(rs []harness.Reply) map[string]int {
	m := map[string]int{}
	for _, r := range rs {
		m[r.From]++
	}
	return m
}

func sortedKeys(m map[string]int) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// serve starts a server on each pod.
func (o *ovn) serve(proto string, port int, pods ...*pod) {
	o.t.Helper()
	for _, p := range pods {
		if _, err := p.Serve(proto, port); err != nil {
			o.t.Fatal(err)
		}
	}
}

// traceNode is the part of a govnctl trace -o json node the checks read.
type traceNode struct {
	Type     string      `json:"type"`
	Text     string      `json:"text"`
	Flow     *traceFlow  `json:"flow"`
	Children []traceNode `json:"children"`
}

type traceFlow struct {
	Datapath string `json:"datapath"`
	Stage    string `json:"stage"`
	Match    string `json:"match"`
	Actions  string `json:"actions"`
	Source   string `json:"source"`
}

type traceOutcome struct {
	Verdict string `json:"verdict"`
	Port    string `json:"port"`
	Reason  string `json:"reason"`
}

type traceResult struct {
	Root     traceNode      `json:"root"`
	Outcomes []traceOutcome `json:"outcomes"`
}

// flows returns every logical flow the trace visited, in order.
func (r *traceResult) flows() []traceFlow {
	var out []traceFlow
	var walk func(n *traceNode)
	walk = func(n *traceNode) {
		if n.Flow != nil {
			out = append(out, *n.Flow)
		}
		for i := range n.Children {
			walk(&n.Children[i])
		}
	}
	walk(&r.Root)
	return out
}

// visited returns the flows of stage ("": any) whose actions contain
// action.
func (r *traceResult) visited(stage, action string) []traceFlow {
	var out []traceFlow
	for _, f := range r.flows() {
		if (stage == "" || f.Stage == stage) && strings.Contains(f.Actions, action) {
			out = append(out, f)
		}
	}
	return out
}

// delivered reports the ports the trace delivered the packet to.
func (r *traceResult) delivered() []string {
	var ps []string
	for _, oc := range r.Outcomes {
		if oc.Verdict == "output" {
			ps = append(ps, oc.Port)
		}
	}
	return ps
}

// trace runs `govnctl trace -o json` against the SB and parses the result.
func (o *ovn) trace(args ...string) *traceResult {
	o.t.Helper()
	argv := append([]string{"trace", "-o", "json", "--sb", "unix:" + o.sbSock}, args...)
	cmd := exec.Command(govnctlBin, argv...)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		o.t.Fatalf("govnctl %s: %v: %s", strings.Join(argv, " "), err, stderr)
	}
	var r traceResult
	if err := json.Unmarshal(out, &r); err != nil {
		o.t.Fatalf("govnctl trace output: %v\n%s", err, out)
	}
	return &r
}

// traceDump renders the visited flows for a failure message.
func (r *traceResult) dump() string {
	var b strings.Builder
	for _, f := range r.flows() {
		fmt.Fprintf(&b, "  %s %s: match %q actions %q\n", f.Datapath, f.Stage, f.Match, f.Actions)
	}
	fmt.Fprintf(&b, "  outcomes: %+v\n", r.Outcomes)
	return b.String()
}
