package ofctrl

import (
	"fmt"
	"strconv"
	"strings"
)

// defaultPriority is OpenFlow's default flow priority; ovs-ofctl omits
// "priority=" when printing a flow with this priority.
const defaultPriority = 32768

// ParseDumpFlows parses the output of `ovs-ofctl -O OpenFlow15 dump-flows
// --no-stats --no-names BR [filter]` and returns the flows whose cookie is
// ours, with the owner tag removed from their cookies. Flows of other owners
// are skipped. A line it cannot parse is an error naming the line.
func ParseDumpFlows(o Owner, out string) ([]Flow, error) {
	var flows []Flow
	for n, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "OFPST_FLOW") || strings.HasPrefix(line, "NXST_FLOW") {
			continue
		}
		f, cookie, err := parseDumpedFlow(line)
		if err != nil {
			return nil, fmt.Errorf("dump-flows line %d %q: %w", n+1, line, err)
		}
		if !o.OwnsCookie(cookie) {
			continue
		}
		f.Cookie = cookie &^ o.Mask
		flows = append(flows, f)
	}
	return flows, nil
}

// parseDumpedFlow parses one flow as dump-flows prints it:
// "cookie=0x5, table=8, priority=50,ip,nw_src=10.0.0.0/24 actions=drop",
// where cookie and table are omitted when 0, "priority=" when it is 32768,
// and statistics fields ("duration=…, ") may precede the match.
func parseDumpedFlow(line string) (Flow, uint64, error) {
	f := Flow{Priority: defaultPriority}
	var cookie uint64
	rest := line
	for {
		if n, ok := headerFlag(rest); ok {
			rest = rest[n:]
			continue
		}
		eq := strings.IndexByte(rest, '=')
		sep := strings.Index(rest, ", ")
		if eq < 0 || sep < 0 || sep < eq {
			break
		}
		key, val := rest[:eq], rest[eq+1:sep]
		if !headerFields[key] || strings.ContainsAny(val, ", ") {
			break
		}
		switch key {
		case "cookie":
			c, err := strconv.ParseUint(val, 0, 64)
			if err != nil {
				return f, 0, fmt.Errorf("cookie %q: %w", val, err)
			}
			cookie = c
		case "table":
			t, err := strconv.ParseUint(val, 10, 8)
			if err != nil {
				return f, 0, fmt.Errorf("table %q: %w", val, err)
			}
			f.Table = uint8(t)
		}
		rest = rest[sep+2:]
	}
	var match string
	if a, ok := strings.CutPrefix(rest, "actions="); ok {
		f.Actions = a
	} else if i := strings.Index(rest, " actions="); i >= 0 {
		match, f.Actions = rest[:i], rest[i+len(" actions="):]
	} else {
		return f, 0, fmt.Errorf("no actions")
	}
	if err := f.setPriorityMatch(match); err != nil {
		return f, 0, err
	}
	return f, cookie, nil
}

// headerFields are the "key=value, " items dump-flows prints before a match.
var headerFields = map[string]bool{
	"cookie": true, "table": true, "duration": true, "n_packets": true, "n_bytes": true,
	"idle_age": true, "hard_age": true, "idle_timeout": true, "hard_timeout": true, "importance": true,
}

// headerFlag recognizes the valueless flags dump-flows may print before a
// match, each followed by a space ("reset_counts priority=1 actions=drop").
// It returns the length to skip.
func headerFlag(s string) (int, bool) {
	for _, f := range []string{"send_flow_rem", "check_overlap", "reset_counts", "no_packet_counts", "no_byte_counts"} {
		if strings.HasPrefix(s, f+", ") {
			return len(f) + 2, true
		}
		if strings.HasPrefix(s, f+" ") {
			return len(f) + 1, true
		}
	}
	return 0, false
}

// setPriorityMatch splits "priority=N,match" (or "match", or "priority=N").
func (f *Flow) setPriorityMatch(s string) error {
	f.Priority = defaultPriority
	if p, ok := strings.CutPrefix(s, "priority="); ok {
		num, rest, _ := strings.Cut(p, ",")
		v, err := strconv.ParseUint(num, 10, 16)
		if err != nil {
			return fmt.Errorf("priority %q: %w", num, err)
		}
		f.Priority = uint16(v)
		s = rest
	}
	f.Match = s
	return nil
}

