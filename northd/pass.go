package northd

// passGen: the priority-0 "next;" flows of the stages whose features govn
// does not generate yet (QoS, DHCP, DNS, external ports), so every packet walks the whole pipeline as in OVN.
type passGen struct{}

func (passGen) Name() string { return "northd/pass.go" }

var passStages = []Stage{
	LSInQoSMark, LSInQoSMeter, LSInDHCPOptions, LSInDHCPResponse,
	LSInDNSLookup, LSInDNSResponse, LSInExternalPort,
	LSOutQoSMark, LSOutQoSMeter,
}

func (passGen) Switch(sc *SwitchContext, b *Builder) {
	for _, s := range passStages {
		b.Add(s, 0, "1", "next;")
	}
}
