package of

import (
	"strconv"
	"strings"
)

// Flow is one OpenFlow flow.
type Flow struct {
	Table    uint8
	Priority uint16
	Cookie   uint64
	Match    Match
	Actions  Actions
}

// String prints f in `ovs-ofctl add-flows` file syntax, e.g.
// "table=44, priority=2002, cookie=0x1234, ip,reg15=0x3,metadata=0x1,ip_src=10.0.0.0/8 actions=resubmit(,45)".
func (f *Flow) String() string {
	var sb strings.Builder
	sb.WriteString("table=")
	sb.WriteString(strconv.Itoa(int(f.Table)))
	sb.WriteString(", priority=")
	sb.WriteString(strconv.Itoa(int(f.Priority)))
	sb.WriteString(", cookie=0x")
	sb.WriteString(strconv.FormatUint(f.Cookie, 16))
	if f.Match.Len() > 0 {
		sb.WriteString(", ")
		f.Match.AppendTo(&sb)
	}
	sb.WriteString(" actions=")
	sb.WriteString(ActionsString(f.Actions))
	return sb.String()
}

// FlowsString prints flows one per line (an add-flows file).
func FlowsString(fs []Flow) string {
	var sb strings.Builder
	for i := range fs {
		sb.WriteString(fs[i].String())
		sb.WriteByte('\n')
	}
	return sb.String()
}
