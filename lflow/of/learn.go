package of

import (
	"strconv"
	"strings"

	"github.com/govn/govn/lflow/bits"
)

// DefaultPriority is OpenFlow's default flow priority (OFP_DEFAULT_PRIORITY),
// the priority of a learned flow whose learn action gives none.
const DefaultPriority = 32768

// LearnKind says what a learn spec does in the learned flow.
type LearnKind uint8

const (
	// LearnMatch: the learned flow matches Dst against the source (a field
	// of the packet executing learn, or an immediate value).
	LearnMatch LearnKind = iota
	// LearnLoad: the learned flow loads the source into Dst.
	LearnLoad
	// LearnOutput: the learned flow outputs to the port in the source field.
	LearnOutput
)

// LearnSpec is one spec of a learn action. The source is the packet's
// field Src when Src.Field is not FieldNone, otherwise the immediate Value
// (right-aligned, Dst.Bits() wide). Dst is unused for LearnOutput.
type LearnSpec struct {
	Kind  LearnKind
	Dst   Subfield
	Src   Subfield
	Value bits.U128
}

// Bits returns the number of bits the spec moves.
func (s LearnSpec) Bits() int {
	if s.Kind == LearnOutput {
		return s.Src.Bits()
	}
	return s.Dst.Bits()
}

func (s LearnSpec) String() string {
	switch s.Kind {
	case LearnLoad:
		if s.Src.Field != FieldNone {
			return "load:" + s.Src.String() + "->" + s.Dst.String()
		}
		return "load:" + s.Value.Hex() + "->" + s.Dst.String()
	case LearnOutput:
		return "output:" + s.Src.String()
	}
	if s.Src.Field != FieldNone {
		if s.Src == s.Dst {
			return s.Dst.String()
		}
		return s.Dst.String() + "=" + s.Src.String()
	}
	f := s.Dst.Field
	if s.Dst.Ofs == 0 && s.Dst.Bits() == f.Width() {
		switch f.Format() {
		case FormatCTState, FormatFrag:
			return f.String() + "=" + s.Value.Hex()
		}
		return f.String() + "=" + FormatValue(f.Format(), s.Value)
	}
	return s.Dst.String() + "=" + s.Value.Hex()
}

// Learn adds or refreshes a flow in table Table whose match and actions
// are built from Specs and the packet executing the action (ovs-actions(7)
// "learn"). Timeouts are in seconds, 0 = none.
type Learn struct {
	Table                          int
	IdleTimeout, HardTimeout       int
	FinIdleTimeout, FinHardTimeout int
	Priority                       int // OpenFlow's default is DefaultPriority
	Cookie                         uint64
	SendFlowRem, DeleteLearned     bool
	Specs                          []LearnSpec
}

// String prints "learn(table=T,idle_timeout=I,...,priority=P,delete_learned,
// cookie=0x..,SPEC,...)"; timeouts and the cookie only when nonzero.
func (a Learn) String() string {
	var sb strings.Builder
	sb.WriteString("learn(table=")
	sb.WriteString(strconv.Itoa(a.Table))
	num := func(name string, v int) {
		if v != 0 {
			sb.WriteString("," + name + "=" + strconv.Itoa(v))
		}
	}
	num("idle_timeout", a.IdleTimeout)
	num("hard_timeout", a.HardTimeout)
	num("fin_idle_timeout", a.FinIdleTimeout)
	num("fin_hard_timeout", a.FinHardTimeout)
	sb.WriteString(",priority=" + strconv.Itoa(a.Priority))
	if a.SendFlowRem {
		sb.WriteString(",send_flow_rem")
	}
	if a.DeleteLearned {
		sb.WriteString(",delete_learned")
	}
	if a.Cookie != 0 {
		sb.WriteString(",cookie=" + bits.From64(a.Cookie).Hex())
	}
	for _, s := range a.Specs {
		sb.WriteByte(',')
		sb.WriteString(s.String())
	}
	sb.WriteByte(')')
	return sb.String()
}
