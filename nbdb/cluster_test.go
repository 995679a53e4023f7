package nbdb_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/govn/govn/internal/dbserver"
	"github.com/govn/govn/internal/dbserver/dbservertest"
	"github.com/govn/govn/internal/ovsdbclient"
	"github.com/govn/govn/nbdb"
)

// TestClusterLeaderFailover runs a 3-member NB Raft cluster on loopback,
// SIGKILLs the leader while a client writes in a loop, and checks that writes
// resume through the new leader and that every acknowledged write survives.
func TestClusterLeaderFailover(t *testing.T) {
	dbservertest.RequireOVS(t)
	var (
		servers []*dbserver.Server
		dirs    []string
		addrs   []string
		socks   []string
	)
	for i := 0; i < 3; i++ {
		dir := dbservertest.ShortTempDir(t)
		local := fmt.Sprintf("tcp:127.0.0.1:%d", dbservertest.FreePort(t))
		remotes := append([]string(nil), addrs...) // empty for the first: it creates the cluster
		s := dbservertest.Start(t, Database, dir, func(c *dbserver.Config) {
			c.ClusterLocal = local
			c.ClusterRemotes = remotes
			c.ElectionTimer = 1000
		})
		servers, dirs, addrs, socks = append(servers, s), append(dirs, dir), append(addrs, local), append(socks, s.Endpoint())
	}
	for _, s := range servers {
		dbservertest.Run(t, "ovsdb-client", "--timeout=30", "wait", s.Endpoint(), nbdb.DatabaseName, "connected")
	}
	leader := func() int {
		for i, s := range servers {
			select {
			case <-s.Done():
				continue
			default:
			}
			out, err := dbservertest.RunErr("ovs-appctl", "-t", filepath.Join(dirs[i], nbdb.FileBase+".ctl"), "cluster/status", nbdb.DatabaseName)
			if err == nil && strings.Contains(out, "Role: leader") {
				return i
			}
		}
		return -1
	}

	c := newClient(t, socks...)
	var (
		mu      sync.Mutex
		acked   []string
		unknown []string // failed or timed out: may or may not be committed
	)
	ackedCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := fmt.Sprintf("w-%04d", i)
			ops, err := ovsdbclient.CreateOps(c, nil, &nbdb.LogicalSwitch{UUID: ovsdbclient.NamedUUID(), Name: name})
			if err != nil {
				t.Error(err)
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			_, err = c.Transact(ctx, ops...)
			cancel()
			mu.Lock()
			if err == nil {
				acked = append(acked, name)
			} else {
				unknown = append(unknown, name+": "+err.Error())
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	waitFor(t, "20 acknowledged writes", func() bool { return ackedCount() >= 20 })

	var li int
	waitFor(t, "a leader", func() bool { li = leader(); return li >= 0 })
	before := ackedCount()
	killedAt := time.Now()
	if err := syscall.Kill(servers[li].PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed leader member %d (pid %d) after %d acknowledged writes", li, servers[li].PID(), before)

	deadline := time.Now().Add(60 * time.Second)
	for ackedCount() < before+20 {
		if time.Now().After(deadline) {
			close(stop)
			<-writerDone
			t.Fatalf("writes did not resume after the leader was killed: %d acked before, %d now; failures: %v", before, ackedCount(), unknown)
		}
		time.Sleep(20 * time.Millisecond)
	}
	resumed := time.Since(killedAt)
	close(stop)
	<-writerDone
	newLeader := leader()
	if newLeader < 0 || newLeader == li {
		t.Errorf("new leader = %d, killed %d", newLeader, li)
	}
	t.Logf("20 more writes acknowledged %v after the kill (new leader: member %d); %d acknowledged in all, %d failed/unknown",
		resumed.Round(time.Millisecond), newLeader, len(acked), len(unknown))
	for _, u := range unknown {
		t.Logf("unacknowledged: %s", u)
	}

	// Every acknowledged write is in the database, as seen by a new client
	// of the surviving members.
	var survivors []string
	for i, s := range socks {
		if i != li {
			survivors = append(survivors, s)
		}
	}
	fresh := newClient(t, survivors...)
	var switches []nbdb.LogicalSwitch
	if err := fresh.List(context.Background(), &switches); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, ls := range switches {
		have[ls.Name] = true
	}
	missing := 0
	for _, name := range acked {
		if !have[name] {
			missing++
			t.Errorf("acknowledged write %s is missing", name)
		}
	}
	if missing == 0 {
		t.Logf("all %d acknowledged writes present (%d rows in all)", len(acked), len(switches))
	}
}
