// Package synctest checks Sync against govn's real northd. It is separate
// from api/server's tests so those do not depend on northd's packages.
package synctest

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/api/server"
	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/nbdb"
	northdrun "github.com/govn/govn/northd/run"
	"github.com/govn/govn/sbdb"
)

var nbDatabase = dbserver.Database{Name: nbdb.DatabaseName, Schema: nbdb.SchemaJSON, Base: "ovnnb_db", GlobalTable: "NB_Global"}

var sbDatabase = dbserver.Database{Name: sbdb.DatabaseName, Schema: sbdb.SchemaJSON, Base: sbdb.FileBase, GlobalTable: sbdb.GlobalTable}

// TestSyncWithNorthd runs govn's northd between real NB and SB servers and
// checks Sync(wait=sb) and Sync(wait=hv), including a chassis that lags.
func TestSyncWithNorthd(t *testing.T) {
	nb := dbservertest.Start(t, nbDatabase, "", nil)
	api, err := server.Start(t.Context(), server.Config{NB: []string{nb.Endpoint()}, Listen: "127.0.0.1:0", Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(api.Stop)
	conn, err := grpc.NewClient(api.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ls := govnv1.NewLogicalSwitchServiceClient(conn)
	sync := govnv1.NewSyncServiceClient(conn)
	ctxAPI := t.Context()
	// Without northd, Sync times out with a clear message.
	_, err = sync.Sync(ctxAPI, &govnv1.SyncRequest{Wait: govnv1.SyncRequest_SB, Timeout: durationpb.New(300 * time.Millisecond)})
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "is northd running?") {
		t.Fatalf("Sync without northd: %v", err)
	}

	sb := dbservertest.Start(t, sbDatabase, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nd, err := northdrun.Start(ctx, northdrun.Config{NB: []string{nb.Endpoint()}, SB: []string{sb.Endpoint()}, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = nd.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; nd.Close() })

	if _, err := ls.CreateLogicalSwitch(ctxAPI, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0"}}); err != nil {
		t.Fatal(err)
	}
	r, err := sync.Sync(ctxAPI, &govnv1.SyncRequest{Wait: govnv1.SyncRequest_SB, Timeout: durationpb.New(20 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if r.NbCfg < 1 || r.SbCfg < r.NbCfg {
		t.Fatalf("sync sb: %v", r)
	}
	// northd has written the switch's datapath by then.
	out := dbservertest.Run(t, "ovn-sbctl", "--db="+sb.Endpoint(), "--bare", "--columns=external_ids", "list", "Datapath_Binding")
	if !strings.Contains(out, "sw0") {
		t.Errorf("SB Datapath_Binding after Sync(sb): %q", out)
	}
	r2, err := sync.Sync(ctxAPI, &govnv1.SyncRequest{Wait: govnv1.SyncRequest_HV, Timeout: durationpb.New(20 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if r2.NbCfg != r.NbCfg+1 || r2.HvCfg < r2.NbCfg {
		t.Fatalf("sync hv (no chassis): %v after %v", r2, r)
	}

	// A chassis that has not caught up holds hv_cfg back...
	dbservertest.Run(t, "ovn-sbctl", "--db="+sb.Endpoint(), "chassis-add", "ch1", "geneve", "127.0.0.2")
	dbservertest.Run(t, "ovn-sbctl", "--db="+sb.Endpoint(), "create", "Chassis_Private", "name=ch1", "nb_cfg=0")
	_, err = sync.Sync(ctxAPI, &govnv1.SyncRequest{Wait: govnv1.SyncRequest_HV, Timeout: durationpb.New(time.Second)})
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "hv_cfg") {
		t.Fatalf("Sync(hv) with a lagging chassis: %v", err)
	}
	// ...until it reports the latest nb_cfg, as a controller would.
	errc := make(chan error, 1)
	go func() {
		_, err := sync.Sync(ctxAPI, &govnv1.SyncRequest{Wait: govnv1.SyncRequest_HV, Timeout: durationpb.New(20 * time.Second)})
		errc <- err
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		cfg := strings.TrimSpace(dbservertest.Run(t, "ovn-sbctl", "--db="+sb.Endpoint(), "get", "SB_Global", ".", "nb_cfg"))
		dbservertest.Run(t, "ovn-sbctl", "--db="+sb.Endpoint(), "set", "Chassis_Private", "ch1", "nb_cfg="+cfg)
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("Sync(hv) after the chassis caught up: %v", err)
			}
			return
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("Sync(hv) did not finish after the chassis caught up")
		}
	}
}
