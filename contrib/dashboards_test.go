package contrib

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/op25b/op25b/api/apitypes"
	"github.com/op25b/op25b/internal/freeport"
	"github.com/op25b/op25b/internal/testenv"
)

// promServer is a real Prometheus (Debian's) started by a test on
// loopback with its own configuration and storage.
type promServer struct {
	url string
	mu  sync.Mutex
	log bytes.Buffer
}

// startPrometheus scrapes targets (job "op25b") every second and loads the
// shipped alert rules unchanged, evaluated every second. A rule's "for"
// only delays firing: an alert is pending from the first evaluation at
// which its expression holds, so the test sees "pending" within seconds
// without a shortened copy of the rules.
func startPrometheus(t *testing.T, targets []string) *promServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus not found (Debian package prometheus; `make deps` installs it): %v", err)
	}
	rules, err := filepath.Abs(filepath.Join("prometheus", "op25b-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	quoted := make([]string, len(targets))
	for i, tg := range targets {
		quoted[i] = fmt.Sprintf("%q", tg)
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: op25b
    static_configs:
      - targets: [%s]
`, rules, strings.Join(quoted, ", "))
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	ports, err := freeport.Loopback(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	p := &promServer{url: "http://" + addr}
	cmd := exec.Command(bin, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--log.level=warn")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout, cmd.Stderr = &lockedWriter{p}, &lockedWriter{p}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			p.mu.Lock()
			t.Logf("prometheus log:\n%s", p.log.String())
			p.mu.Unlock()
		}
	})
	testenv.Eventually(t, 60*time.Second, "prometheus ready", func() bool {
		resp, err := http.Get(p.url + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

type lockedWriter struct{ p *promServer }

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.log.Write(b)
}

// query runs an instant query and returns the number of series in the
// result (1 for a scalar) and the result as JSON.
func (p *promServer) query(expr string) (int, string, error) {
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string          `json:"resultType"`
			Result     json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, "", err
	}
	if r.Status != "success" {
		return 0, "", fmt.Errorf("%s", r.Error)
	}
	if r.Data.ResultType == "scalar" {
		return 1, string(r.Data.Result), nil
	}
	var series []json.RawMessage
	if err := json.Unmarshal(r.Data.Result, &series); err != nil {
		return 0, "", err
	}
	return len(series), string(r.Data.Result), nil
}

type alert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (p *promServer) alerts() ([]alert, error) {
	resp, err := http.Get(p.url + "/api/v1/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Alerts []alert `json:"alerts"`
		} `json:"data"`
	}
	return r.Data.Alerts, json.NewDecoder(resp.Body).Decode(&r)
}

// panelQuery is one query of one dashboard panel.
type panelQuery struct {
	dashboard, panel, expr string
}

// dashboardQueries reads every query of every panel of the dashboards in
// grafana/ (rows' nested panels included).
func dashboardQueries(t *testing.T) []panelQuery {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("grafana", "*.json"))
	if err != nil || len(files) < 3 {
		t.Fatalf("dashboards: %v %v", files, err)
	}
	type panel struct {
		Title   string  `json:"title"`
		Panels  []panel `json:"panels"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	}
	var out []panelQuery
	for _, f := range files {
		var d struct {
			Title  string  `json:"title"`
			Panels []panel `json:"panels"`
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				walk(p.Panels)
				if len(p.Targets) == 0 && len(p.Panels) == 0 {
					t.Errorf("%s: panel %q has no query", f, p.Title)
				}
				for _, tg := range p.Targets {
					out = append(out, panelQuery{d.Title, p.Title, tg.Expr})
				}
			}
		}
		walk(d.Panels)
	}
	return out
}

// grafanaVars stands in for what Grafana substitutes: every PoP, and
// windows long enough to span the whole (short) test.
var grafanaVars = strings.NewReplacer(`$pop`, `.*`, `$__rate_interval`, `5m`, `$__range`, `10m`)

