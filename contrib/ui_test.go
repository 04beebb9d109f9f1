package contrib

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// pageView is what the rollout page shows, read from its DOM.
type pageView struct {
	State     string            `json:"state"`
	Revision  string            `json:"revision"`
	Token     string            `json:"token"`
	Bridges   map[string]string `json:"bridges"` // "pop/dpid" → health badge
	Timelines []struct {
		Service   string `json:"service"`
		Pop       string `json:"pop"`
		Active    string `json:"active"`
		Countdown string `json:"countdown"`
		Segments  int    `json:"segments"`
	} `json:"timelines"`
	// Offenders: the offenders table's rows by source ("pool pop attempts
	// destinations mode"), or the section's text when it has no table.
	Offenders     map[string]string `json:"offenders"`
	OffendersText string            `json:"offendersText"`
}

const readPage = `(() => {
  const v = {state: document.body.dataset.state, revision: (document.getElementById('revision') || {}).textContent || '',
    token: sessionStorage.getItem('op25b.token') || '', bridges: {}, timelines: [], offenders: {}, offendersText: ''};
  for (const tr of document.querySelectorAll('#bridges .pop tr[data-dpid]')) {
    v.bridges[tr.closest('.pop').dataset.pop + '/' + tr.dataset.dpid] = tr.querySelector('.badge').textContent;
  }
  for (const tl of document.querySelectorAll('#rollout .timeline')) {
    const c = tl.querySelector('.countdown');
    v.timelines.push({service: tl.dataset.service, pop: tl.dataset.pop, active: tl.dataset.active,
      countdown: c ? c.textContent : '', segments: tl.querySelectorAll('.seg').length});
  }
  const offs = document.getElementById('offenders');
  for (const tr of offs.querySelectorAll('table tbody tr[data-src]')) {
    const td = [...tr.querySelectorAll('td')].map((c) => c.textContent);
    v.offenders[tr.dataset.src] = [td[1], td[2], td[3], td[4], td[5]].join(' ');
  }
  v.offendersText = offs.textContent;
  return v;
})()`

