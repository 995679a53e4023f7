package e2e

import (
	"os"
	"os/exec"
	"path/filepath"

	"github.com/govn/govn/e2e/harness"
)

// GOVN_E2E_IMPL=ovn runs the scenarios on OVN 23.03 from the distribution
// (ovsdb-server with OVN's schemas, ovn-northd, one ovn-controller per
// chassis) instead of govn: the reference that shows a scenario's
// expectations are OVN's behaviour, not ours. Checks of govn-only tools
// (govnctl trace) are skipped in that mode.
func referenceOVN() bool { return os.Getenv("GOVN_E2E_IMPL") == "ovn" }

// startReferenceCentral starts OVN's NB and SB ovsdb-servers and
// ovn-northd on o.nbSock / o.sbSock.
func (o *ovn) startReferenceCentral() {
	o.t.Helper()
	env := []string{"OVS_RUNDIR=" + o.dbDir, "OVS_DBDIR=" + o.dbDir, "OVS_LOGDIR=" + o.dbDir,
		"OVN_RUNDIR=" + o.dbDir, "OVN_DBDIR=" + o.dbDir, "OVN_LOGDIR=" + o.dbDir}
	for _, db := range []struct{ name, schema, sock string }{
		{"nb", "/usr/share/ovn/ovn-nb.ovsschema", o.nbSock},
		{"sb", "/usr/share/ovn/ovn-sb.ovsschema", o.sbSock},
	} {
		if err := os.MkdirAll(filepath.Dir(db.sock), 0o755); err != nil {
			o.t.Fatal(err)
		}
		file := filepath.Join(filepath.Dir(db.sock), db.name+".db")
		if out, err := exec.Command("ovsdb-tool", "create", file, db.schema).CombinedOutput(); err != nil {
			o.t.Fatalf("ovsdb-tool create %s: %v: %s", file, err, out)
		}
		o.start(harness.ProcessSpec{Name: "ovn-" + db.name + "db", Env: env, Args: []string{"ovsdb-server", file,
			"--remote=punix:" + db.sock, "--unixctl=" + filepath.Join(o.dbDir, db.name+".ctl"), "--no-chdir",
			"-vconsole:warn"}})
	}
	o.waitDB("ovn-nbctl", o.nbSock)
	o.waitDB("ovn-sbctl", o.sbSock)
	if _, err := o.nbctlErr("init"); err != nil {
		o.t.Fatal(err)
	}
	o.northd = o.start(harness.ProcessSpec{Name: "ovn-northd", Env: env, Args: []string{"ovn-northd",
		"--ovnnb-db=unix:" + o.nbSock, "--ovnsb-db=unix:" + o.sbSock,
		"--unixctl=" + filepath.Join(o.dbDir, "northd.ctl"), "--no-chdir", "-vconsole:warn"}})
}

// startReferenceController starts ovn-controller in chassis c (its control
// socket and log in a directory of its own).
func (o *ovn) startReferenceController(c *harness.Chassis) *harness.Process {
	o.t.Helper()
	dir := filepath.Join(o.dbDir, c.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		o.t.Fatal(err)
	}
	p, err := o.topo.StartProcess(harness.ProcessSpec{Name: c.Name + "-ovn-controller", Netns: c.Netns,
		Env:  append(c.OVS.Env(), "OVN_RUNDIR="+dir, "OVN_LOGDIR="+dir, "OVN_DBDIR="+dir),
		Args: []string{"ovn-controller", c.OVS.DBRemote(), "--no-chdir", "-vconsole:info"}})
	if err != nil {
		o.t.Fatal(err)
	}
	o.ctrl[c] = p
	return p
}
