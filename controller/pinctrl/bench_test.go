package pinctrl

import "testing"

func BenchmarkBuildICMP4Error(b *testing.B) {
	in := udp4(9, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildICMP4(in, true); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkHandlePutARPAndPlan(b *testing.B) {
	r := mapResolver{dps: map[uint32]string{7: "dp7"}, ports: map[[2]uint32]string{{7, 5}: "lp1"}}
	p := pin(arpReply, 7, map[int]uint32{14: 5, 0: 0x0a000002})
	none := func(BindingKey) (Existing, bool) { return Existing{}, false }
	b.ReportAllocs()
	for b.Loop() {
		l, err := HandlePutARP(p)
		if err != nil {
			b.Fatal(err)
		}
		if ins, _, _ := Plan([]Learned{l}, r, none); len(ins) != 1 {
			b.Fatal(ins)
		}
	}
}
