package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/api/server"
	"github.com/govn/govn/api/testcerts"
	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	northdrun "github.com/govn/govn/northd/run"
	"github.com/govn/govn/sbdb"
)

func TestGovnctlMTLS(t *testing.T) {
	db := dbservertest.Start(t, nbDatabase, "", nil)
	f := testcerts.Write(t, t.TempDir())
	api, err := server.Start(t.Context(), server.Config{NB: []string{db.Endpoint()}, Listen: "127.0.0.1:0",
		TLSCert: f.ServerCert, TLSKey: f.ServerKey, TLSCA: f.CA, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Stop)
	run := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := Main(append([]string{"--server", api.Addr(), "--timeout", "5s"}, args...), &out, &errOut)
		return out.String(), errOut.String(), code
	}
	if _, errOut, code := run("--tls-ca", f.CA, "--tls-cert", f.ClientCert, "--tls-key", f.ClientKey, "ls", "add", "sw0"); code != ExitOK {
		t.Fatalf("mTLS ls add: exit %d %s", code, errOut)
	}
	if out, _, code := run("--tls-ca", f.CA, "--tls-cert", f.ClientCert, "--tls-key", f.ClientKey, "ls", "list"); code != ExitOK || !strings.Contains(out, "sw0") {
		t.Fatalf("mTLS ls list: exit %d %q", code, out)
	}
	// No client certificate: the server refuses the handshake → exit 2.
	if _, errOut, code := run("--tls-ca", f.CA, "ls", "list"); code != ExitServer || !strings.Contains(errOut, "govnctl: ") {
		t.Errorf("without client cert: exit %d %q", code, errOut)
	}
	// Plaintext client against a TLS server → exit 2.
	if _, errOut, code := run("ls", "list"); code != ExitServer {
		t.Errorf("plaintext: exit %d %q", code, errOut)
	}
	// Half a key pair is a user error → exit 1.
	if _, errOut, code := run("--tls-ca", f.CA, "--tls-cert", f.ClientCert, "ls", "list"); code != ExitUserError || !strings.Contains(errOut, "go together") {
		t.Errorf("cert without key: exit %d %q", code, errOut)
	}
}

func TestGovnctlSyncWait(t *testing.T) {
	e := startAPI(t)
	sb := dbservertest.Start(t, dbserver.Database{Name: sbdb.DatabaseName, Schema: sbdb.SchemaJSON, Base: sbdb.FileBase, GlobalTable: sbdb.GlobalTable}, "", nil)
	// Without northd: --wait=sb times out as a server-side failure (exit 2).
	if _, errOut, code := e.govnctl("--timeout", "500ms", "sync"); code != ExitServer || !strings.Contains(errOut, "is northd running?") {
		t.Fatalf("sync without northd: exit %d %q", code, errOut)
	}
	ctx, cancel := context.WithCancel(context.Background())
	nd, err := northdrun.Start(ctx, northdrun.Config{NB: []string{e.db.Endpoint()}, SB: []string{sb.Endpoint()}, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = nd.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; nd.Close() })

	if _, errOut, code := e.govnctl("--wait=sb", "ls", "add", "sw0"); code != ExitOK {
		t.Fatalf("ls add --wait=sb: exit %d %q", code, errOut)
	}
	// --wait=sb returned only after northd wrote the datapath.
	out := dbservertest.Run(t, "ovn-sbctl", "--db="+sb.Endpoint(), "--bare", "--columns=external_ids", "list", "Datapath_Binding")
	if !strings.Contains(out, "sw0") {
		t.Errorf("Datapath_Binding after --wait=sb: %q", out)
	}
	out, errOut, code := e.govnctl("sync", "--wait=hv", "-o", "json")
	if code != ExitOK || !strings.Contains(out, `"nb_cfg"`) || !strings.Contains(out, `"hv_cfg"`) {
		t.Errorf("sync --wait=hv: exit %d %q %q", code, out, errOut)
	}
	if _, errOut, code := e.govnctl("sync", "--wait=xx"); code != ExitUserError {
		t.Errorf("--wait=xx: exit %d %q", code, errOut)
	}
	_ = time.Second
}
