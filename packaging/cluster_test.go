package packaging

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestClusterScript builds a 3-member northbound Raft cluster on loopback
// with packaging/cluster/govn-cluster.sh (member 1 creates it, 2 and 3 join),
// drives it with the real ovn-nbctl through the remote string the script
// prints, stops one member and checks that the other two still take writes,
// then brings the stopped member back with the same command and checks that
// it catches up.
func TestClusterScript(t *testing.T) {
	needOVN(t, false)
	govn, _ := binaries(t)
	script := filepath.Join(repoRoot(t), "packaging", "cluster", "govn-cluster.sh")
	dir := shortDir(t, "gvc")

	// Bad input: a clear error, exit 2.
	for _, args := range [][]string{
		{"remotes", "nb", "10.0.0.1", "host", "10.0.0.3"},
		{"xb", "1", "10.0.0.1", "10.0.0.2", "10.0.0.3"},
		{"nb", "4", "10.0.0.1", "10.0.0.2", "10.0.0.3"},
	} {
		out, err := exec.Command(script, args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.HasPrefix(string(out), "govn-cluster: ") {
			t.Errorf("%v: %v %q, want exit 2 and a govn-cluster: message", args, err, out)
		}
	}

	// The southbound flags, default ports (6642 clients, 6644 Raft), with
	// GOVN=echo printing the command instead of running it.
	cmd := exec.Command(script, "sb", "3", "10.0.0.1", "10.0.0.2", "10.0.0.3", "--", "--log-level", "debug")
	cmd.Env = append(os.Environ(), "GOVN=echo")
	out, err := cmd.Output()
	want := "sbdb --data-dir /var/lib/govn/sb --remote ptcp:6642:10.0.0.3 --cluster-local tcp:10.0.0.3:6644 " +
		"--cluster-remote tcp:10.0.0.1:6644 --cluster-remote tcp:10.0.0.2:6644 --log-level debug"
	if err != nil || strings.TrimSpace(string(out)) != want {
		t.Errorf("sb member 3: %v\n got %q\nwant %q", err, out, want)
	}
	if out := strings.TrimSpace(runOut(t, nil, script, "remotes", "sb", "10.0.0.1", "10.0.0.2", "10.0.0.3")); out != "tcp:10.0.0.1:6642,tcp:10.0.0.2:6642,tcp:10.0.0.3:6642" {
		t.Errorf("remotes sb: %q", out)
	}

	var members []string
	for range 3 {
		members = append(members, fmt.Sprintf("127.0.0.1:%d:%d", freePort(t), freePort(t)))
	}
	remotes := strings.TrimSpace(runOut(t, nil, script, append([]string{"remotes", "nb"}, members...)...))
	if n := strings.Count(remotes, "tcp:127.0.0.1:"); n != 3 {
		t.Fatalf("remotes %q: want 3 tcp members", remotes)
	}
	nbctl := func(args ...string) (string, error) {
		return runErr(nil, "ovn-nbctl", append([]string{"--db=" + remotes, "--timeout=20"}, args...)...)
	}
	start := func(i int) *proc {
		env := []string{"GOVN=" + govn, "GOVN_DATA_DIR=" + filepath.Join(dir, fmt.Sprintf("m%d", i))}
		args := append([]string{script, "nb", fmt.Sprint(i)}, members...)
		args = append(args, "--", "--election-timer", "1000")
		return startProc(t, dir, fmt.Sprintf("nb%d", i), env, args...)
	}
	ctl := func(i int) string { return filepath.Join(dir, fmt.Sprintf("m%d", i), "ovnnb_db.ctl") }
	status := func(i int) (string, error) {
		return runErr(nil, "ovs-appctl", "-t", ctl(i), "--timeout=5", "cluster/status", "OVN_Northbound")
	}
	procs := map[int]*proc{}
	for i := 1; i <= 3; i++ {
		if err := os.MkdirAll(filepath.Join(dir, fmt.Sprintf("m%d", i)), 0o750); err != nil {
			t.Fatal(err)
		}
		procs[i] = start(i)
		// Each member is in the cluster before the next one joins.
		eventually(t, 60*time.Second, fmt.Sprintf("member %d joined", i), func() error {
			if !procs[i].running() {
				t.Fatalf("member %d exited: %v\n%s", i, procs[i].err, procs[i].tail(20))
			}
			out, err := status(i)
			if err != nil {
				return err
			}
			if !strings.Contains(out, "Status: cluster member") {
				return fmt.Errorf("status: %s", out)
			}
			return nil
		})
	}
	eventually(t, 30*time.Second, "three servers in the cluster", func() error {
		out, err := status(1)
		if err != nil {
			return err
		}
		if n := strings.Count(out, "tcp:127.0.0.1:"); n < 3 {
			return fmt.Errorf("status lists %d servers:\n%s", n, out)
		}
		return nil
	})
	if _, err := nbctl("ls-add", "sw0"); err != nil {
		t.Fatal(err)
	}

	// Stop the leader: the other two elect a new one and take writes.
	leader := 0
	for i := 1; i <= 3; i++ {
		if out, err := status(i); err == nil && strings.Contains(out, "Role: leader") {
			leader = i
		}
	}
	if leader == 0 {
		t.Fatal("no member reports Role: leader")
	}
	if err := procs[leader].stop(t, 30*time.Second); err != nil {
		t.Errorf("member %d on SIGTERM: %v", leader, err)
	}
	// ovn-nbctl makes one connection attempt per call (to one of the
	// listed members, picked at random): a call that picks the stopped
	// member fails and is retried, as a script would.
	tries := 0
	eventually(t, 30*time.Second, fmt.Sprintf("write with member %d down", leader), func() error {
		tries++
		_, err := nbctl("--may-exist", "ls-add", "sw1")
		return err
	})
	t.Logf("write with the leader (member %d) down: %d ovn-nbctl call(s)", leader, tries)
	eventually(t, 30*time.Second, fmt.Sprintf("ls-list with member %d down", leader), func() error {
		out, err := nbctl("ls-list")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "(sw0)") || !strings.Contains(out, "(sw1)") {
			t.Fatalf("ls-list with member %d down:\n%s", leader, out)
		}
		return nil
	})

	// The stopped member comes back with the same command and catches up.
	procs[leader] = start(leader)
	nb := "unix:" + filepath.Join(dir, fmt.Sprintf("m%d", leader), "ovnnb_db.sock")
	eventually(t, 60*time.Second, fmt.Sprintf("member %d caught up", leader), func() error {
		out, err := runErr(nil, "ovn-nbctl", "--db="+nb, "--timeout=5", "--no-leader-only", "ls-list")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "(sw1)") {
			return fmt.Errorf("ls-list: %q", out)
		}
		return nil
	})
	for i := 1; i <= 3; i++ {
		if err := procs[i].stop(t, 30*time.Second); err != nil {
			t.Errorf("member %d on SIGTERM: %v", i, err)
		}
	}
}
