package northd

// lrPassGen: the priority-0 "next;" flows of the router stages (NAT, load
// balancing and gateway redirect add higher-priority flows in lr_nat.go
// and lr_lb.go; ECMP stateful, IPv6 RA and packet-size checks have none
// yet).
type lrPassGen struct{}

func (lrPassGen) Name() string { return "northd/lr_pass.go" }

var lrPassStages = []Stage{
	LRInUnSNAT, LRInDefrag, LRInLBAffCheck, LRInDNAT, LRInLBAffLearn, LRInECMPStateful,
	LRInNDRAOptions, LRInNDRAResponse, LRInChkPktLen, LRInLargerPkts, LRInGWRedirect,
	LROutUnDNAT, LROutPostUnDNAT, LROutSNAT, LROutPostSNAT, LROutEgrLoop,
}

func (lrPassGen) Router(rc *RouterContext, b *Builder) {
	for _, s := range lrPassStages {
		b.Add(s, 0, "1", "next;")
	}
	b.Add(LROutChkDNATLocal, 0, "1", "reg9[4] = 0; next;")
	b.Add(LROutSNAT, 120, "nd_ns", "next;")
}