// ParseFlowMods parses the output of `ovs-ofctl -O OpenFlow15 parse-flows
// FILE` for n flows given as "table=T,priority=P,MATCH,actions=A" (no cookie
// or other options) and returns each flow's canonical match and actions, in
// input order (flow mods are numbered by xid 1..n).
func ParseFlowMods(out string, n int) (matches, actions []string, err error) {
	matches, actions = make([]string, n), make([]string, n)
	seen := 0
	for ln, line := range strings.Split(out, "\n") {
		const pfx = "OFPT_FLOW_MOD (OF1.5) (xid="
		if !strings.HasPrefix(line, pfx) {
			continue
		}
		xidText, body, ok := strings.Cut(line[len(pfx):], "): ADD ")
		if !ok {
			return nil, nil, fmt.Errorf("parse-flows line %d %q: not an ADD flow mod", ln+1, line)
		}
		xid, err := strconv.ParseUint(xidText, 0, 32)
		if err != nil || xid < 1 || int(xid) > n {
			return nil, nil, fmt.Errorf("parse-flows line %d %q: xid %q out of range 1..%d", ln+1, line, xidText, n)
		}
		if strings.HasPrefix(body, "table:") {
			_, body, _ = strings.Cut(body, " ")
		}
		var m, a string
		if rest, ok := strings.CutPrefix(body, "actions="); ok {
			a = rest
		} else if i := strings.Index(body, " actions="); i >= 0 {
			m, a = body[:i], body[i+len(" actions="):]
		} else {
			return nil, nil, fmt.Errorf("parse-flows line %d %q: no actions", ln+1, line)
		}
		if strings.Contains(m, " ") {
			return nil, nil, fmt.Errorf("parse-flows line %d %q: unexpected flow mod options", ln+1, line)
		}
		var f Flow
		if err := f.setPriorityMatch(m); err != nil {
			return nil, nil, fmt.Errorf("parse-flows line %d %q: %w", ln+1, line, err)
		}
		matches[xid-1], actions[xid-1] = f.Match, a
		seen++
	}
	if seen != n {
		return nil, nil, fmt.Errorf("parse-flows printed %d flow mods for %d flows", seen, n)
	}
	return matches, actions, nil
}

// NormalizeInput renders flows as parse-flows input, one per line, without
// cookies (a cookie does not change how OVS prints the match or actions).
func NormalizeInput(flows []Flow) string {
	var b strings.Builder
	for _, f := range flows {
		b.WriteString(f.text(0, true))
		b.WriteByte('\n')
	}
	return b.String()
}

// ParseDumpGroups parses `ovs-ofctl -O OpenFlow15 dump-groups BR` output and
// returns the groups in the owner's range.
func ParseDumpGroups(o Owner, out string) ([]Group, error) {
	var groups []Group
	for n, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "OFPST_GROUP_DESC") {
			continue
		}
		g, err := parseGroup(line)
		if err != nil {
			return nil, fmt.Errorf("dump-groups line %d %q: %w", n+1, line, err)
		}
		if o.OwnsGroup(g.ID) {
			groups = append(groups, g)
		}
	}
	return groups, nil
}

// ParseGroupMod parses `ovs-ofctl -O OpenFlow15 parse-group GROUP` output.
func ParseGroupMod(out string) (Group, error) {
	for _, line := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(line), "ADD "); ok {
			return parseGroup(s)
		}
	}
	return Group{}, fmt.Errorf("parse-group printed no group mod: %q", out)
}

func parseGroup(s string) (Group, error) {
	rest, ok := strings.CutPrefix(s, "group_id=")
	if !ok {
		return Group{}, fmt.Errorf("no group_id")
	}
	id, spec, _ := strings.Cut(rest, ",")
	v, err := strconv.ParseUint(id, 10, 32)
	if err != nil {
		return Group{}, fmt.Errorf("group_id %q: %w", id, err)
	}
	return Group{ID: uint32(v), Spec: spec}, nil
}

// BundleError is the flow or group ovs-vswitchd rejected in a bundle, as
// `ovs-ofctl bundle` reports it on stderr ("Error OFPBAC_BAD_OUT_GROUP for:
// OFPT_FLOW_MOD (OF1.5) (xid=0x7): ADD table:30 priority=1 actions=group:77").
type BundleError struct {
	Reason  string // e.g. "OFPBAC_BAD_OUT_GROUP"
	IsGroup bool
	Flow    FlowKey // the rejected flow (match in ovs-ofctl's canonical form)
	GroupID uint32  // the rejected group
}

// ParseBundleError finds the first rejected flow or group mod in the stderr
// of a failed `ovs-ofctl bundle`; ok is false if there is none (for example
// when the switch could not be reached).
func ParseBundleError(stderr string) (e BundleError, ok bool) {
	lines := strings.Split(stderr, "\n")
	for i, line := range lines {
		rest, found := strings.CutPrefix(line, "Error ")
		if !found {
			continue
		}
		reason, msg, found := strings.Cut(rest, " for: ")
		if !found {
			continue
		}
		e.Reason = reason
		switch {
		case strings.HasPrefix(msg, "OFPT_FLOW_MOD"):
			_, body, found := strings.Cut(msg, "): ")
			if !found {
				continue
			}
			_, body, _ = strings.Cut(body, " ") // ADD, MOD_STRICT, DEL_STRICT…
			if t, found := strings.CutPrefix(body, "table:"); found {
				num, rest, _ := strings.Cut(t, " ")
				v, err := strconv.ParseUint(num, 10, 8)
				if err != nil {
					continue
				}
				e.Flow.Table, body = uint8(v), rest
			}
			var m string
			if !strings.HasPrefix(body, "actions=") {
				m, _, _ = strings.Cut(body, " ")
			}
			var f Flow
			if err := f.setPriorityMatch(m); err != nil {
				continue
			}
			e.Flow.Priority, e.Flow.Match = f.Priority, f.Match
			return e, true
		case strings.HasPrefix(msg, "OFPT_GROUP_MOD") && i+1 < len(lines):
			_, body, _ := strings.Cut(strings.TrimSpace(lines[i+1]), " ")
			g, err := parseGroup(body)
			if err != nil {
				continue
			}
			e.IsGroup, e.GroupID = true, g.ID
			return e, true
		}
	}
	return e, false
}
