package ofctrl

import (
	"strings"
	"testing"

	"github.com/govn/govn/lflow/of"
)

func TestParseRoundTrip(t *testing.T) {
	for _, m := range []string{
		"",
		"tcp,reg15=0x3,metadata=0x1,ip_src=10.0.0.0/8,tcp_dst=80",
		"ip,ct_state=+new-est+trk,ip_dst=10.0.0.1",
		"ct_state=0x100/0x100",
		"ipv6,reg0=0x5/0xff,eth_src=00:11:22:00:00:00/ff:ff:ff:00:00:00,ipv6_src=fd00::/64,nw_frag=later",
		"icmp6,icmpv6_type=135,nd_target=fe80::1",
		"arp,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/255.0.255.0",
		"tcp,tcp_src=0x50/0xfff0",
		"tun_id=0x5,tun_metadata0=0x10002/0x7fffffff",
	} {
		got, err := ParseMatch(m)
		if err != nil {
			t.Errorf("ParseMatch(%q): %v", m, err)
			continue
		}
		if s := got.String(); s != m {
			t.Errorf("ParseMatch(%q).String() = %q", m, s)
		}
	}
	for _, a := range []string{
		"drop",
		"set_field:0x1->reg13,set_field:0x50/0xf0->reg0,resubmit(,8),resubmit(in_port,9)",
		"set_field:10.0.0.0/255.255.0.0->ip_src,set_field:00:11:22:33:44:55->eth_dst,set_field:fe80::1->ipv6_dst",
		"ct(commit,force,table=9,zone=reg13[0..15],alg=ftp,nat(src=10.0.0.1-10.0.0.9:1000-2000,random),exec(set_field:0x2/0x2->ct_mark))",
		"ct(table=10,zone=5,nat),ct(commit,nat(dst=[fe80::1]:80))",
		"controller(max_len=128,reason=no_match,userdata=00.01.ff,pause,meter_id=3),controller",
		"check_pkt_larger(1500)->reg0[6],clone(output:1,exit),group:4,push_vlan:0x8100,pop_vlan,note:01.02",
		"move:reg14[]->reg15[],push:xxreg0[0..63],pop:reg1[],output:reg15[],output:in_port,output(port=3,max_len=64)",
		"conjunction(5,1/2),conjunction(6,2/3),dec_ttl,ct_clear",
	} {
		as, err := ParseActions(a)
		if err != nil {
			t.Errorf("ParseActions(%q): %v", a, err)
			continue
		}
		if s := of.ActionsString(as); s != a {
			t.Errorf("ParseActions(%q) prints %q", a, s)
		}
	}
	g := "type=select,selection_method=hash,fields(ip_src,ip_dst),bucket=bucket_id=0,weight:100,actions=ct(commit,table=21,zone=reg13[0..15],nat(dst=10.0.0.2:80)),bucket=bucket_id=1,weight:50,actions=output:2"
	og, err := ParseGroup(7, g)
	if err != nil {
		t.Fatal(err)
	}
	if s := og.String(); s != "group_id=7,"+g {
		t.Errorf("ParseGroup prints %q", s)
	}
}

func TestParseErrors(t *testing.T) {
	for m, want := range map[string]string{
		"ipx":               `unknown keyword "ipx"`,
		"nw_dst=10.0.0.1":   `unknown field "nw_dst"`,
		"ip_src=10.0.0.300": `is not an IPv4 address`,
		"ip_src=1.2.3.4/40": `prefix length 40`,
		"ct_state=+bogus":   `unknown ct_state flag "bogus"`,
		"reg0=0x1,reg0=0x2": `contradicts`,
	} {
		if _, err := ParseMatch(m); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseMatch(%q) = %v, want %q", m, err, want)
		}
	}
	for a, want := range map[string]string{
		"multipath(nw_src,50,hrw,12,0,reg0[0..3])":  `unknown action`,
		"learn(idle_timeout=5)":                     `no table=`,
		"learn(table=255)":                          `bad table`,
		"learn(table=1,priority=70000)":             `bad priority`,
		"learn(table=1,bogus[])":                    `unknown field "bogus"`,
		"learn(table=1,ip_proto=300)":               `does not fit in 8 bits`,
		"learn(table=1,reg0[0..3]=reg1[])":          `source has 32 bits`,
		"learn(table=1,load:0x1ff->reg0[0..7])":     `does not fit in 8 bits`,
		"learn(table=1,load:0x1)":                   `want load:SRC->DST`,
		"learn(table=1,cookie=0x1ffffffffffffffff)": `exceeds 64 bits`,
		"load:0x1->reg0[]":                          `unknown action`,
		"resubmit(,255)":                            `bad table`,
		"set_field:0x5->bogus":                      `unknown field "bogus"`,
		"move:reg0[0..3]->reg1[]":                   `source has 4 bits`,
		"ct(commit,bogus)":                          `unknown ct argument`,
		"conjunction(1,3/2)":                        `bad conjunction`,
		"output:reg0[40]":                           `bad bit range`,
		"clone(output:1":                            `unbalanced`,
	} {
		if _, err := ParseActions(a); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseActions(%q) = %v, want %q", a, err, want)
		}
	}
	if _, err := ParseGroup(1, "type=all,bucket=output:1"); err == nil {
		t.Error("bucket without actions= accepted")
	}
}
