package action_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/govn/govn/lflow/action"
	"github.com/govn/govn/lflow/lex"
	"github.com/govn/govn/lflow/of"
	"github.com/govn/govn/lflow/symtab"
)

// FuzzParseActions checks, for any input, that Parse never panics and
// reports errors as positioned *lex.Error; that a successful parse prints a
// canonical form which parses back to itself; and that Encode and Execute
// never panic on what Parse accepts.
func FuzzParseActions(f *testing.F) {
	for _, name := range []string{"action-parse.txt", "action-errors.txt"} {
		data, err := os.ReadFile("../testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if l != "" && !strings.HasPrefix(l, "#") && !strings.HasPrefix(l, "=>") {
				src, _ := testParams(l)
				f.Add(src)
			}
		}
	}
	st := symtab.Default()
	f.Fuzz(func(t *testing.T, src string) {
		parsed, err := action.Parse(src, st)
		if err != nil {
			var le *lex.Error
			if !errors.As(err, &le) || le.Pos.Line < 1 || le.Pos.Col < 1 {
				t.Fatalf("error without position: %v", err)
			}
			return
		}
		canon := parsed.String()
		again, err := action.Parse(canon, st)
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", canon, src, err)
		}
		if again.String() != canon {
			t.Fatalf("canonical form not stable: %q -> %q", canon, again.String())
		}
		_, params := testParams("")
		if _, err := action.Encode(parsed.Actions, params); err != nil {
			var le *lex.Error
			if !errors.As(err, &le) {
				t.Fatalf("encode error without position: %v", err)
			}
		}
		p := tcpPacket()
		ctx := &action.ExecContext{Table: 10, LookupPort: func(name string) (uint32, bool) { k, ok := ports[name]; return k, ok }}
		if _, err := action.Execute(parsed.Actions, &p, ctx); err != nil {
			var le *lex.Error
			if !errors.As(err, &le) {
				t.Fatalf("execute error without position: %v", err)
			}
		}
		var z of.Packet
		action.Execute(parsed.Actions, &z, ctx)
	})
}

// FuzzParseUserData checks that decoding controller userdata (which arrives
// from the switch in packet-ins) never panics, and that everything Encode
// produces for the golden inputs decodes.
func FuzzParseUserData(f *testing.F) {
	for _, l := range []string{
		`arp { output; };`, `put_arp(inport, arp.spa, arp.sha);`, `log(name="a", verdict=drop);`,
		`reg0[3] = put_dhcp_opts(offerip = 10.0.0.2, dns_server = {8.8.8.8, 7.7.7.7});`,
		`reg0[3] = put_dhcpv6_opts(ia_addr = fd00::4, server_id = 00:00:00:00:10:02);`, `reg0[4] = dns_lookup();`,
	} {
		parsed, err := action.Parse(l, symtab.Default())
		if err != nil {
			f.Fatal(err)
		}
		_, params := testParams("")
		enc, err := action.Encode(parsed.Actions, params)
		if err != nil {
			f.Fatal(err)
		}
		for _, a := range enc.Actions {
			if c, ok := a.(of.Controller); ok {
				if _, err := action.ParseUserData(c.UserData); err != nil {
					f.Fatalf("%s: %v", l, err)
				}
				f.Add(c.UserData)
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := action.ParseUserData(b)
		if err == nil && u.Op.String() == "" {
			t.Fatal("decoded an opcode without a name")
		}
	})
}
