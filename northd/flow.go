package northd

import (
	"fmt"
	"sort"
	"strings"
)

// Flow is one desired logical flow of one datapath.
type Flow struct {
	Stage    Stage
	Priority uint16
	Match    string
	Actions  string
	// Source is the generator file, e.g. "northd/acl.go"
	// (Logical_Flow external_ids:source).
	Source string
	// Ref names the northbound row that produced the flow, as an
	// external_ids key and value: RefACL/<ACL uuid>, RefLSP/<port name>.
	// Empty for a datapath's default flows.
	RefKey, RefVal string
}

// Logical_Flow external_ids keys northd writes. Every flow has stage-name
// and source; flows produced by one northbound row also name it, so tools
// (trace, lflow-list) can map a flow back to its intent.
const (
	ExtStageName = "stage-name" // OVN's stage name, e.g. "ls_in_acl"
	ExtSource    = "source"     // generator file, e.g. "northd/acl.go"
	RefACL       = "nb-acl"     // ACL row UUID
	RefLSP       = "nb-lsp"     // Logical_Switch_Port name
	RefLRP       = "nb-lrp"     // Logical_Router_Port name
	RefRoute     = "nb-route"   // Logical_Router_Static_Route UUID
	RefLB        = "nb-lb"      // Load_Balancer UUID
	RefNAT       = "nb-nat"     // NAT UUID
)

// key identifies a flow within a datapath for diffing: OVN's
// (pipeline, table, priority, match, actions).
type flowKey struct {
	stage    Stage
	priority uint16
	match    string
	actions  string
}

func (f *Flow) key() flowKey { return flowKey{f.Stage, f.Priority, f.Match, f.Actions} }

// String is the canonical one-line text used by golden files:
// "ls_in_acl(8) 2001 match=(...) actions=(...) [nb-acl=...]".
func (f *Flow) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s(%d) %d match=(%s) actions=(%s)", f.Stage.Name(), f.Stage.Table(), f.Priority, f.Match, f.Actions)
	if f.RefKey != "" {
		fmt.Fprintf(&sb, " %s=%s", f.RefKey, f.RefVal)
	}
	return sb.String()
}

// SortFlows orders flows as ovn-sbctl lflow-list does: by pipeline, table,
// descending priority, then match and actions.
func SortFlows(fs []Flow) {
	sort.Slice(fs, func(i, j int) bool { return flowLess(&fs[i], &fs[j]) })
}

func flowLess(a, b *Flow) bool {
	if a.Stage.Kind() != b.Stage.Kind() {
		return a.Stage.Kind() < b.Stage.Kind()
	}
	if a.Stage.Pipeline() != b.Stage.Pipeline() {
		return a.Stage.Pipeline() < b.Stage.Pipeline()
	}
	if a.Stage.Table() != b.Stage.Table() {
		return a.Stage.Table() < b.Stage.Table()
	}
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	if a.Match != b.Match {
		return a.Match < b.Match
	}
	return a.Actions < b.Actions
}

// Builder collects the flows one generator produces for one datapath.
type Builder struct {
	flows          []Flow
	source         string
	refKey, refVal string
	bad            []BadRow
}

// Add appends a flow tagged with the builder's current source and NB ref.
func (b *Builder) Add(stage Stage, prio uint16, match, actions string) {
	b.flows = append(b.flows, Flow{Stage: stage, Priority: prio, Match: match, Actions: actions,
		Source: b.source, RefKey: b.refKey, RefVal: b.refVal})
}

// Ref sets the NB row that the following flows come from ("" key clears it).
func (b *Builder) Ref(key, val string) { b.refKey, b.refVal = key, val }

// Bad records a northbound row that cannot be translated.
func (b *Builder) Bad(table, uuid, name string, err error) {
	b.bad = append(b.bad, BadRow{Table: table, UUID: uuid, Name: name, Err: err})
}

// BadRow is a northbound row northd skipped, with the reason.
type BadRow struct {
	Table string // "ACL", "Logical_Switch_Port", ...
	UUID  string
	Name  string // row name when it has one
	Err   error
}

func (r BadRow) String() string {
	s := r.Table + " " + r.UUID
	if r.Name != "" {
		s += " (" + r.Name + ")"
	}
	return s + ": " + r.Err.Error()
}

// quote returns s as a logical-flow string literal.
func quote(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case '\n':
			sb.WriteString(`\n`)
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}
