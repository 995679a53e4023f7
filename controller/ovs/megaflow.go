package ovs

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Stale megaflows on the userspace datapath (OVS issue fixed upstream by
// "dpif-netdev: Fix dpif_netdev_flow_put", released in 2.17.8, 3.0.5, 3.1.3
// and 3.2.0).
//
// When OpenFlow rules change, the revalidators re-translate every cached
// datapath flow (megaflow). If a megaflow's mask is still good enough for the
// new translation but its actions differ, it is modified in place. The
// userspace datapath (dpif-netdev) of the affected versions finds the flow to
// modify by looking its key up in the datapath classifier instead of by its
// ufid. Megaflows may overlap (a flow kept by an earlier in-place modify can
// be narrower than what the tables now need, and a later packet that misses
// it creates a wider one covering its key); the lookup can then return the
// other, overlapping flow, which gets the new actions, while the real one
// keeps its old actions. The revalidator records the new actions as
// installed, so it never notices: the stale megaflow lives as long as
// packets hit it (an ACL change while a connection runs: seen in e2e TestACL,
// a tcp/80 megaflow kept forwarding without ct() after an allow-related
// ACL). See controller/README.md "Known issues" for the evidence.
//
// The workaround: on an affected ovs-vswitchd whose bridge uses the
// userspace datapath, every committed change is followed by
// `revalidator/purge` on ovs-vswitchd's unixctl socket, which deletes all
// cached datapath flows (and their revalidator keys) instead of letting the
// revalidators modify them in place; the next packet of each flow is
// translated again with the new tables. Other versions and datapaths are
// left alone.

// megaflowBugFixed reports whether ovs-vswitchd version v (e.g. "3.1.0")
// has the dpif-netdev in-place modify fix. A version that does not parse
// counts as fixed (nothing is done).
func megaflowBugFixed(v string) (bool, error) {
	m := regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)`).FindStringSubmatch(v)
	if m == nil {
		return true, fmt.Errorf("unrecognized ovs-vswitchd version %q", v)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	patch, _ := strconv.Atoi(m[3])
	switch {
	case major < 2:
		return false, nil
	case major == 2:
		return minor > 17 || (minor == 17 && patch >= 8), nil
	case major == 3 && minor == 0:
		return patch >= 5, nil
	case major == 3 && minor == 1:
		return patch >= 3, nil
	}
	return true, nil
}

// vswitchdVersion extracts the version from the unixctl "version" reply
// ("ovs-vswitchd (Open vSwitch) 3.1.0").
func vswitchdVersion(reply string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(reply), "\n")
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// bridgeDatapathType finds bridge br in a "dpif/show" reply and returns the
// type of the datapath it belongs to ("netdev", "system"), or "" if br is
// not listed. The reply lists each datapath as "TYPE@NAME: …" followed by
// its bridges indented by two spaces ("  br-int:") and their ports (deeper).
func bridgeDatapathType(reply, br string) string {
	typ := ""
	sc := bufio.NewScanner(strings.NewReader(reply))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			t, _, ok := strings.Cut(line, "@")
			if ok {
				typ = t
			}
			continue
		}
		if strings.HasPrefix(line, "  ") && !strings.HasPrefix(line, "   ") &&
			strings.TrimSuffix(strings.TrimSpace(line), ":") == br {
			return typ
		}
	}
	return ""
}

// vswitchdCtlPath finds ovs-vswitchd's unixctl socket next to the bridge's
// management socket (both live in $OVS_RUNDIR): ovs-vswitchd.ctl when the
// daemon was started with --unixctl so, else ovs-vswitchd.PID.ctl (PID from
// ovs-vswitchd.pid), the default.
func vswitchdCtlPath(mgmtSock string) (string, error) {
	dir := filepath.Dir(mgmtSock)
	isSock := func(p string) bool {
		st, err := os.Stat(p)
		return err == nil && st.Mode()&os.ModeSocket != 0
	}
	if p := filepath.Join(dir, "ovs-vswitchd.ctl"); isSock(p) {
		return p, nil
	}
	pidFile := filepath.Join(dir, "ovs-vswitchd.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return "", fmt.Errorf("ovs-vswitchd unixctl socket: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return "", fmt.Errorf("ovs-vswitchd unixctl socket: bad pid in %s: %q", pidFile, strings.TrimSpace(string(b)))
	}
	p := filepath.Join(dir, fmt.Sprintf("ovs-vswitchd.%d.ctl", pid))
	if !isSock(p) {
		return "", fmt.Errorf("ovs-vswitchd unixctl socket %s not found", p)
	}
	return p, nil
}

// unixctlTimeout bounds one unixctl call.
const unixctlTimeout = 30 * time.Second

// unixctlCall sends one command to a unixctl socket (the JSON-RPC ovs-appctl
// speaks) and returns its reply text.
func unixctlCall(ctx context.Context, sock, method string, params ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, unixctlTimeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", sock)
	if err != nil {
		return "", fmt.Errorf("unixctl %s: %w", method, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if params == nil {
		params = []string{}
	}
	req := struct {
		ID     int      `json:"id"`
		Method string   `json:"method"`
		Params []string `json:"params"`
	}{0, method, params}
	if err := json.NewEncoder(c).Encode(req); err != nil {
		return "", fmt.Errorf("unixctl %s: %w", method, err)
	}
	var resp struct {
		ID     json.RawMessage `json:"id"`
		Result *string         `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.NewDecoder(c).Decode(&resp); err != nil {
		return "", fmt.Errorf("unixctl %s: reading the reply: %w", method, err)
	}
	if len(resp.Error) > 0 && string(resp.Error) != "null" {
		var msg string
		if json.Unmarshal(resp.Error, &msg) != nil {
			msg = string(resp.Error)
		}
		return "", fmt.Errorf("unixctl %s: %s", method, strings.TrimSpace(msg))
	}
	if resp.Result == nil {
		return "", errors.New("unixctl " + method + ": reply without result")
	}
	return *resp.Result, nil
}

// probeMegaflowBug decides, for the bridge behind mgmtSock, whether
// committed changes must be followed by a datapath flow purge; it returns
// the unixctl socket to purge through ("" if none is needed) and what it
// found, for the log.
func probeMegaflowBug(ctx context.Context, mgmtSock string) (ctl, version, dpType string, err error) {
	ctl, err = vswitchdCtlPath(mgmtSock)
	if err != nil {
		return "", "", "", err
	}
	out, err := unixctlCall(ctx, ctl, "version")
	if err != nil {
		return "", "", "", err
	}
	version = vswitchdVersion(out)
	fixed, err := megaflowBugFixed(version)
	if err != nil {
		return "", version, "", err
	}
	br := strings.TrimSuffix(filepath.Base(mgmtSock), ".mgmt")
	out, err = unixctlCall(ctx, ctl, "dpif/show")
	if err != nil {
		return "", version, "", err
	}
	dpType = bridgeDatapathType(out, br)
	if dpType == "" {
		return "", version, "", fmt.Errorf("bridge %s not listed by dpif/show", br)
	}
	if fixed || dpType != "netdev" {
		return "", version, dpType, nil
	}
	return ctl, version, dpType, nil
}
