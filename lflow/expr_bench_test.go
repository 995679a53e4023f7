package lflow_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/govn/govn/lflow/expr"
	"github.com/govn/govn/lflow/symtab"
)

// BenchmarkCompileACLs compiles 10k typical network-policy ACL matches
// (parse + annotate + resolve + simplify + normalize + OpenFlow matches)
// with one shared Compiler, as a controller does. One op = all 10k.
func BenchmarkCompileACLs(b *testing.B) {
	matches := aclMatches(10000)
	c := expr.NewCompiler(symtab.Default())
	opts := aclOptions(1)
	ofFlows := 0
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ofFlows = 0
		for _, m := range matches {
			res, err := c.CompileString(m, opts)
			if err != nil {
				b.Fatal(err)
			}
			ofFlows += len(res.Matches) + res.NConj()
		}
	}
	b.StopTimer()
	cpu := (cpuTime() - cpu0).Seconds()
	sec := b.Elapsed().Seconds()
	if sec > 0 {
		b.ReportMetric(float64(len(matches)*b.N)/sec, "lflows/s")
	}
	// CPU time of the process (GOMAXPROCS=1 with -cpu 1): the rate one
	// core achieves even when the machine is shared and wall time is not.
	if cpu > 0 {
		b.ReportMetric(float64(len(matches)*b.N)/cpu, "lflows/cpu-s")
	}
	b.ReportMetric(float64(ofFlows), "ofFlows/op")
	b.ReportMetric(float64(len(matches)), "lflows/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
