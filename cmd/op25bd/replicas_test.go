package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/op25b/op25b/internal/freeport"
	"github.com/op25b/op25b/internal/testenv"
)

// replica is one op25bd process of a multi-replica test or benchmark, on
// fixed ports so that it can be killed (kill -9) and started again as the
// same replica: switches reconnect to the same targets. Its JSON log is
// kept, parsed, with each line's own timestamp: the benchmarks time
// takeovers and acknowledgements from the daemons' own log lines.
type replica struct {
	t        testing.TB
	id       string
	args     []string
	openflow string // 127.0.0.1:PORT
	api      string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	lines  []logLine
	pid    int
}

// logLine is one line of op25bd's JSON log, with the attributes the
// benchmarks look at.
type logLine struct {
	Time     time.Time `json:"time"`
	Msg      string    `json:"msg"`
	DPID     string    `json:"dpid"`
	Role     string    `json:"role"`
	Revision int64     `json:"revision"`
	Audit    bool      `json:"audit"`
	Took     int64     `json:"took"`    // nanoseconds (slog's JSON for a duration)
	Install  int64     `json:"install"` // nanoseconds
}

// startReplica starts op25bd as replica id on etcd, with a fresh pair of
// ports, and waits until it runs.
func startReplica(t testing.TB, id string, etcd []string, extra ...string) *replica {
	t.Helper()
	ports, err := freeport.Loopback(2)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{t: t, id: id,
		openflow: fmt.Sprintf("127.0.0.1:%d", ports[0]), api: fmt.Sprintf("127.0.0.1:%d", ports[1])}
	r.args = append([]string{"--node-id", id, "--openflow-listen", r.openflow, "--api-listen", r.api,
		"--etcd-endpoints", strings.Join(etcd, ","), "--log-format", "json", "--log-level", "info"}, extra...)
	r.start()
	t.Cleanup(func() {
		r.kill()
		if t.Failed() {
			t.Logf("op25bd %s log (tail):\n%s", id, r.tail(40))
		}
	})
	return r
}

// start runs the process with r's arguments and waits for "op25bd running".
func (r *replica) start() {
	r.t.Helper()
	cmd := exec.Command(buildDaemon(r.t), r.args...)
	cmd.Env = os.Environ()
	// Killed with the test binary: never a stray daemon.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	exited := make(chan struct{})
	r.mu.Lock()
	r.cmd, r.exited, r.pid = cmd, exited, cmd.Process.Pid
	r.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var l logLine
			if json.Unmarshal(sc.Bytes(), &l) != nil {
				continue
			}
			r.mu.Lock()
			r.lines = append(r.lines, l)
			r.mu.Unlock()
		}
		_ = cmd.Wait()
		close(exited)
	}()
	testenv.Eventually(r.t, 60*time.Second, r.id+" running", func() bool {
		_, ok := r.find(time.Time{}, func(l logLine) bool { return l.Msg == "op25bd running" })
		return ok
	})
}

// kill is kill -9: no goodbye, the lease lingers until etcd expires it.
func (r *replica) kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-exited
}

// restart starts the replica again with the same id and ports.
func (r *replica) restart() { r.start() }

// find returns the time of the first log line at or after from that
// matches.
func (r *replica) find(from time.Time, match func(logLine) bool) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.lines {
		if !l.Time.Before(from) && match(l) {
			return l.Time, true
		}
	}
	return time.Time{}, false
}

// count is the number of log lines at or after from that match.
func (r *replica) count(from time.Time, match func(logLine) bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, l := range r.lines {
		if !l.Time.Before(from) && match(l) {
			n++
		}
	}
	return n
}

func (r *replica) tail(n int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, l := range r.lines[max(0, len(r.lines)-n):] {
		fmt.Fprintf(&b, "%s %s dpid=%s role=%s revision=%d\n", l.Time.Format("15:04:05.000"), l.Msg, l.DPID, l.Role, l.Revision)
	}
	return b.String()
}

// rssKiB is the process's resident set (VmRSS) in KiB.
func (r *replica) rssKiB() int64 { return r.status("VmRSS:") }

// hwmKiB is the process's peak resident set (VmHWM) in KiB.
func (r *replica) hwmKiB() int64 { return r.status("VmHWM:") }

// status reads one "Name: N kB" line of /proc/PID/status.
func (r *replica) status(field string) int64 {
	r.mu.Lock()
	pid := r.pid
	r.mu.Unlock()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// masterIn returns which replica the cluster's status records name as the
// master of every bridge, from one replica's /v1/status.
func masterIn(api string) (map[string]string, map[string]int64, error) {
	s, err := getStatus(api)
	if err != nil {
		return nil, nil, err
	}
	masters, applied := map[string]string{}, map[string]int64{}
	for _, b := range s.Bridges {
		masters[string(b.DPID)], applied[string(b.DPID)] = b.Master, b.AppliedRevision
	}
	return masters, applied, nil
}
