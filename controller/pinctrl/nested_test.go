package pinctrl

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/govn/govn/controller/pinctrl/ofp"
	"github.com/govn/govn/lflow/action"
	"github.com/govn/govn/lflow/symtab"
)

// The nested actions northd generates (arp{}, icmp4{}, nd_na{}, reject{})
// encode to binary without falling back to ovs-ofctl.
func TestEncodeNestedNorthdActions(t *testing.T) {
	for _, src := range []string{
		`arp { eth.dst = ff:ff:ff:ff:ff:ff; arp.spa = reg1; arp.tpa = reg0; arp.op = 1; output; };`,
		`icmp4 { eth.dst <-> eth.src; icmp4.type = 11; icmp4.code = 0; ip4.dst = ip4.src; ip4.src = 10.0.0.1; ip.ttl = 255; next; };`,
		`nd_na { eth.src = 0a:00:00:00:00:05; ip6.src = fd00::5; nd.target = fd00::5; nd.tll = 0a:00:00:00:00:05; outport = inport; flags.loopback = 1; output; };`,
		`reject { outport <-> inport; next(pipeline=egress,table=8); };`,
	} {
		parsed, err := action.Parse(src, symtab.Default())
		if err != nil {
			t.Fatal(err)
		}
		enc, err := action.Encode(parsed.Actions, &action.EncodeParams{Pipeline: action.Ingress, Table: 3,
			TableMap: func(_ action.Pipeline, n int) (int, bool) { return 8 + n, true }, OutputTable: 37, MACBindingTable: 66})
		if err != nil {
			t.Fatal(err)
		}
		ud := userDataOf(t, enc.Actions.String())
		if _, ok := EncodeNested(ud.Actions); !ok {
			t.Errorf("%s: nested actions %q need ovs-ofctl", src, ud.Actions)
		}
	}
}

func TestEncodeNestedGolden(t *testing.T) {
	acts, ok := EncodeNested("set_field:0x1/0x1->reg10,move:reg14[]->reg15[],push:eth_dst[],pop:eth_src[0..47],set_field:10.0.0.1->arp_spa,resubmit(,37)")
	if !ok {
		t.Fatal("not encoded")
	}
	want := [][]byte{
		ofp.SetField(ofp.Field{Class: 1, Field: 10, Value: []byte{0, 0, 0, 1}, Mask: []byte{0, 0, 0, 1}}),
		unhexT(t, "001c0018 0020 0000 0000 0000 00011c04 00011e04 00000000"),
		unhexT(t, "ffff0018 00002320 001b 0000 80000606 0030 000000000000"),
		unhexT(t, "ffff0018 00002320 001c 0000 80000806 0030 000000000000"),
		unhexT(t, "00190010 80002c04 0a000001 00000000"),
		ofp.ResubmitTable(37),
	}
	if len(acts) != len(want) {
		t.Fatalf("%d actions", len(acts))
	}
	for i := range want {
		if !bytes.Equal(acts[i], want[i]) {
			t.Errorf("action %d:\n got %x\nwant %x", i, acts[i], want[i])
		}
	}
	for _, s := range []string{"", "drop", "load:1->reg0[]", "set_field:1->tun_id", "move:reg0[0..3]->reg1[0..4]",
		"set_field:zz->eth_src", "resubmit(1,2)", "set_field:300->icmp_type", "ct(commit)"} {
		if _, ok := EncodeNested(s); ok {
			t.Errorf("%q encoded", s)
		}
	}
}

// userDataOf decodes the userdata of a controller(...) action text.
func userDataOf(t *testing.T, act string) action.UserData {
	t.Helper()
	i := strings.Index(act, "userdata=")
	if i < 0 {
		t.Fatalf("no userdata in %q", act)
	}
	s := act[i+len("userdata="):]
	if j := strings.IndexAny(s, ",)"); j >= 0 {
		s = s[:j]
	}
	b, err := hex.DecodeString(strings.ReplaceAll(s, ".", ""))
	if err != nil {
		t.Fatal(err)
	}
	u, err := action.ParseUserData(b)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
