package translate

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/govn/govn/controller"
	"github.com/govn/govn/controller/physical"
	"github.com/govn/govn/northd"
)

// topology is the F3 benchmark shape (100 switches, ports spread evenly,
// each port with a MAC and an IPv4 address) as northd computes it, turned
// into southbound-like inputs: logical flows identical on several switches
// share one row with all their datapaths (Logical_DP_Group).
type topology struct {
	flows []Flow
	env   *Env
	phys  *physical.Input
}

func buildTopology(tb testing.TB, switches, ports int) *topology {
	tb.Helper()
	nb := northd.NewNB()
	nb.SetSvcMonitorMAC("3a:ab:e1:3c:9b:50")
	per := ports / switches
	n := 0
	for s := 0; s < switches; s++ {
		sw := &northd.Switch{UUID: fmt.Sprintf("00000000-0000-0000-0001-%012d", s), Name: fmt.Sprintf("sw%d", s)}
		for p := 0; p < per; p++ {
			n++
			id := fmt.Sprintf("00000000-0000-0000-0002-%012d", n)
			nb.SetPort(&northd.SwitchPort{UUID: id, Name: fmt.Sprintf("sw%d-p%d", s, p),
				Addresses: []string{fmt.Sprintf("0a:00:00:%02x:%02x:%02x 10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff, s, p/250, p%250+1)}})
			sw.Ports = append(sw.Ports, id)
		}
		nb.SetSwitch(sw)
	}
	e := northd.NewEngine(nil, nil)
	e.Run(nb)
	return fromEngine(e, nb)
}

type flowKey struct {
	p              controller.Pipeline
	table, prio    int
	match, actions string
}

func fromEngine(e *northd.Engine, nb *northd.NB) *topology {
	t := &topology{
		env: &Env{Datapaths: map[uint32]*Datapath{}, Resident: map[string]bool{}, RemoteVIFs: map[string]bool{},
			AddressSets: map[string][]string{"svc_monitor_mac": {"3a:ab:e1:3c:9b:50"}}},
		phys: &physical.Input{Chassis: "ch1", VIFs: map[string]uint32{}, Tunnels: map[string]uint32{"ch2": 1000, "ch3": 1001}},
	}
	byKey := map[flowKey]int{}
	sws := e.Switches()
	for i, sw := range sws {
		dk := uint32(i + 1)
		dp := &Datapath{Key: dk, Ports: map[string]uint32{}}
		t.env.Datapaths[dk] = dp
		for j, pb := range e.SwitchPorts(sw) {
			key := uint32(j + 1)
			dp.Ports[pb.Name] = key
			// One local VIF per switch (so every datapath is local), the
			// rest on two other chassis.
			ch := []string{"ch2", "ch3"}[j%2]
			if j == 0 {
				ch = "ch1"
				t.phys.VIFs[pb.Name] = uint32(len(t.phys.VIFs) + 1)
				t.env.Resident[pb.Name] = true
			}
			if ch != "ch1" {
				t.env.RemoteVIFs[pb.Name] = true
			}
			t.phys.Ports = append(t.phys.Ports, physical.Port{Name: pb.Name, Datapath: dk, Key: key, Chassis: ch})
		}
		for _, mc := range e.SwitchMulticast(sw) {
			dp.Ports[mc.Name] = uint32(mc.Key)
			t.phys.Groups = append(t.phys.Groups, physical.MulticastGroup{Datapath: dk, Key: uint32(mc.Key), Name: mc.Name, Ports: mc.Ports})
		}
		for _, f := range e.SwitchFlows(sw) {
			p := controller.Ingress
			if f.Stage.Pipeline() == northd.Egress {
				p = controller.Egress
			}
			k := flowKey{p, f.Stage.Table(), int(f.Priority), f.Match, f.Actions}
			if idx, ok := byKey[k]; ok {
				t.flows[idx].Datapaths = append(t.flows[idx].Datapaths, dk)
				continue
			}
			byKey[k] = len(t.flows)
			t.flows = append(t.flows, Flow{UUID: fmt.Sprintf("%08x-0000-4000-8000-%012x", len(t.flows)*2654435761%(1<<32), len(t.flows)),
				Pipeline: p, Table: k.table, Priority: k.prio, Match: k.match, Actions: k.actions, Datapaths: []uint32{dk}})
		}
	}
	zones := make([]string, 0, len(t.phys.VIFs))
	for n := range t.phys.VIFs {
		zones = append(zones, n)
	}
	t.phys.Zones, _ = physical.AssignZones(zones, nil)
	return t
}

// vmHWM returns the process' peak resident set size in MB (Linux).
func vmHWM() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				kb, _ := strconv.Atoi(f[1])
				return float64(kb) / 1024
			}
		}
	}
	return 0
}

