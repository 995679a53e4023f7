package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/sbdb"
	"github.com/govn/govn/trace"
	"github.com/govn/govn/trace/sbload"
)

const (
	traceFixture = "../trace/testdata/switch.json"
	mfDelivered  = `inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == 00:00:00:00:00:02 && ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.2 && tcp.dst == 80`
	mfSSH        = `inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == 00:00:00:00:00:02 && ip4.src == 10.0.0.1 && ip4.dst == 10.0.0.2 && tcp.dst == 22`
)

func TestTraceSnapshotForms(t *testing.T) {
	out, errOut, code := runCtl(t, "trace", "--snapshot", traceFixture, "--ct", "new", "sw0", mfSSH)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{`ingress(dp="sw0", inport="p1")`, "ct_next(ct_state=new|trk)",
		" 5. ls_in_acl: reg0[9] == 1 && (ip4 && tcp.dst == 22), priority 2001, uuid 00001014",
		"* dropped by ACL 00000000-0000-0000-0003-000000000001 (from-lport, priority 1001"} {
		if !strings.Contains(out, want) {
			t.Errorf("detailed output lacks %q:\n%s", want, out)
		}
	}
	out, errOut, code = runCtl(t, "trace", "--snapshot", traceFixture, "--summary", "--minimal", "sw0", mfDelivered)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"SUMMARY\n=======\n", "MINIMAL\n=======\n", "        output(\"p2\");\n",
		`egress(dp="sw0", inport="p1", outport="p2") {`} {
		if !strings.Contains(out, want) {
			t.Errorf("summary+minimal output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "DETAILED") {
		t.Errorf("detailed output printed although not asked for:\n%s", out)
	}
}

func TestTraceJSON(t *testing.T) {
	out, errOut, code := runCtl(t, "-o", "json", "trace", "--snapshot", traceFixture, "sw0",
		`inport == "p1" && eth.src == 00:00:00:00:00:01 && eth.dst == ff:ff:ff:ff:ff:ff`)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var tr trace.Trace
	if err := json.Unmarshal([]byte(out), &tr); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var ports []string
	for _, o := range tr.Outcomes {
		if o.Verdict == "output" {
			ports = append(ports, o.Port)
		}
	}
	if strings.Join(ports, ",") != "p2,p3" || tr.Root == nil || tr.Root.Type != trace.NodePipeline {
		t.Errorf("flood: delivered %v, root %+v", ports, tr.Root)
	}
}

func TestTraceErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"sw0", `inport == "p1" && ip4.dst = 10.0.0.2`}, []string{"microflow 1:19: \"ip4.dst\" is a 32-bit field, not a Boolean", "\n  inport == \"p1\" && ip4.dst = 10.0.0.2\n                    ^"}},
		{[]string{"sw0", `inport == "p9"`}, []string{`microflow 1:11: unknown logical port "p9" in datapath sw0`}},
		{[]string{"sw0", `inport == "p1" && (ip4.dst == 10.0.0.2 || ip4.dst == 10.0.0.3)`}, []string{"microflow 1:40: a microflow describes one packet"}},
		{[]string{"sw0", `inport == "p1" && tcp.dst > 1024`}, []string{"microflow 1:19: tcp.dst > ... does not give tcp.dst one value"}},
		{[]string{"nosuch", `inport == "p1"`}, []string{`unknown datapath "nosuch" (known: sw0)`}},
		{[]string{"--ct", "new,bogus", "sw0", `inport == "p1"`}, []string{`unknown flag "bogus"`}},
		{[]string{"--lb-dst", "10.0.0.300", "sw0", `inport == "p1"`}, []string{`--lb-dst "10.0.0.300"`}},
	} {
		_, errOut, code := runCtl(t, append([]string{"trace", "--snapshot", traceFixture}, c.args...)...)
		if code != ExitUserError {
			t.Errorf("%v: exit %d, want %d (%s)", c.args, code, ExitUserError, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("%v: error lacks %q:\n%s", c.args, w, errOut)
			}
		}
	}
}

// TestTraceFromSouthbound reads a real southbound ovsdb-server.
func TestTraceFromSouthbound(t *testing.T) {
	dbservertest.RequireOVS(t)
	b, err := os.ReadFile(traceFixture)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := trace.ParseSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	srv := dbservertest.Start(t, dbserver.Database{Name: sbdb.DatabaseName, Schema: sbdb.SchemaJSON, Base: "ovnsb_db", GlobalTable: "SB_Global"}, "", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := sbload.Connect(ctx, []string{srv.Endpoint()})
	if err != nil {
		t.Fatal(err)
	}
	ops, err := sbload.StoreOps(c, nil, snap)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Transact(ctx, ops...); err != nil {
		t.Fatal(err)
	}
	c.Close()
	t.Setenv("GOVN_SB", srv.Endpoint())
	out, errOut, code := runCtl(t, "trace", "--minimal", "--ct", "new", "--ct", "new", "sw0", mfDelivered)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "ct_next(ct_state=new|trk) {\n    ct_next(ct_state=new|trk) {\n        output(\"p2\");\n    };\n};\n"
	if i := strings.IndexByte(out, '\n'); i < 0 || out[i+1:] != want {
		t.Errorf("got\n%s\nwant (after the packet line)\n%s", out, want)
	}
	// No server there: a connection error, exit code 2.
	dead := "unix:" + filepath.Join(dbservertest.ShortTempDir(t), "none.sock")
	_, errOut, code = runCtl(t, "--timeout", "1s", "trace", "--sb", dead, "sw0", mfDelivered)
	if code != ExitServer || !strings.Contains(errOut, "southbound database") {
		t.Errorf("dead server: exit %d, %s", code, errOut)
	}
}
