package main

import (
	"bufio"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/testenv"
)

var runningRE = regexp.MustCompile(`msg="op25bd running".* openflow=(\S+) api=(\S+)`)

// startOp25bd runs the daemon on its embedded etcd with loopback listeners
// on free ports and returns its OpenFlow and API addresses.
func startOp25bd(t *testing.T, dir string) (openflow, apiAddr string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(dir, "op25bd"), "--node-id", "e2e", "--data-dir", t.TempDir(),
		"--openflow-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0")
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
		return addrs[0], addrs[1]
	case <-time.After(90 * time.Second):
		t.Fatal("op25bd did not start within 90s")
	}
	return "", ""
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
	openflow, apiAddr := startOp25bd(t, dir)
	c := ctl{t: t, bin: filepath.Join(dir, "op25bctl"), env: []string{"OP25B_SERVER=http://" + apiAddr}}

	policy := strings.Replace(exampleYAML, "0000000000000001", br.DPID, 1)
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
		if strings.Contains(st, br.DPID) && strings.Contains(st, " yes ") {
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
