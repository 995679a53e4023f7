// Package binding decides which Port_Binding rows this chassis claims and
// releases, given the logical ports its local OVS interfaces name
// (external_ids:iface-id). It is pure: the caller turns Decisions into one
// southbound transaction.
//
// Rules:
//   - A VIF port (type "") whose logical port has a local interface with an
//     OpenFlow port is claimed: chassis = this chassis, up = true.
//   - A port bound here without such an interface is released: chassis and
//     up cleared.
//   - requested_chassis, if set, names the only chassis allowed to claim
//     (by name or hostname); others never claim, and release if bound.
//   - Two chassis that both have an interface for one port would fight over
//     it. The tie is broken deterministically: the chassis whose name sorts
//     first keeps it. A chassis does not take a port from a live chassis
//     (one with a Chassis row) that sorts before it, and reports the
//     conflict; it does take it from one that sorts after it or is gone.
//     Both chassis reach the same answer without talking to each other.
//   - Gateway ports (type "l3gateway" and "chassisredirect") are not bound by
//     interfaces: the chassis named by Port.GatewayChassis (l3gateway:
//     options:l3gateway-chassis; chassisredirect: the ActiveGateway of the
//     port's HA_Chassis_Group) claims it, even from another chassis, and any
//     other chassis that holds it releases it.
package binding

import (
	"fmt"
	"slices"
)

// Port is the part of a Port_Binding the decision needs.
type Port struct {
	UUID             string
	LogicalPort      string
	Type             string // only "" (VIF) ports are bound by iface-id
	Chassis          string // name of the chassis it is bound to, "" if none
	RequestedChassis string // name (or hostname) of the requested chassis, "" if none
	Up               bool
	// GatewayChassis is the chassis a gateway port (TypeL3Gateway,
	// TypeChassisRedirect) belongs on, "" if none.
	GatewayChassis string
}

// Gateway port types.
const (
	TypeL3Gateway       = "l3gateway"
	TypeChassisRedirect = "chassisredirect"
)

// HAChassis is one member of an HA_Chassis_Group (or a Gateway_Chassis row).
type HAChassis struct {
	Chassis  string // chassis name
	Priority int
}

// ActiveGateway returns the chassis that should hold a chassisredirect
// port: the highest-priority member that has a Chassis row (ties: the name
// that sorts first), or "" if none does. When that chassis' row goes away,
// the next one takes over.
func ActiveGateway(members []HAChassis, live map[string]bool) string {
	best := -1
	for i, m := range members {
		if m.Chassis == "" || !live[m.Chassis] {
			continue
		}
		if best < 0 || m.Priority > members[best].Priority ||
			m.Priority == members[best].Priority && m.Chassis < members[best].Chassis {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return members[best].Chassis
}

// Input is this chassis and what it sees.
type Input struct {
	Chassis  string // our chassis name
	Hostname string // our hostname (requested-chassis may name it)
	// Ifaces maps local iface-id values to whether the interface is ready
	// (has an OpenFlow port).
	Ifaces map[string]bool
	// LiveChassis holds the names of chassis that have a Chassis row.
	LiveChassis map[string]bool
	Ports       []Port
}

// Action is what to do with one Port_Binding.
type Action uint8

const (
	// Claim: set chassis to us and up to true.
	Claim Action = iota + 1
	// Release: clear chassis and up (the port is bound here but has no
	// local interface any more, or another chassis is requested).
	Release
	// SetUp: the port is ours but up is not true.
	SetUp
)

func (a Action) String() string {
	switch a {
	case Claim:
		return "claim"
	case Release:
		return "release"
	case SetUp:
		return "set-up"
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Decision is one change to make.
type Decision struct {
	Port   Port
	Action Action
}

// Conflict is a port two chassis both have an interface for.
type Conflict struct {
	LogicalPort string
	Holder      string // the chassis that keeps it
	Loser       string // the chassis that does not claim it
}

func (c Conflict) String() string {
	return fmt.Sprintf("logical port %q has interfaces on chassis %s and %s; %s keeps it (its name sorts first)",
		c.LogicalPort, c.Holder, c.Loser, c.Holder)
}

// Result is the outcome of Decide.
type Result struct {
	Decisions []Decision
	// Conflicts we yield in (another chassis keeps the port).
	Conflicts []Conflict
	// Bound is the set of logical ports that are (or are being) bound here
	// after the decisions: the ports whose traffic this chassis handles.
	Bound map[string]bool
	// Unknown lists local iface-ids without a Port_Binding (yet).
	Unknown []string
}

// Decide returns the changes this chassis should make, sorted by logical
// port.
func Decide(in *Input) *Result {
	res := &Result{Bound: map[string]bool{}}
	known := map[string]bool{}
	ports := slices.Clone(in.Ports)
	slices.SortFunc(ports, func(a, b Port) int {
		if a.LogicalPort != b.LogicalPort {
			if a.LogicalPort < b.LogicalPort {
				return -1
			}
			return 1
		}
		if a.UUID < b.UUID {
			return -1
		}
		if a.UUID > b.UUID {
			return 1
		}
		return 0
	})
	for _, p := range ports {
		known[p.LogicalPort] = true
		if p.Type == TypeL3Gateway || p.Type == TypeChassisRedirect {
			want, mine := p.GatewayChassis != "" && p.GatewayChassis == in.Chassis, p.Chassis == in.Chassis
			switch {
			case want && !mine:
				res.Bound[p.LogicalPort] = true
				res.Decisions = append(res.Decisions, Decision{p, Claim})
			case want:
				res.Bound[p.LogicalPort] = true
				if !p.Up {
					res.Decisions = append(res.Decisions, Decision{p, SetUp})
				}
			case mine:
				res.Decisions = append(res.Decisions, Decision{p, Release})
			}
			continue
		}
		if p.Type != "" {
			continue
		}
		ready, local := in.Ifaces[p.LogicalPort]
		requestedOK := p.RequestedChassis == "" || p.RequestedChassis == in.Chassis ||
			(in.Hostname != "" && p.RequestedChassis == in.Hostname)
		have := local && requestedOK
		mine := p.Chassis == in.Chassis
		switch {
		case mine && !have:
			res.Decisions = append(res.Decisions, Decision{p, Release})
		case mine && ready:
			res.Bound[p.LogicalPort] = true
			if !p.Up {
				res.Decisions = append(res.Decisions, Decision{p, SetUp})
			}
		case mine:
			// The interface has no OpenFlow port yet: keep the claim.
		case !have || !ready:
		case p.Chassis == "":
			res.Bound[p.LogicalPort] = true
			res.Decisions = append(res.Decisions, Decision{p, Claim})
		default:
			// Bound elsewhere. With requested_chassis naming us, we win.
			other := p.Chassis
			if p.RequestedChassis == "" && in.LiveChassis[other] && other < in.Chassis {
				res.Conflicts = append(res.Conflicts, Conflict{LogicalPort: p.LogicalPort, Holder: other, Loser: in.Chassis})
				continue
			}
			res.Bound[p.LogicalPort] = true
			res.Decisions = append(res.Decisions, Decision{p, Claim})
		}
	}
	for id := range in.Ifaces {
		if !known[id] {
			res.Unknown = append(res.Unknown, id)
		}
	}
	slices.Sort(res.Unknown)
	return res
}
