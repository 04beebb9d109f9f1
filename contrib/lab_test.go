// Package contrib holds what a NOC puts next to op25b: Grafana dashboards
// (grafana/), Prometheus alert rules and a scrape configuration
// (prometheus/). Its tests check them for real: a small lab of two
// op25bd processes on a TLS etcd with three Open vSwitch bridges, scraped
// by a real Prometheus (every dashboard query must return data, and a
// disconnected bridge's alert must go pending), and the rollout page
// driven in a real headless Chromium.
package contrib

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/internal/testenv"
)

// updateImages copies the screenshots the tests take into docs/images,
// where the README shows them.
var updateImages = flag.Bool("update-images", false, "copy the screenshots into ../docs/images")

const (
	readToken  = "noc-r3ad-t0ken-15"
	writeToken = "ops-wr1te-t0ken-15"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	runningRE = regexp.MustCompile(`msg="op25bd running".* openflow=(\S+) api=(\S+)`)
	metricsRE = regexp.MustCompile(`msg="op25bd running".* metrics=(\S+)`)
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func buildDaemon(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "op25bd-contrib")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "op25bd")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/op25b/op25b/cmd/op25bd").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// replica is one op25bd process of the lab.
type replica struct {
	id                     string
	openflow, api, metrics string

	mu  sync.Mutex
	log bytes.Buffer
}

func startReplica(t *testing.T, id string, args ...string) *replica {
	t.Helper()
	r := &replica{id: id}
	all := append([]string{"--node-id", id, "--openflow-listen", "127.0.0.1:0", "--api-listen", "127.0.0.1:0",
		"--metrics-listen", "127.0.0.1:0", "--lease-ttl", "3s", "--audit-interval", "2s"}, args...)
	cmd := exec.Command(buildDaemon(t), all...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			r.mu.Lock()
			r.log.WriteString(line + "\n")
			if m := runningRE.FindStringSubmatch(line); m != nil {
				r.openflow, r.api = m[1], m[2]
			}
			if m := metricsRE.FindStringSubmatch(line); m != nil {
				r.metrics = m[1]
			}
			r.mu.Unlock()
		}
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			r.mu.Lock()
			s := r.log.String()
			r.mu.Unlock()
			if len(s) > 5000 {
				s = s[len(s)-5000:]
			}
			t.Logf("op25bd %s log:\n%s", id, s)
		}
	})
	testenv.Eventually(t, 60*time.Second, id+" running", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return r.api != "" && r.metrics != ""
	})
	return r
}

// lab is two replicas on a TLS etcd (so that certificate expiry metrics
// exist) enforcing three bridges in two PoPs, with a token file.
type lab struct {
	replicas []*replica
	bridges  map[string]testenv.Bridge // by name
	revision int64
	now      time.Time // when the document's phases were set
}

// The lab's document: ftth's first phase started an hour ago everywhere
// (block mobile carriers), osaka-1 gets "block all" in 2 hours, everyone
// in 26 hours; v6plus blocks all, always; biz (a trial) has observed
// since an hour ago (attempts are counted, not dropped) and enforces in
// 26 hours.
const labDoc = `{
 "pools": [
  {"name": "tokyo-dyn", "prefix": "10.1.0.0/16", "kind": "dynamic", "service": "ftth"},
  {"name": "tokyo-fixed", "prefix": "10.1.200.0/29", "kind": "static"},
  {"name": "osaka-dyn", "prefix": "10.2.0.0/16", "kind": "dynamic", "service": "ftth"},
  {"name": "tokyo-v6", "prefix": "2001:db8:1::/48", "kind": "dynamic", "service": "v6plus"},
  {"name": "tokyo-biz", "prefix": "10.3.0.0/16", "kind": "dynamic", "service": "biz"}],
 "relays": [{"name": "msa", "prefix": "192.0.2.25/32"}],
 "destinations": [{"name": "mobile-carriers", "prefixes": ["198.51.100.0/24"]}],
 "services": [
  {"name": "ftth", "phases": [
   {"from": %q, "block": ["mobile-carriers"], "relays": true},
   {"from": %q, "block": "all", "relays": true, "pops": ["osaka-1"]},
   {"from": %q, "block": "all", "relays": true}]},
  {"name": "v6plus", "phases": [{"block": "all", "relays": false}]},
  {"name": "biz", "phases": [
   {"from": %q, "block": "all", "relays": true, "mode": "observe"},
   {"from": %q, "block": "all", "relays": true}]}],
 "bridges": [
  {"dpid": %q, "name": "tokyo-1-sub-a", "pop": "tokyo-1"},
  {"dpid": %q, "name": "tokyo-1-sub-b", "pop": "tokyo-1"},
  {"dpid": %q, "name": "osaka-1-sub-a", "pop": "osaka-1"}]
}`

