package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	govnv1 "github.com/govn/govn/api/govnv1"
	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	northdrun "github.com/govn/govn/northd/run"
	"github.com/govn/govn/sbdb"
)

var sbDatabase = dbserver.Database{Name: sbdb.DatabaseName, Schema: sbdb.SchemaJSON, Base: sbdb.FileBase, GlobalTable: sbdb.GlobalTable}

// TestSyncWithNorthd runs govn's northd between real NB and SB servers and
// checks Sync(wait=sb) and Sync(wait=hv), including a chassis that lags.
func TestSyncWithNorthd(t *testing.T) {
	e := newEnv(t)
	sync := govnv1.NewSyncServiceClient(e.conn)
	// Without northd, Sync times out with a clear message.
	_, err := sync.Sync(e.ctx, &govnv1.SyncRequest{Wait: govnv1.SyncRequest_SB, Timeout: durationpb.New(300 * time.Millisecond)})
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "is northd running?") {
		t.Fatalf("Sync without northd: %v", err)
	}

	sb := dbservertest.Start(t, sbDatabase, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nd, err := northdrun.Start(ctx, northdrun.Config{NB: []string{e.db.Endpoint()}, SB: []string{sb.Endpoint()}, Logger: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = nd.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; nd.Close() })

	must(e.ls.CreateLogicalSwitch(e.ctx, &govnv1.CreateLogicalSwitchRequest{LogicalSwitch: &govnv1.LogicalSwitch{Name: "sw0"}}))
	r := must(sync.Sync(e.ctx, &govnv1.SyncRequest{Wait: govnv1.SyncRequest_SB, Timeout: durationpb.New(20 * time.Second)}))
	if r.NbCfg < 1 || r.SbCfg < r.NbCfg {
		t.Fatalf("sync sb: %v", r)
	}
	// northd has written the switch's datapath by then.
	out := dbservertest.Run(t, "ovn-sbctl", "--db="+sb.Endpoint(), "--bare", "--columns=external_ids", "list", "Datapath_Binding")
	if !strings.Contains(out, "sw0") {
		t.Errorf("SB Datapath_Binding after Sync(sb): %q", out)
	}
	r2 := must(sync.Sync(e.ctx, &govnv1.SyncRequest{Wait: govnv1.SyncRequest_HV, Timeout: durationpb.New(20 * time.Second)}))
	if r2.NbCfg != r.NbCfg+1 || r2.HvCfg < r2.NbCfg {
		t.Fatalf("sync hv (no chassis): %v after %v", r2, r)
	}

	// A chassis that has not caught up holds hv_cfg back...
	dbservertest.Run(t, "ovn-sbctl", "--db="+sb.Endpoint(), "chassis-add", "ch1", "geneve", "127.0.0.2")
	dbservertest.Run(t, "ovn-sbctl", "--db="+sb.Endpoint(), "create", "Chassis_Private", "name=ch1", "nb_cfg=0")
	_, err = sync.Sync(e.ctx, &govnv1.SyncRequest{Wait: govnv1.SyncRequest_HV, Timeout: durationpb.New(time.Second)})
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "hv_cfg") {
		t.Fatalf("Sync(hv) with a lagging chassis: %v", err)
	}
	// ...until it reports the latest nb_cfg, as a controller would.
	errc := make(chan error, 1)
	go func() {
		_, err := sync.Sync(e.ctx, &govnv1.SyncRequest{Wait: govnv1.SyncRequest_HV, Timeout: durationpb.New(20 * time.Second)})
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
