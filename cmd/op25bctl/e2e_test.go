package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"
)

var runningRE = regexp.MustCompile(`msg="op25bd running".* openflow=(\S+) api=(\S+)`)

// startOp25bd runs the daemon on its embedded etcd with loopback listeners
// on free ports and returns its OpenFlow and API addresses.
func startOp25bd(t *testing.T, dir string, extra ...string) (openflow, apiAddr string, cmd *exec.Cmd) {
	t.Helper()
	args := append([]string{"--node-id", "e2e", "--data-dir", t.TempDir(),
		"--openflow-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0"}, extra...)
	cmd = exec.Command(filepath.Join(dir, "op25bd"), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logText strings.Builder
	found := make(chan [2]string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			mu.Lock()
			logText.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if m := runningRE.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case found <- [2]string{m[1], m[2]}:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("op25bd log:\n%s", logText.String())
			mu.Unlock()
		}
	})
	select {
	case addrs := <-found:
		return addrs[0], addrs[1], cmd
	case <-time.After(90 * time.Second):
		t.Fatal("op25bd did not start within 90s")
	}
	return "", "", nil
}

// TestEndToEndWithDaemon: op25bctl → op25bd (embedded etcd) → a real OVS
// bridge. apply, status --wait-revision, then OVS's own verdict, diff and
// flows reflect what was applied.
func TestEndToEndWithDaemon(t *testing.T) {
	testenv.RequireOVS(t)
	dir := buildBinaries(t)
	br := testenv.NewBridge(t, "")
	br.AddPort(t, 1)
	br.AddPort(t, 2)
	openflow, apiAddr, _ := startOp25bd(t, dir)
	c := ctl{t: t, bin: filepath.Join(dir, "op25bctl"), env: []string{"OP25B_SERVER=http://" + apiAddr}}

	policy := strings.Replace(exampleYAML, "0000000000000001", string(br.DPID), 1)
	out := c.ok("apply", "-f", writeFile(t, "policy.yaml", policy))
	var rev int64
	if _, err := fmt.Sscanf(out, "applied: revision %d", &rev); err != nil {
		t.Fatalf("apply: %q", out)
	}
	br.SetController(t, "tcp:"+openflow)

	// Waits for the bridge to connect and acknowledge revision rev. Before
	// it connects nothing is "connected", so also wait for that.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		st := c.ok("status", "--wait-revision", fmt.Sprint(rev), "--timeout", "90s")
		if strings.Contains(st, string(br.DPID)) && strings.Contains(st, " yes ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bridge never connected:\n%s", st)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// The document is enforced: OVS itself drops a dynamic subscriber's
	// SMTP (ftth "block all" since 2006-12-15) but forwards it to the relay.
	if v := br.Trace(t, "in_port=1,tcp,nw_src=10.1.0.5,nw_dst=203.0.113.9,tp_dst=25"); v != "drop" {
		t.Fatalf("SMTP from tokyo-dyn to the internet: %q, want drop", v)
	}
	if v := br.Trace(t, "in_port=1,tcp,nw_src=10.1.0.5,nw_dst=192.0.2.25,tp_dst=25"); v == "drop" {
		t.Fatal("SMTP to the relay dropped")
	}

	fl := c.ok("flows", "tokyo-1-sub-a")
	if !strings.Contains(fl, "in sync, from local") {
		t.Fatalf("flows:\n%s", fl)
	}

	// Moving the dynamic pool: diff shows it, apply + wait enforces it.
	moved := strings.Replace(policy, "10.1.0.0/16", "10.3.0.0/16", 1)
	movedFile := writeFile(t, "moved.yaml", moved)
	diff := c.ok("diff", "-f", movedFile)
	if !strings.Contains(diff, "10.3.0.0/16") || !strings.Contains(diff, "[connected]") {
		t.Fatalf("diff:\n%s", diff)
	}
	out = c.ok("apply", "-f", movedFile)
	if _, err := fmt.Sscanf(out, "applied: revision %d", &rev); err != nil {
		t.Fatalf("apply: %q", out)
	}
	c.ok("status", "--wait-revision", fmt.Sprint(rev), "--timeout", "90s")
	if v := br.Trace(t, "in_port=1,tcp,nw_src=10.3.0.5,nw_dst=203.0.113.9,tp_dst=25"); v != "drop" {
		t.Fatalf("SMTP from the moved pool: %q, want drop", v)
	}
	if v := br.Trace(t, "in_port=1,tcp,nw_src=10.1.0.5,nw_dst=203.0.113.9,tp_dst=25"); v == "drop" {
		t.Fatal("SMTP from the old prefix still dropped")
	}
	aud := c.ok("audit")
	if strings.Count(strings.TrimSpace(aud), "\n") != 2 {
		t.Fatalf("audit:\n%s", aud)
	}
}

