package e2e

import (
	"encoding/json"
	"testing"
)

// ACL tiers with real packets. A tier-0 "pass" ACL for a's traffic hands it
// to tier 1, whose drop of tcp/23 decides; a tier-0 allow for c decides for
// c before tier 1 is consulted; traffic tier 1 does not match gets the
// default (allow). Control: the same tier-0 ACL turned into "allow" lets a's
// tcp/23 through again. ACL.tier and "pass" are govn extensions of the OVN
// 23.03 schema (OVN 23.06 features), so the rows are written with
// ovsdb-client (ovn-nbctl 23.03 knows neither) and the test does not run
// against the OVN 23.03 reference.
func TestACLTiers(t *testing.T) {
	o := startOVN(t, 2)
	if o.reference {
		t.Skip("OVN 23.03 has no ACL tiers (ACL.tier and \"pass\" came with OVN 23.06)")
	}
	ch1, ch2 := o.topo.Chassis[0], o.topo.Chassis[1]
	o.nbctl("ls-add", "ls1")
	a := o.addPod(ch1, "ls1", "a", 1)
	b := o.addPod(ch2, "ls1", "b", 2)
	c := o.addPod(ch1, "ls1", "c", 3)
	for _, port := range []int{23, 80} {
		if _, err := b.ListenTCP(port); err != nil {
			t.Fatal(err)
		}
	}
	o.reach(a, b, 2)
	// Controls: before any ACL everything is open.
	o.tcpOK(a, b, 23)
	o.tcpOK(c, b, 23)

	t.Log("tier 0: pass a's traffic, allow c's; tier 1: drop tcp/23")
	o.nbTransact(
		map[string]any{"op": "insert", "table": "ACL", "uuid-name": "pass_a", "row": map[string]any{
			"direction": "from-lport", "priority": 100, "match": `inport == "lsp-a"`, "action": "pass", "tier": 0}},
		map[string]any{"op": "insert", "table": "ACL", "uuid-name": "allow_c", "row": map[string]any{
			"direction": "from-lport", "priority": 100, "match": `inport == "lsp-c"`, "action": "allow", "tier": 0}},
		map[string]any{"op": "insert", "table": "ACL", "uuid-name": "drop_telnet", "row": map[string]any{
			"direction": "from-lport", "priority": 100, "match": "tcp.dst == 23", "action": "drop", "tier": 1}},
		map[string]any{"op": "mutate", "table": "Logical_Switch", "where": []any{[]any{"name", "==", "ls1"}},
			"mutations": []any{[]any{"acls", "insert", []any{"set", []any{
				[]any{"named-uuid", "pass_a"}, []any{"named-uuid", "allow_c"}, []any{"named-uuid", "drop_telnet"}}}}}},
	)
	o.tcpBlocked(a, b, 23) // tier 0 passes, tier 1 drops
	o.tcpOK(a, b, 80)      // tier 0 passes, nothing in tier 1: default allow
	o.reach(a, b, 2)
	o.tcpOK(c, b, 23) // tier 0 allows: tier 1 never sees it

	t.Log("control: the tier-0 ACL for a allows instead of passing")
	o.nbTransact(map[string]any{"op": "update", "table": "ACL",
		"where": []any{[]any{"match", "==", `inport == "lsp-a"`}}, "row": map[string]any{"action": "allow"}})
	o.tcpOK(a, b, 23)

	t.Log("and back to pass: tier 1 decides again")
	o.nbTransact(map[string]any{"op": "update", "table": "ACL",
		"where": []any{[]any{"match", "==", `inport == "lsp-a"`}}, "row": map[string]any{"action": "pass"}})
	o.tcpBlocked(a, b, 23)
	o.tcpOK(c, b, 23)

	t.Log("stateful: tier 1 allow-related for a's tcp/80, tier 1 to-lport drop of everything to a")
	if _, err := a.ListenTCP(80); err != nil {
		t.Fatal(err)
	}
	o.tcpOK(b, a, 80) // control: open before the ACLs
	o.nbTransact(
		map[string]any{"op": "insert", "table": "ACL", "uuid-name": "web_a", "row": map[string]any{
			"direction": "from-lport", "priority": 200, "match": `inport == "lsp-a" && tcp.dst == 80`, "action": "allow-related", "tier": 1}},
		map[string]any{"op": "insert", "table": "ACL", "uuid-name": "to_a", "row": map[string]any{
			"direction": "to-lport", "priority": 100, "match": `outport == "lsp-a" && ip4`, "action": "drop", "tier": 1}},
		map[string]any{"op": "mutate", "table": "Logical_Switch", "where": []any{[]any{"name", "==", "ls1"}},
			"mutations": []any{[]any{"acls", "insert", []any{"set", []any{
				[]any{"named-uuid", "web_a"}, []any{"named-uuid", "to_a"}}}}}},
	)
	// a's connection passes tier 0, is committed by tier 1's allow-related,
	// and its replies get through the to-lport drop as established traffic.
	o.tcpOK(a, b, 80)
	// New connections towards a reach tier 1's drop (no to-lport ACL in
	// tier 0), from either chassis.
	o.tcpBlocked(b, a, 80)
	o.tcpBlocked(c, a, 80)
	o.tcpBlocked(a, b, 23) // still tier 1's drop
}

// nbTransact runs one OVSDB transaction of ops on the northbound database
// (ovsdb-client transact), then waits for the chassis like nbctl does.
func (o *ovn) nbTransact(ops ...map[string]any) {
	o.t.Helper()
	req := append([]any{"OVN_Northbound"}, anySlice(ops)...)
	js, err := json.Marshal(req)
	if err != nil {
		o.t.Fatal(err)
	}
	out, err := runTool("ovsdb-client", "transact", "unix:"+o.nbSock, string(js))
	if err != nil {
		o.t.Fatalf("ovsdb-client transact %s: %v", js, err)
	}
	var res []map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		o.t.Fatalf("ovsdb-client transact: %v: %s", err, out)
	}
	for _, r := range res {
		if e, ok := r["error"]; ok {
			o.t.Fatalf("ovsdb-client transact %s: %v %v", js, e, r["details"])
		}
	}
	o.nbctl("sync")
}

func anySlice(ops []map[string]any) []any {
	out := make([]any, len(ops))
	for i, op := range ops {
		out[i] = op
	}
	return out
}
