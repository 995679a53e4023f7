package run

import (
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// ovnRouterDiffs are the router flows OVN 23.03 writes that govn does not,
// or writes differently, each for a reason the lflow language gives
// (README, "Differences from OVN 23.03"). A line of either side that
// matches one of these is left out of the comparison.
var ovnRouterDiffs = []*regexp.Regexp{
	regexp.MustCompile(`handle_dhcpv6_reply`), // DHCPv6 client replies: no action yet
	regexp.MustCompile(`sctp_abort`),          // no sctp_abort action yet
	regexp.MustCompile(`ip6\.mcast_rsvd`),     // not in the symbol table yet
	regexp.MustCompile(`nd_ns && nd\.target`), // nd_na_router (OVN) vs nd_na without that action
}

// TestRouterMatchesOVN is a differential test: the same ovn-nbctl commands
// go to govn's northd and to the real ovn-northd (23.03), each with its
// own databases, and the router's logical flows (ovn-sbctl lflow-list lr0)
// must be the same, apart from comments, spacing and ovnRouterDiffs.
func TestRouterMatchesOVN(t *testing.T) {
	if _, err := exec.LookPath("ovn-northd"); err != nil {
		t.Skipf("ovn-northd not installed (apt install ovn-central): %v", err)
	}
	g := newEnv(t)
	g.start()
	o := newEnv(t)
	startOVNNorthd(t, o)

	for _, e := range []*env{g, o} {
		routerTopology(e)
		e.nbctl("--wait=sb", "--ecmp", "lr-route-add", "lr0", "0.0.0.0/0", "10.0.2.254")
		e.nbctl("--wait=sb", "--ecmp", "lr-route-add", "lr0", "0.0.0.0/0", "10.0.2.11")
		e.nbctl("--wait=sb", "lr-route-add", "lr0", "10.99.0.0/16", "discard")
		e.nbctl("--wait=sb", "--policy=src-ip", "lr-route-add", "lr0", "10.0.1.128/25", "10.0.2.254")
		e.nbctl("--wait=sb", "lr-route-add", "lr0", "fd00:c::/48", "fd00:b::11")
	}
	deadline := time.Now().Add(10 * time.Second)
	var want, got []string
	for {
		want, got = routerFlows(o.sbctl("lflow-list", "lr0")), routerFlows(g.sbctl("lflow-list", "lr0"))
		if strings.Join(want, "\n") == strings.Join(got, "\n") || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if len(want) < 50 {
		t.Fatalf("OVN wrote only %d router flows:\n%s", len(want), strings.Join(want, "\n"))
	}
	if d := lineDiffs(want, got); d != "" {
		t.Errorf("router flows differ from OVN 23.03 (- OVN only, + govn only):\n%s", d)
	}
}

var (
	lflowSpaces  = regexp.MustCompile(`\s+`)
	lflowComment = regexp.MustCompile(`/\* [^*]* \*/ ?`)
	ecmpMember   = regexp.MustCompile(`reg8\[16\.\.31\] == [0-9]+`)
)

// routerFlows normalises lflow-list output: one line per flow without
// comments, runs of spaces, datapath headers or "; " spacing quirks.
func routerFlows(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(lflowSpaces.ReplaceAllString(lflowComment.ReplaceAllString(l, ""), " "))
		if l == "" || strings.HasPrefix(l, "Datapath:") {
			continue
		}
		l = strings.ReplaceAll(l, " ;", ";")
		l = strings.ReplaceAll(l, "; )", ";)")
		l = strings.ReplaceAll(l, "||ip4", "|| ip4")
		// ECMP members are numbered in route-row UUID order, which differs
		// between two databases: compare the members as a set.
		l = ecmpMember.ReplaceAllString(l, "reg8[16..31] == N")
		skip := false
		for _, re := range ovnRouterDiffs {
			if re.MatchString(l) {
				skip = true
			}
		}
		if !skip {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

func lineDiffs(want, got []string) string {
	w := map[string]int{}
	for _, l := range want {
		w[l]++
	}
	var sb strings.Builder
	for _, l := range got {
		if w[l] > 0 {
			w[l]--
			continue
		}
		sb.WriteString("+ " + l + "\n")
	}
	for _, l := range want {
		if w[l] > 0 {
			w[l]--
			sb.WriteString("- " + l + "\n")
		}
	}
	return sb.String()
}