func startLab(t *testing.T) *lab {
	t.Helper()
	testenv.RequireOVS(t)
	pki := testenv.NewPKI(t, "noc-lab")
	etcdEP := testenv.EtcdTLS(t, pki)
	client := pki.Issue(t, "op25bd")
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("noc "+readToken+" read\nops "+writeToken+" write\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l := &lab{bridges: map[string]testenv.Bridge{}}
	for _, id := range []string{"noc-a", "noc-b"} {
		l.replicas = append(l.replicas, startReplica(t, id, "--etcd-endpoints", etcdEP,
			"--etcd-cert", client.Cert, "--etcd-key", client.Key, "--etcd-ca", pki.CA, "--api-token-file", tokens))
	}
	var targets []string
	for _, r := range l.replicas {
		targets = append(targets, "tcp:"+r.openflow)
	}
	var dpids []any
	for _, name := range []string{"tokyo-1-sub-a", "tokyo-1-sub-b", "osaka-1-sub-a"} {
		br := testenv.NewBridge(t, "")
		br.AddPort(t, 1)
		br.AddPort(t, 2)
		br.SetController(t, targets...)
		l.bridges[name] = br
		dpids = append(dpids, br.DPID)
	}
	l.now = time.Now().Truncate(time.Second)
	jst := time.FixedZone("", 9*3600)
	at := func(d time.Duration) any { return l.now.Add(d).In(jst).Format(time.RFC3339) }
	doc := fmt.Sprintf(labDoc, append([]any{at(-time.Hour), at(2 * time.Hour), at(26 * time.Hour), at(-time.Hour), at(26 * time.Hour)}, dpids...)...)
	code, body := l.call(t, http.MethodPut, "/v1/config", writeToken, doc)
	if code != http.StatusOK {
		t.Fatalf("PUT /v1/config: %d %s", code, body)
	}
	var put struct{ Revision int64 }
	if err := json.Unmarshal(body, &put); err != nil {
		t.Fatal(err)
	}
	l.revision = put.Revision
	testenv.Eventually(t, 90*time.Second, "every bridge connected, mastered and applied", func() bool {
		var st struct {
			Bridges []struct {
				Connected       bool   `json:"connected"`
				Master          string `json:"master"`
				AppliedRevision int64  `json:"applied_revision"`
			} `json:"bridges"`
		}
		code, body := l.call(t, http.MethodGet, "/v1/status", readToken, "")
		if code != http.StatusOK || json.Unmarshal(body, &st) != nil || len(st.Bridges) != 3 {
			return false
		}
		for _, b := range st.Bridges {
			if !b.Connected || b.Master == "" || b.AppliedRevision < l.revision {
				return false
			}
		}
		return true
	})
	return l
}

// call sends one API request to the first replica.
func (l *lab) call(t *testing.T, method, path, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+l.replicas[0].api+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// waitOffenders waits until GET /v1/offenders lists every source of want
// (src → "pool pop attempts=N observed=B") as want says: each bridge's
// master reads its offender table every 10 s. It returns the answer.
func (l *lab) waitOffenders(t *testing.T, want map[string]string) apitypes.Offenders {
	t.Helper()
	var last apitypes.Offenders
	got := map[string]string{}
	testenv.Eventually(t, 60*time.Second, fmt.Sprintf("GET /v1/offenders lists %v", want), func() bool {
		code, body := l.call(t, http.MethodGet, "/v1/offenders?since=1h", readToken, "")
		if code != http.StatusOK || json.Unmarshal(body, &last) != nil {
			return false
		}
		got = map[string]string{}
		for _, o := range last.Offenders {
			got[o.Src] = fmt.Sprintf("%s %s attempts=%d observed=%t", o.Pool, o.Pop, o.Attempts, o.Observed)
		}
		for src, w := range want {
			if got[src] != w {
				return false
			}
		}
		return true
	})
	t.Logf("offenders: %v", got)
	return last
}

// sendSMTP pushes n SMTP SYNs from src to dst through the bridge's
// pipeline (packet-out to the flow table, as if they came in on port 1),
// so that the drop flows count them and the offender table learns the
// source (learn actions run for packet-outs too).
func sendSMTP(t *testing.T, br testenv.Bridge, src, dst string, n int) {
	t.Helper()
	pkt := hex.EncodeToString(smtpSYN(netip.MustParseAddr(src), netip.MustParseAddr(dst)))
	for range n {
		br.Ofctl(t, "packet-out", br.Name, "in_port=1 packet="+pkt+" actions=table")
	}
}

// smtpSYN is an Ethernet/IPv4/TCP SYN to port 25. Checksums are left 0:
// the flow table does not look at them.
func smtpSYN(src, dst netip.Addr) []byte {
	b := []byte{0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00}
	ip := make([]byte, 20)
	ip[0], ip[8], ip[9] = 0x45, 64, 6
	binary.BigEndian.PutUint16(ip[2:], 40)
	s, d := src.As4(), dst.As4()
	copy(ip[12:], s[:])
	copy(ip[16:], d[:])
	tcp := make([]byte, 20)
	binary.BigEndian.PutUint16(tcp[0:], 40000)
	binary.BigEndian.PutUint16(tcp[2:], 25)
	tcp[12], tcp[13] = 5<<4, 0x02
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	return append(append(b, ip...), tcp...)
}

// artifactDir keeps the screenshots of the last run for a person to look
// at (the test's own temporary directory is removed when it ends).
var artifactDir = filepath.Join(os.TempDir(), "op25b-artifacts")

// saveImage writes a screenshot into artifactDir (path logged, a test
// artifact) and, with -update-images, into docs/images.
func saveImage(t *testing.T, name string, png []byte) {
	t.Helper()
	if err := os.MkdirAll(artifactDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(artifactDir, name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(png))
	if *updateImages {
		dst := filepath.Join("..", "docs", "images", name)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("copied to %s", dst)
	}
}
