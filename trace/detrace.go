package trace

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/govn/govn/lflow/of"
)

// OpenFlowFlow returns the trace's initial packet as an ofproto/trace flow
// for a packet arriving on OpenFlow port inPort of the integration bridge:
// the packet's header fields, without the logical registers, metadata and
// conntrack state that the bridge's own flows set.
func (tr *Trace) OpenFlowFlow(inPort uint32) string {
	parts := []string{"in_port=" + strconv.FormatUint(uint64(inPort), 10)}
	for _, kv := range strings.Split(tr.Packet, ",") {
		k, _, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(k, "reg"), strings.HasPrefix(k, "xreg"), strings.HasPrefix(k, "xxreg"),
			k == "metadata", strings.HasPrefix(k, "ct_"), strings.HasPrefix(k, "tun_"), k == "in_port", k == "pkt_mark":
			continue
		}
		parts = append(parts, kv)
	}
	return strings.Join(parts, ",")
}

// CTNextFlags renders a ct_state (ParseCTState) as ofproto/trace's
// --ct-next argument, e.g. "trk,new".
func CTNextFlags(st uint32) string {
	names := []struct {
		bit  uint32
		name string
	}{{of.CSTrk, "trk"}, {of.CSNew, "new"}, {of.CSEst, "est"}, {of.CSRel, "rel"}, {of.CSRpl, "rpl"},
		{of.CSInv, "inv"}, {of.CSSNAT, "snat"}, {of.CSDNAT, "dnat"}}
	var out []string
	for _, n := range names {
		if st&n.bit != 0 {
			out = append(out, n.name)
		}
	}
	return strings.Join(out, ",")
}

var cookieRE = regexp.MustCompile(`cookie[ =](0x[0-9a-fA-F]+)`)

// DetraceLine is one logical flow an OpenFlow cookie maps back to.
type DetraceLine struct {
	Cookie string   `json:"cookie"`
	Flow   *FlowHit `json:"flow"`
}

// Detrace annotates ofproto/trace output (ovn-detrace built in): after
// every line whose cookie names a logical flow it adds the logical flows
// whose UUID begins with it (govn's controller puts the first 32 bits of
// the logical flow UUID in the low 32 bits of the cookie), with datapath, stage, priority, match,
// actions and the northbound object. It returns the annotated text and
// the mapped flows in order of appearance.
func (t *Tracer) Detrace(out string) (string, []DetraceLine) {
	var sb strings.Builder
	var lines []DetraceLine
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		sb.WriteString(l)
		sb.WriteByte('\n')
		m := cookieRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		c, err := strconv.ParseUint(m[1][2:], 16, 64)
		// The low 32 bits name the logical flow; the controller keeps its
		// owner tag in the top bits; 0 there is a physical flow.
		c &= 0xffffffff
		if err != nil || c == 0 {
			continue
		}
		ind := len(l) - len(strings.TrimLeft(l, " "))
		hits := t.flowsByCookie(c)
		if len(hits) == 0 {
			fmt.Fprintf(&sb, "%s    * no logical flow with cookie %#x in the southbound snapshot\n", strings.Repeat(" ", ind), c)
			continue
		}
		for _, h := range hits {
			lines = append(lines, DetraceLine{Cookie: m[1], Flow: h})
			fmt.Fprintf(&sb, "%s    * logical flow %s: datapath %s, %s table %d (%s), priority %d\n", strings.Repeat(" ", ind),
				h.UUID, h.Datapath, h.Pipeline, h.Table, h.Stage, h.Priority)
			fmt.Fprintf(&sb, "%s      match (%s) actions (%s)", strings.Repeat(" ", ind), h.Match, h.Actions)
			if h.Ref != nil {
				fmt.Fprintf(&sb, " from %s", h.Ref)
			}
			sb.WriteByte('\n')
		}
	}
	return sb.String(), lines
}

// flowsByCookie finds the logical flows whose UUID's first 32 bits are c
// (one FlowHit per datapath the flow applies to).
func (t *Tracer) flowsByCookie(c uint64) []*FlowHit {
	prefix := fmt.Sprintf("%08x", c)
	var out []*FlowHit
	for _, d := range t.dps {
		for _, fs := range d.flows {
			for _, cf := range fs {
				if strings.HasPrefix(strings.ToLower(cf.f.UUID), prefix) {
					out = append(out, t.hitFor(cf, d))
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].UUID != out[j].UUID {
			return out[i].UUID < out[j].UUID
		}
		return out[i].Datapath < out[j].Datapath
	})
	return out
}

func (t *Tracer) hitFor(cf *cflow, d *dpInfo) *FlowHit {
	f := cf.f
	return &FlowHit{UUID: f.UUID, Datapath: d.label(), Pipeline: f.Pipeline, Table: f.Table, Stage: f.Stage(),
		Priority: f.Priority, Match: f.Match, Actions: f.Actions, Source: f.ExternalIDs["source"], Ref: f.Ref(), Trivial: cf.trivial}
}
