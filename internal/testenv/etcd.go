package testenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/op25b/op25b/internal/etcdembed"
	"github.com/op25b/op25b/internal/freeport"
)

// Etcd is a single-node embedded etcd member for one test.
type Etcd struct {
	Endpoints []string
	// Client is connected to Endpoints and closed at cleanup.
	Client *clientv3.Client
}

// EmbeddedEtcd starts an embedded etcd (etcdembed.Start) with its data
// in t.TempDir() and stops it when the test ends.
func EmbeddedEtcd(t testing.TB) *Etcd {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	endpoints, stop, err := etcdembed.Start(ctx, t.TempDir(), slog.New(slog.DiscardHandler), etcdembed.Options{})
	if err != nil {
		t.Fatalf("embedded etcd: %v", err)
	}
	cli, err := NewEtcdClient(endpoints)
	if err != nil {
		stop()
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() {
		cli.Close()
		stop()
	})
	return &Etcd{Endpoints: endpoints, Client: cli}
}

// NewEtcdClient returns a client for endpoints with test-friendly dial and
// keepalive settings (a dead member is noticed within seconds). Callers
// close it.
func NewEtcdClient(endpoints []string) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		// The client's own warnings (retries while a member is down) are
		// expected noise in failure tests.
		Logger: zap.NewNop(),
	})
}

// debianEtcd is the external etcd server the failure tests run against.
const debianEtcd = "/usr/bin/etcd"

// EtcdCluster is a real multi-member etcd cluster of Debian's etcd
// processes on loopback, for tests of member loss and quorum loss.
type EtcdCluster struct {
	// Endpoints lists every member's client URL, in member order.
	Endpoints []string
	// Client is connected to all members and closed at cleanup.
	Client *clientv3.Client

	t       testing.TB
	mu      sync.Mutex
	members []*etcdMember
}

type etcdMember struct {
	name      string
	dataDir   string
	clientURL string
	peerURL   string
	logPath   string
	args      []string
	cmd       *exec.Cmd
	exited    chan struct{}
}

// NewEtcdCluster starts a cluster of members processes (each with its own
// data directory and fixed loopback ports chosen at start, reused by
// StartMember) and waits until it serves requests. Everything is killed at
// cleanup. Without /usr/bin/etcd it fails under CI and skips otherwise.
func NewEtcdCluster(t testing.TB, members int) *EtcdCluster {
	t.Helper()
	if _, err := os.Stat(debianEtcd); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("etcd is required under CI: %v", err)
		}
		t.Skipf("etcd not installed (run `make deps`): %v", err)
	}
	if members < 1 {
		t.Fatalf("NewEtcdCluster: %d members", members)
	}
	root := t.TempDir()
	c := &EtcdCluster{t: t}
	ports, err := freeLoopbackPorts(2 * members)
	if err != nil {
		t.Fatal(err)
	}
	var initial []string
	for i := 0; i < members; i++ {
		m := &etcdMember{
			name:      fmt.Sprintf("m%d", i),
			dataDir:   filepath.Join(root, fmt.Sprintf("m%d", i)),
			clientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			peerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			logPath:   filepath.Join(root, fmt.Sprintf("m%d.log", i)),
		}
		c.members = append(c.members, m)
		c.Endpoints = append(c.Endpoints, m.clientURL)
		initial = append(initial, m.name+"="+m.peerURL)
	}
	token := "op25b-test-" + filepath.Base(root)
	for _, m := range c.members {
		m.args = []string{
			"--name", m.name,
			"--data-dir", m.dataDir,
			"--listen-client-urls", m.clientURL,
			"--advertise-client-urls", m.clientURL,
			"--listen-peer-urls", m.peerURL,
			"--initial-advertise-peer-urls", m.peerURL,
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-state", "new",
			"--initial-cluster-token", token,
			"--logger", "zap",
			"--log-level", "warn",
		}
	}
	t.Cleanup(c.stopAll)
	for i := range c.members {
		c.StartMember(i)
	}
	cli, err := NewEtcdClient(c.Endpoints)
	if err != nil {
		t.Fatalf("etcd cluster client: %v", err)
	}
	t.Cleanup(func() { cli.Close() })
	c.Client = cli
	c.waitServing(cli, 60*time.Second)
	return c
}

// StartMember (re)starts member i with its original ports and data
// directory. It does not wait for the cluster to have quorum.
func (c *EtcdCluster) StartMember(i int) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.members[i]
	if m.cmd != nil {
		return
	}
	logf, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatalf("etcd member %s log: %v", m.name, err)
	}
	cmd := exec.Command(debianEtcd, m.args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Kill the member if the test binary dies without running cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		c.t.Fatalf("start etcd member %s: %v", m.name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	m.cmd, m.exited = cmd, exited
}

// StopMember kills member i (SIGKILL: a crash, not a graceful leave; its
// data directory stays for StartMember).
func (c *EtcdCluster) StopMember(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopLocked(c.members[i])
}

func (c *EtcdCluster) stopLocked(m *etcdMember) {
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Kill()
	<-m.exited
	m.cmd, m.exited = nil, nil
}

func (c *EtcdCluster) stopAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.members {
		c.stopLocked(m)
	}
	if c.t.Failed() {
		for _, m := range c.members {
			if data, err := os.ReadFile(m.logPath); err == nil && len(data) > 0 {
				c.t.Logf("etcd member %s log (tail):\n%s", m.name, etcdLogTail(string(data), 4000))
			}
		}
	}
}

// WaitServing blocks until the cluster answers a linearizable read (i.e.
// has quorum), failing the test after timeout.
func (c *EtcdCluster) WaitServing(timeout time.Duration) {
	c.t.Helper()
	c.waitServing(c.Client, timeout)
}

func (c *EtcdCluster) waitServing(cli *clientv3.Client, timeout time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = cli.Get(ctx, "/op25b-testenv-probe")
		cancel()
		if err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("etcd cluster %v not serving after %v: %v", c.Endpoints, timeout, err)
}

func freeLoopbackPorts(n int) ([]int, error) { return freeport.Loopback(n) }

func etcdLogTail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