// TestDaemonTokensReloadOnHUP: with --api-token-file every /v1 request
// needs a token, writes need the write role, and SIGHUP swaps the tokens.
func TestDaemonTokensReloadOnHUP(t *testing.T) {
	dir := buildBinaries(t)
	tokenFile := writeFile(t, "tokens", "ops first-t0ken-abcdefgh write\nnoc r3ad-t0ken-abcdefgh read\n")
	_, apiAddr, cmd := startOp25bd(t, dir, "--api-token-file", tokenFile)
	server := "--server=http://" + apiAddr
	policy := writeFile(t, "policy.yaml", exampleYAML)
	c := ctl{t: t, bin: filepath.Join(dir, "op25bctl")}

	c.fails(1, "unauthorized", server, "status")
	c.fails(1, "forbidden", server, "--token", "r3ad-t0ken-abcdefgh", "apply", "-f", policy)
	c.ok(server, "--token", "first-t0ken-abcdefgh", "apply", "-f", policy)

	if err := os.WriteFile(tokenFile, []byte("ops second-t0ken-abcdefgh write\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for c.run(server, "--token", "second-t0ken-abcdefgh", "audit").code != 0 {
		if time.Now().After(deadline) {
			t.Fatal("new token not accepted 30s after SIGHUP")
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.fails(1, "unknown token", server, "--token", "first-t0ken-abcdefgh", "audit")
	aud := c.ok(server, "--token", "second-t0ken-abcdefgh", "audit")
	if !strings.Contains(aud, " ops ") {
		t.Fatalf("audit does not name the token: %s", aud)
	}
}

// TestLostUpdateRefusedEndToEnd: op25bctl get config → edit → apply -f
// against a real op25bd, with another write in between, is refused with
// 409 and a message that says how to re-base, for the YAML and the JSON
// form; --force overwrites on purpose. Then the NOC's way back: history
// shows old and new values, get config --revision shows the old document,
// rollback restores it, guarded and audited.
func TestLostUpdateRefusedEndToEnd(t *testing.T) {
	dir := buildBinaries(t)
	_, apiAddr, _ := startOp25bd(t, dir)
	// No scheme: HOST:PORT means http://.
	c := ctl{t: t, bin: filepath.Join(dir, "op25bctl"), env: []string{"OP25B_SERVER=" + apiAddr}}
	rev1 := appliedRevision(t, c.ok("apply", "-f", writeFile(t, "policy.yaml", exampleYAML)))

	for _, form := range []string{"yaml", "json"} {
		args := []string{"get", "config"}
		if form == "json" {
			args = append(args, "-o", "json")
		}
		mine := c.ok(args...)
		if !strings.Contains(mine, "revision") {
			t.Fatalf("get config (%s) has no revision:\n%s", form, mine)
		}
		// Someone else changes the relay meanwhile.
		c.ok("apply", "-f", writeFile(t, "theirs-"+form+".yaml", strings.Replace(exampleYAML, "192.0.2.25/32", "192.0.2.26/32", 1)))
		// My edit of my (now stale) copy.
		edited := writeFile(t, "mine."+form, strings.Replace(mine, "10.1.200.0/29", "10.1.201.0/29", 1))
		r := c.run("apply", "-f", edited)
		if r.code != 1 {
			t.Fatalf("stale %s apply: exit %d\n%s%s", form, r.code, r.stdout, r.stderr)
		}
		for _, want := range []string{"HTTP 409 revision_conflict", "re-base", "op25bctl get config", "--force"} {
			if !strings.Contains(r.stderr, want) {
				t.Fatalf("stale %s apply: stderr lacks %q: %s", form, want, r.stderr)
			}
		}
		// Nothing of mine was stored: the relay is theirs, the pool unchanged.
		now := c.ok("get", "config")
		if !strings.Contains(now, "192.0.2.26/32") || strings.Contains(now, "10.1.201.0/29") {
			t.Fatalf("after the refused %s apply:\n%s", form, now)
		}
		c.ok("apply", "-f", writeFile(t, "theirs-undo-"+form+".yaml", exampleYAML))
	}

	// --force: overwrite on purpose.
	stale := writeFile(t, "stale.yaml", "revision: "+fmt.Sprint(rev1)+"\n"+strings.Replace(exampleYAML, "10.1.200.0/29", "10.1.202.0/29", 1))
	c.fails(1, "revision_conflict", "apply", "-f", stale)
	forced := appliedRevision(t, c.ok("apply", "-f", stale, "--force"))

	// history: each write with old → new values.
	hist := c.ok("history", "--limit", "3")
	for _, want := range []string{fmt.Sprintf("revision %d", forced), "~ pools/tokyo-fixed: prefix 10.1.200.0/29 → 10.1.202.0/29", "replace"} {
		if !strings.Contains(hist, want) {
			t.Fatalf("history lacks %q:\n%s", want, hist)
		}
	}
	// The document as it was at rev1, and a rollback to it.
	old := c.ok("get", "config", "--revision", fmt.Sprint(rev1))
	if !strings.Contains(old, "10.1.200.0/29") || strings.Contains(old, "10.1.202.0/29") {
		t.Fatalf("get config --revision %d:\n%s", rev1, old)
	}
	if dry := c.ok("rollback", fmt.Sprint(rev1), "--dry-run"); !strings.Contains(dry, "~ pools/tokyo-fixed") {
		t.Fatalf("rollback --dry-run:\n%s", dry)
	}
	c.fails(1, "revision_conflict", "rollback", fmt.Sprint(rev1), "--if-match", fmt.Sprint(forced-1))
	out := c.ok("rollback", fmt.Sprint(rev1))
	if !strings.HasPrefix(out, fmt.Sprintf("rolled back to revision %d: revision ", rev1)) {
		t.Fatalf("rollback: %q", out)
	}
	if now := c.ok("get", "config"); !strings.Contains(now, "10.1.200.0/29") {
		t.Fatalf("after rollback:\n%s", now)
	}
	if hist := c.ok("history", "--limit", "1"); !strings.Contains(hist, fmt.Sprintf("rollback to revision %d", rev1)) {
		t.Fatalf("history after rollback:\n%s", hist)
	}
	c.fails(1, "does not exist yet", "get", "config", "--revision", "99999999")
}