// Every panel of every dashboard shows data from a real cluster scraped
// by a real Prometheus through --metrics-listen; then a bridge loses its
// controllers and its alert goes pending.
func TestDashboardsAgainstPrometheus(t *testing.T) {
	l := startLab(t)
	var targets []string
	for _, r := range l.replicas {
		targets = append(targets, r.metrics)
	}
	prom := startPrometheus(t, targets)
	testenv.Eventually(t, 60*time.Second, "both replicas scraped", func() bool {
		_, res, err := prom.query(`count(up{job="op25b"} == 1) == 2`)
		return err == nil && strings.Contains(res, `"2"`)
	})
	// Blocked SMTP for the per-PoP and per-pool panels, in bursts so the
	// graphs have a shape; and from the observing biz pool, counted but
	// forwarded, for the observed-vs-blocked panels. Twice, with the
	// masters' offender reads in between: an offender attempts series is
	// born at its first read with the attempts counted so far, which
	// increase() cannot see; the second round gives the panels that use
	// it something to show.
	for round := 1; round <= 2; round++ {
		for range 3 {
			sendSMTP(t, l.bridges["tokyo-1-sub-a"], "10.1.2.3", "198.51.100.7", 12)
			sendSMTP(t, l.bridges["osaka-1-sub-a"], "10.2.5.6", "198.51.100.9", 6)
			sendSMTP(t, l.bridges["tokyo-1-sub-b"], "10.3.4.5", "198.51.100.7", 4)
			time.Sleep(2 * time.Second)
		}
		// The masters read the offender tables: the sources are
		// attributed, the offender metrics have their per-bridge and
		// per-pool series.
		l.waitOffenders(t, map[string]string{
			"10.1.2.3": fmt.Sprintf("tokyo-dyn tokyo-1 attempts=%d observed=false", 36*round),
			"10.2.5.6": fmt.Sprintf("osaka-dyn osaka-1 attempts=%d observed=false", 18*round),
			"10.3.4.5": fmt.Sprintf("tokyo-biz tokyo-1 attempts=%d observed=true", 12*round),
		})
	}
	// The helpdesk's question about one of them: the installed flows agree
	// with the policy, so nothing is counted, but the disagreement counter
	// is there, at 0, for every bridge.
	code, body := l.call(t, http.MethodGet, "/v1/explain?src=10.1.2.3&dst=198.51.100.7&bridge=tokyo-1-sub-a", readToken, "")
	var x apitypes.Explain
	if code != http.StatusOK || json.Unmarshal(body, &x) != nil || x.Verdict != "drop" || x.Installed == nil || !x.Installed.Agrees {
		t.Errorf("GET /v1/explain: %d %s", code, body)
	}

	var fams []map[string]family
	for _, r := range l.replicas {
		fams = append(fams, scrapeFamilies(t, r.metrics))
	}
	inventory, exposed := metricInventory(fams...)
	t.Logf("op25b metrics exposed by the lab's replicas:\n%s", inventory)
	checkReferences(t, exposed)

	queries := dashboardQueries(t)
	deadline := time.Now().Add(60 * time.Second)
	for _, q := range queries {
		expr := grafanaVars.Replace(q.expr)
		var n int
		var res string
		var err error
		for {
			n, res, err = prom.query(expr)
			if err == nil && n > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		switch {
		case err != nil:
			t.Errorf("%s / %s: %s: %v", q.dashboard, q.panel, expr, err)
		case n == 0:
			t.Errorf("%s / %s: no data for %s", q.dashboard, q.panel, expr)
		default:
			if len(res) > 160 {
				res = res[:160] + "…"
			}
			t.Logf("%s / %s: %d series: %s", q.dashboard, q.panel, n, res)
		}
	}
	t.Logf("%d dashboard queries checked", len(queries))
	// The biz trial's phase shows as observing, at both PoPs (the rollout
	// dashboard's Active phase table has a mode column).
	if n, res, err := prom.query(`max by (service, pop) (op25b_phase_active{service="biz", mode="observe"}) == 1`); err != nil || n != 2 {
		t.Errorf("observing phase of biz: %d series %s %v, want one per PoP", n, res, err)
	}

	// The shipped rules are loaded and evaluate without errors.
	resp, err := http.Get(prom.url + "/api/v1/rules?type=alert")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if err := json.Unmarshal(body, &rules); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			names = append(names, r.Name)
			if r.Health == "err" {
				t.Errorf("rule %s: %s", r.Name, r.LastError)
			}
		}
	}
	sort.Strings(names)
	if len(names) < 11 {
		t.Errorf("alert rules loaded: %v", names)
	}
	// The lab's PKI issues certificates for 24 hours: the expiry alert
	// fires for the etcd client certificate and CA of both replicas, and
	// nothing else fires in a healthy lab.
	testenv.Eventually(t, 30*time.Second, "certificate alerts for the lab's 24-hour certificates", func() bool {
		alerts, err := prom.alerts()
		return err == nil && len(certificateAlerts(alerts)) == 4
	})
	if alerts, err := prom.alerts(); err != nil || len(alerts) != 4 {
		t.Errorf("alerts in a healthy lab: %+v %v", alerts, err)
	}

	screenshotGraph(t, prom.url, `sum by (pop) (op25b_blocked_packets_total)`, "prometheus-blocked-per-pop.png")
	screenshotGraph(t, prom.url, `sum by (pool, observed) (op25b_offender_attempts_total)`, "prometheus-offender-attempts.png")

	// osaka-1-sub-a loses both controllers: OP25BBridgeDisconnected goes
	// pending for it (and only for it).
	osaka := l.bridges["osaka-1-sub-a"]
	testenv.Run(t, "ovs-vsctl", "--timeout=10", "del-controller", osaka.Name)
	var got []alert
	testenv.Eventually(t, 60*time.Second, "OP25BBridgeDisconnected pending for osaka-1-sub-a", func() bool {
		got, err = prom.alerts()
		for _, a := range got {
			if a.Labels["alertname"] == "OP25BBridgeDisconnected" && a.Labels["name"] == "osaka-1-sub-a" &&
				a.Labels["pop"] == "osaka-1" && a.Labels["dpid"] == string(osaka.DPID) && (a.State == "pending" || a.State == "firing") {
				return true
			}
		}
		return false
	})
	if others := len(got) - len(certificateAlerts(got)); others != 1 {
		t.Errorf("alerts after one bridge lost its controllers: %+v", got)
	}
	t.Logf("alerts: %+v", got)
}

// certificateAlerts are the OP25BCertificateExpiresSoon alerts firing for
// the etcd channel.
func certificateAlerts(alerts []alert) []alert {
	var out []alert
	for _, a := range alerts {
		if a.Labels["alertname"] == "OP25BCertificateExpiresSoon" && a.Labels["channel"] == "etcd" && a.State == "firing" {
			out = append(out, a)
		}
	}
	return out
}

// screenshotGraph renders Prometheus's own graph page for expr (the last
// minute) in headless Chromium.
func screenshotGraph(t *testing.T, promURL, expr, name string) {
	t.Helper()
	ctx := browser(t)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	u := promURL + "/graph?g0.expr=" + url.QueryEscape(expr) + "&g0.tab=0&g0.range_input=1m"
	err := chromedp.Do(ctx,
		chromedp.Navigate(u),
		chromedp.WaitVisible(chromedp.CSS(`svg`)),
		chromedp.Sleep(time.Second),
	)
	if err != nil {
		t.Fatalf("Prometheus graph page %s: %v", u, err)
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	saveImage(t, name, png)
}
