package e2e

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkSetupTwoChassis: from nothing to a 2-chassis govn deployment
// whose controllers have acknowledged an nb_cfg (topology, central
// databases, northd, controllers, ovn-nbctl --wait=hv sync). The
// topologies of all iterations are torn down at the end: run with
// -benchtime=3x.
//
//	go test -run '^$' -bench SetupTwoChassis -benchtime=3x ./e2e/
func BenchmarkSetupTwoChassis(b *testing.B) {
	for i := 0; i < b.N; i++ {
		o := startOVN(b, 2)
		if !o.waitHV {
			b.Fatal("ovn-nbctl --wait=hv does not complete")
		}
	}
}

// BenchmarkLSPAddWaitHV: `ovn-nbctl --wait=hv lsp-add` (+ addresses) of a
// port whose VIF is already plugged on ch2, until every chassis has installed
// the change; checks that ch2 then classifies the VIF in table 0.
//
//	go test -run '^$' -bench LSPAddWaitHV -benchtime=20x ./e2e/
func BenchmarkLSPAddWaitHV(b *testing.B) {
	if b.N > 200 {
		b.Skip("at most 200 ports (one /24)")
	}
	o := startOVN(b, 2)
	if !o.waitHV {
		b.Fatal("ovn-nbctl --wait=hv does not complete")
	}
	ch2 := o.topo.Chassis[1]
	o.nbctl("ls-add", "ls1")
	b.ResetTimer()
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		p := o.addVIF(ch2, fmt.Sprintf("p%d", i), 10+i)
		b.StartTimer()
		start := time.Now()
		o.nbctl("lsp-add", "ls1", p.LSP, "--", "lsp-set-addresses", p.LSP, p.MAC+" "+p.IP.Addr().String())
		total += time.Since(start)
		b.StopTimer()
		if !o.hasInPortFlow(ch2, p.OFPort) {
			b.Fatalf("--wait=hv returned but ch2 has no table 0 flow for in_port=%d", p.OFPort)
		}
		b.StartTimer()
	}
	b.ReportMetric(total.Seconds()*1000/float64(b.N), "ms/lsp-add")
}
