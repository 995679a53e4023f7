package binding

import (
	"fmt"
	"strings"
	"testing"
)

func decisions(r *Result) string {
	var parts []string
	for _, d := range r.Decisions {
		parts = append(parts, d.Action.String()+":"+d.Port.LogicalPort)
	}
	return strings.Join(parts, " ")
}

func TestDecide(t *testing.T) {
	in := &Input{
		Chassis:     "ch2",
		Hostname:    "host2",
		Ifaces:      map[string]bool{"a": true, "b": true, "c": false, "d": true, "e": true, "f": true, "g": true, "h": true, "new": true},
		LiveChassis: map[string]bool{"ch1": true, "ch2": true, "ch3": true},
		Ports: []Port{
			{LogicalPort: "a"},                                                     // unbound, local → claim
			{LogicalPort: "b", Chassis: "ch2", Up: true},                           // ours, up → nothing
			{LogicalPort: "c", Chassis: "ch2", Up: true},                           // ours, no ofport yet → keep
			{LogicalPort: "d", Chassis: "ch1"},                                     // live ch1 sorts first → conflict, yield
			{LogicalPort: "e", Chassis: "ch3"},                                     // ch3 sorts after us → take it
			{LogicalPort: "f", Chassis: "gone"},                                    // dead chassis → take it
			{LogicalPort: "g", RequestedChassis: "ch1"},                            // requested elsewhere → no claim
			{LogicalPort: "h", Chassis: "ch1", RequestedChassis: "host2"},          // requested us by hostname → take it
			{LogicalPort: "i", Chassis: "ch2", Up: true},                           // ours, no interface → release
			{LogicalPort: "j", Chassis: "ch2"},                                     // …
			{LogicalPort: "k", Chassis: "ch2", Type: "patch"},                      // not a VIF → ignored
			{LogicalPort: "l", Chassis: "ch2", Up: false, RequestedChassis: "ch9"}, // requested elsewhere → release
			{LogicalPort: "m", Chassis: "ch2", Up: false},                          // ours, no iface → release
		},
	}
	in.Ifaces["m"] = false
	delete(in.Ifaces, "m")
	in.Ifaces["b2"] = true
	in.Ports = append(in.Ports, Port{LogicalPort: "b2", Chassis: "ch2"}) // ours, not up → set-up
	r := Decide(in)
	want := "claim:a set-up:b2 claim:e claim:f claim:h release:i release:j release:l release:m"
	if got := decisions(r); got != want {
		t.Errorf("decisions\n got %s\nwant %s", got, want)
	}
	if len(r.Conflicts) != 1 || r.Conflicts[0].Holder != "ch1" || r.Conflicts[0].LogicalPort != "d" ||
		!strings.Contains(r.Conflicts[0].String(), "ch1 keeps it") {
		t.Errorf("conflicts = %v", r.Conflicts)
	}
	if fmt.Sprint(r.Unknown) != "[new]" {
		t.Errorf("unknown = %v", r.Unknown)
	}
	for _, p := range []string{"a", "b", "b2", "e", "f", "h"} {
		if !r.Bound[p] {
			t.Errorf("%s not bound", p)
		}
	}
	for _, p := range []string{"c", "d", "g", "i"} {
		if r.Bound[p] {
			t.Errorf("%s bound", p)
		}
	}
}

// TestConflictConverges plays two chassis that both have an interface for
// one port against a shared Port_Binding until nothing changes: the port
// ends on the chassis whose name sorts first, whoever claimed first.
func TestConflictConverges(t *testing.T) {
	for _, first := range []string{"ch-a", "ch-b"} {
		pb := Port{LogicalPort: "p", Chassis: first}
		live := map[string]bool{"ch-a": true, "ch-b": true}
		for round := 0; round < 10; round++ {
			changed := false
			for _, ch := range []string{"ch-b", "ch-a"} {
				r := Decide(&Input{Chassis: ch, Ifaces: map[string]bool{"p": true}, LiveChassis: live, Ports: []Port{pb}})
				for _, d := range r.Decisions {
					switch d.Action {
					case Claim:
						pb.Chassis, pb.Up, changed = ch, true, true
					case SetUp:
						pb.Up, changed = true, true
					case Release:
						pb.Chassis, pb.Up, changed = "", false, true
					}
				}
			}
			if !changed {
				break
			}
		}
		if pb.Chassis != "ch-a" || !pb.Up {
			t.Errorf("first claimed by %s: ended on %q up=%v, want ch-a up", first, pb.Chassis, pb.Up)
		}
	}
}

func TestActiveGateway(t *testing.T) {
	members := []HAChassis{{"gw1", 10}, {"gw2", 20}, {"gw3", 20}, {"", 99}}
	live := map[string]bool{"gw1": true, "gw2": true, "gw3": true}
	if got := ActiveGateway(members, live); got != "gw2" {
		t.Fatalf("active = %q, want gw2 (priority 20, sorts before gw3)", got)
	}
	delete(live, "gw2")
	if got := ActiveGateway(members, live); got != "gw3" {
		t.Fatalf("gw2 gone: active = %q, want gw3", got)
	}
	delete(live, "gw3")
	if got := ActiveGateway(members, live); got != "gw1" {
		t.Fatalf("gw2, gw3 gone: active = %q, want gw1", got)
	}
	if got := ActiveGateway(members, nil); got != "" {
		t.Fatalf("no live chassis: active = %q", got)
	}
}

func TestGatewayPorts(t *testing.T) {
	in := &Input{Chassis: "gw1", Ports: []Port{
		{UUID: "1", LogicalPort: "cr-lrp", Type: TypeChassisRedirect, GatewayChassis: "gw1", Chassis: "gw2"}, // failover: take it
		{UUID: "2", LogicalPort: "l3", Type: TypeL3Gateway, GatewayChassis: "gw1"},                           // claim
		{UUID: "3", LogicalPort: "l3-other", Type: TypeL3Gateway, GatewayChassis: "gw2", Chassis: "gw1"},     // moved away: release
		{UUID: "4", LogicalPort: "l3-mine", Type: TypeL3Gateway, GatewayChassis: "gw1", Chassis: "gw1", Up: true},
		{UUID: "5", LogicalPort: "cr-none", Type: TypeChassisRedirect, Chassis: "gw3"}, // no gateway: not ours to touch
	}}
	res := Decide(in)
	var got []string
	for _, d := range res.Decisions {
		got = append(got, d.Port.LogicalPort+":"+d.Action.String())
	}
	want := []string{"cr-lrp:claim", "l3:claim", "l3-other:release"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("decisions %v, want %v", got, want)
	}
	if !res.Bound["cr-lrp"] || !res.Bound["l3"] || !res.Bound["l3-mine"] || res.Bound["l3-other"] || res.Bound["cr-none"] {
		t.Fatalf("bound = %v", res.Bound)
	}
}
