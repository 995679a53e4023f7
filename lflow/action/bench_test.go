package action_test

import (
	"testing"

	"github.com/govn/govn/lflow/action"
	"github.com/govn/govn/lflow/symtab"
)

var benchInputs = []struct{ name, src string }{
	{"next", `next;`},
	{"ct_commit_next", `ct_commit { ct_mark = 1; }; next;`},
	{"outport_output", `outport = "p1"; output;`},
	{"lb", `ct_lb_mark(backends=10.0.0.2:80,10.0.0.3:80,10.0.0.4:80);`},
}

// BenchmarkParseEncode measures parsing plus encoding of typical actions
// (one op = one action string to OpenFlow actions).
func BenchmarkParseEncode(b *testing.B) {
	st := symtab.Default()
	for _, in := range benchInputs {
		b.Run(in.name, func(b *testing.B) {
			_, params := testParams("")
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				parsed, err := action.Parse(in.src, st)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := action.Encode(parsed.Actions, params); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkExecute measures executing typical actions on a packet.
func BenchmarkExecute(b *testing.B) {
	st := symtab.Default()
	parsed, err := action.Parse(`outport = "p1"; eth.src <-> eth.dst; ip.ttl--; ct_commit { ct_mark = 1; }; next;`, st)
	if err != nil {
		b.Fatal(err)
	}
	ctx := &action.ExecContext{Table: 10, LookupPort: func(name string) (uint32, bool) { k, ok := ports[name]; return k, ok }}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p := tcpPacket()
		if _, err := action.Execute(parsed.Actions, &p, ctx); err != nil {
			b.Fatal(err)
		}
	}
}