// The rollout page in a real browser against a real two-replica cluster:
// it asks for the token (a wrong one is refused), keeps it in
// sessionStorage, and shows the lab's bridges by PoP with their health,
// each service's phases per PoP with the active one and a running
// countdown to the next boundary, and the top offenders: a table with the
// sources that sent SMTP SYNs through the bridges, blocked or observed.
func TestRolloutPageInChromium(t *testing.T) {
	l := startLab(t)
	sendSMTP(t, l.bridges["tokyo-1-sub-a"], "10.1.2.3", "198.51.100.7", 5)
	sendSMTP(t, l.bridges["tokyo-1-sub-b"], "10.3.4.5", "198.51.100.7", 3)
	// The masters read their offender tables every 10 s: wait until the
	// API lists both sources, so the page's first load shows them.
	l.waitOffenders(t, map[string]string{
		"10.1.2.3": "tokyo-dyn tokyo-1 attempts=5 observed=false",
		"10.3.4.5": "tokyo-biz tokyo-1 attempts=3 observed=true",
	})
	ctx := browser(t)
	ctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	url := "http://" + l.replicas[1].api + "/ui/"
	err := chromedp.Do(ctx,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`#login`)),
		chromedp.SendKeys(chromedp.CSS(`#token`), "not-a-token"),
		chromedp.Click(chromedp.CSS(`#login button[type=submit]`)),
		chromedp.Poll[chromedp.Void](`document.getElementById('login-reason').textContent.includes('refused')`),
	)
	if err != nil {
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.outerHTML`))
		t.Fatalf("load %s, a wrong token: %v\npage:\n%s", url, err, html)
	}
	reason, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#login-reason`)))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a wrong token: %q", reason)
	err = chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`#token`), readToken),
		chromedp.Click(chromedp.CSS(`#login button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#content`)),
		chromedp.Poll[chromedp.Void](`document.body.dataset.state === 'ready'`),
	)
	if err != nil {
		t.Fatalf("log in with the read token: %v", err)
	}
	v, err := chromedp.Run(ctx, chromedp.Evaluate[pageView](readPage))
	if err != nil {
		t.Fatal(err)
	}
	if v.State != "ready" || v.Token != readToken || v.Revision != fmt.Sprintf("revision %d", l.revision) {
		t.Errorf("page state %q, token kept %q, %q; want ready, the token in sessionStorage, revision %d", v.State, v.Token, v.Revision, l.revision)
	}
	for name, br := range l.bridges {
		pop, _, _ := strings.Cut(name, "-sub-")
		if got := v.Bridges[pop+"/"+string(br.DPID)]; got != "ok" {
			t.Errorf("bridge %s (%s) under pop %s: health %q, want ok; page shows %v", name, br.DPID, pop, got, v.Bridges)
		}
	}
	countdown := regexp.MustCompile(`^(\d+d )?\d\d:\d\d:\d\d$`)
	want := map[string]struct {
		active   string
		left     time.Duration
		segments int
	}{
		"ftth/osaka-1":   {"0", 2 * time.Hour, 3},
		"ftth/tokyo-1":   {"0", 26 * time.Hour, 2},
		"v6plus/osaka-1": {"0", 0, 1},
		"v6plus/tokyo-1": {"0", 0, 1},
		"biz/osaka-1":    {"0", 26 * time.Hour, 2},
		"biz/tokyo-1":    {"0", 26 * time.Hour, 2},
	}
	if len(v.Timelines) != len(want) {
		t.Errorf("%d timelines, want %d: %+v", len(v.Timelines), len(want), v.Timelines)
	}
	for _, tl := range v.Timelines {
		w, ok := want[tl.Service+"/"+tl.Pop]
		switch {
		case !ok:
			t.Errorf("unexpected timeline %+v", tl)
		case tl.Active != w.active || tl.Segments != w.segments:
			t.Errorf("timeline %s/%s: active %q with %d phases, want %q with %d", tl.Service, tl.Pop, tl.Active, tl.Segments, w.active, w.segments)
		case w.left == 0 && tl.Countdown != "":
			t.Errorf("timeline %s/%s: countdown %q without a later phase", tl.Service, tl.Pop, tl.Countdown)
		case w.left > 0 && !countdown.MatchString(tl.Countdown):
			t.Errorf("timeline %s/%s: countdown %q", tl.Service, tl.Pop, tl.Countdown)
		case w.left > 0:
			left := parseCountdown(tl.Countdown)
			if elapsed := time.Since(l.now); left > w.left-elapsed+5*time.Second || left < w.left-elapsed-2*time.Minute {
				t.Errorf("timeline %s/%s: countdown %s, want about %s", tl.Service, tl.Pop, tl.Countdown, w.left-elapsed)
			}
		}
	}
	wantOffenders := map[string]string{
		"10.1.2.3": "tokyo-dyn tokyo-1 5 1 blocked",
		"10.3.4.5": "tokyo-biz tokyo-1 3 1 observed",
	}
	if fmt.Sprint(v.Offenders) != fmt.Sprint(wantOffenders) || strings.Contains(v.OffendersText, "null") || strings.Contains(v.OffendersText, "undefined") {
		t.Errorf("offenders table rows %v, want %v; section shows %q", v.Offenders, wantOffenders, v.OffendersText)
	}
	t.Logf("offenders table: %v", v.Offenders)

	// The countdown runs.
	sel := chromedp.CSS(`.timeline[data-service="ftth"][data-pop="osaka-1"] .countdown`)
	before, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond)
	after, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatal(err)
	}
	if before == after || parseCountdown(after) >= parseCountdown(before) {
		t.Errorf("countdown does not run: %q then %q", before, after)
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	saveImage(t, "rollout-page.png", png)
}

func parseCountdown(s string) time.Duration {
	var d, h, m, sec int
	if strings.Contains(s, "d ") {
		_, _ = fmt.Sscanf(s, "%dd %d:%d:%d", &d, &h, &m, &sec)
	} else {
		_, _ = fmt.Sscanf(s, "%d:%d:%d", &h, &m, &sec)
	}
	return time.Duration(((d*24+h)*60+m)*60+sec) * time.Second
}