// cpuTime is the process' user+system CPU time: on a loaded machine it
// shows the work done, where ns/op also counts waiting for a core.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFullCompute: everything a cold controller computes for the
// 10k-port topology with all 100 switches local: every logical flow
// translated (new Translator, empty caches) plus the physical flows.
func BenchmarkFullCompute(b *testing.B) {
	for _, ports := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("ports=%d", ports), func(b *testing.B) {
			topo := buildTopology(b, 100, ports)
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ResetTimer()
			var out *Output
			var nphys int
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				tr := New()
				out = tr.Translate(topo.flows, topo.env)
				nphys = len(physical.Flows(topo.phys))
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Milliseconds())/float64(b.N), "cpu-ms/op")
			if len(out.Errors) > 0 {
				b.Fatalf("%d translation errors, first: %v", len(out.Errors), out.Errors[0])
			}
			var after runtime.MemStats
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(len(topo.flows)), "lflows")
			b.ReportMetric(float64(len(out.Flows)+nphys), "ofFlows")
			b.ReportMetric(float64(after.HeapInuse)/(1<<20), "heapMB")
			b.ReportMetric(vmHWM(), "hwmMB")
		})
	}
}

// newPortFlows are the logical flows of the i-th new port name on
// datapath 7: its port-security check and its L2 lookup entry.
func newPortFlows(i int, name string) []Flow {
	mac := fmt.Sprintf("0e:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)
	return []Flow{
		{UUID: fmt.Sprintf("f%07x-0000-4000-8000-000000000001", i), Table: 0, Priority: 50,
			Match: fmt.Sprintf(`inport == %q && eth.src == %s`, name, mac), Actions: "next;", Datapaths: []uint32{7}},
		{UUID: fmt.Sprintf("f%07x-0000-4000-8000-000000000002", i), Table: 25, Priority: 50,
			Match: fmt.Sprintf(`eth.dst == %s`, mac), Actions: fmt.Sprintf(`outport = %q; output;`, name), Datapaths: []uint32{7}},
	}
}

// BenchmarkAddPort: a warm Translator after one port is added to one
// switch of the 10k-port topology (its flows are new, every other flow is
// reused from the cache).
func BenchmarkAddPort(b *testing.B) {
	topo := buildTopology(b, 100, 10000)
	tr := New()
	tr.Translate(topo.flows, topo.env)
	b.ResetTimer()
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		name := fmt.Sprintf("new%d", i)
		dp := topo.env.Datapaths[7]
		dp.Ports[name] = uint32(200 + i)
		flows := append(topo.flows[:len(topo.flows):len(topo.flows)], newPortFlows(i, name)...)
		b.StartTimer()
		c0 := cpuTime()
		out := tr.Translate(flows, topo.env)
		cpu += cpuTime() - c0
		b.StopTimer()
		if len(out.Errors) > 0 || out.Compiled == 0 || out.Compiled > 50 {
			b.Fatalf("add port: compiled %d, %d errors", out.Compiled, len(out.Errors))
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// BenchmarkAddPortUpdate: BenchmarkAddPort through Update, as the
// controller runs it: only the two new flows and a new Env (the port added
// to one switch) are handed over.
func BenchmarkAddPortUpdate(b *testing.B) {
	topo := buildTopology(b, 100, 10000)
	tr := New()
	env := cloneEnv(topo.env)
	tr.Update(topo.flows, nil, env)
	b.ResetTimer()
	var cpu time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		name := fmt.Sprintf("new%d", i)
		next := cloneEnv(env)
		next.Datapaths[7].Ports[name] = uint32(200 + i)
		flows := newPortFlows(i, name)
		env = next
		b.StartTimer()
		c0 := cpuTime()
		out := tr.Update(flows, nil, env)
		cpu += cpuTime() - c0
		b.StopTimer()
		if len(out.Errors) > 0 || out.Compiled == 0 || out.Compiled > 10 {
			b.Fatalf("add port: compiled %d, %d errors", out.Compiled, len(out.Errors))
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
