package dbserver_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetrics runs a one-member cluster through Run with a metrics address
// and checks /healthz and the Raft metrics.
func TestMetrics(t *testing.T) {
	dbservertest.RequireOVS(t)
	dir := dbservertest.ShortTempDir(t)
	addr := fmt.Sprintf("127.0.0.1:%d", dbservertest.FreePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- dbserver.Run(ctx, dbserver.Config{DB: nbDatabase, DataDir: dir, Logger: zaptest.NewLogger(t),
			MetricsAddr: addr, ClusterLocal: fmt.Sprintf("tcp:127.0.0.1:%d", dbservertest.FreePort(t))})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	want := []string{
		`govn_ovsdb_server_up{db="OVN_Northbound"} 1`,
		`govn_ovsdb_cluster_role{db="OVN_Northbound",role="leader"} 1`,
		`govn_ovsdb_cluster_member{db="OVN_Northbound"} 1`,
		`govn_ovsdb_db_file_bytes{db="OVN_Northbound"}`,
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var body string
		var code int
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			code, body = get(t, "http://"+addr+"/metrics")
		}
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
			}
		}
		if code == 200 && missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack %q:\n%s", missing, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := get(t, "http://"+addr+"/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}

	// The metrics port is checked before anything starts.
	err := dbserver.Run(context.Background(), dbserver.Config{DB: nbDatabase, DataDir: dbservertest.ShortTempDir(t), MetricsAddr: addr})
	if err == nil || !strings.Contains(err.Error(), "metrics address "+addr+" is already in use") {
		t.Errorf("metrics port in use: %v", err)
	}
}
