package controller

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	of "github.com/netrack/openflow"
	"github.com/netrack/openflow/ofp"

	"github.com/op25b/op25b/controller/ofwire"
)

// countingHandler counts log records by message prefix.
type countingHandler struct {
	mu     sync.Mutex
	counts map[string]int
	attrs  map[string][]slog.Attr
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *countingHandler) WithGroup(string) slog.Handler            { return h }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[r.Message]++
	r.Attrs(func(a slog.Attr) bool {
		h.attrs[r.Message] = append(h.attrs[r.Message], a)
		return true
	})
	return nil
}

func (h *countingHandler) matching(prefix string) (n int, suppressed int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for msg, c := range h.counts {
		if strings.HasPrefix(msg, prefix) {
			n += c
			for _, a := range h.attrs[msg] {
				if a.Key == "suppressed" {
					suppressed += a.Value.Int64()
				}
			}
		}
	}
	return n, suppressed
}

// Regression (issue 11, "Saturation"): 5000 OFPT_ERROR messages with xids
// nobody waits for gave 5000 WARN lines. They are now logged at most
// protoLogBurst times per protoLogWindow per switch, and still counted.
func TestRegressionOpenFlowErrorFloodLogLines(t *testing.T) {
	h := &countingHandler{counts: map[string]int{}, attrs: map[string][]slog.Attr{}}
	rc := startController(t, Config{Logger: slog.New(h)})
	fs := connectFake(t, rc, 0x5000, nil)
	const flood = 5000
	var msgs [][]byte
	for i := 0; i < flood; i++ {
		msgs = append(msgs, ofError(ofwire.Header{Version: ofwire.Version13, Type: of.TypeFlowMod, Length: 8, XID: 0x7000_0000 + uint32(i)}, ofp.ErrTypeBadRequest, ofp.ErrCodeBadRequestBadType))
	}
	fs.send(msgs...)
	waitFor(t, "all errors counted", func() bool { return rc.status(dpidString(0x5000)).OpenFlowErrors >= flood })
	n, _ := h.matching("openflow error for no pending request")
	t.Logf("%d OFPT_ERROR with unknown xids → %d log lines", flood, n)
	if n == 0 || n > protoLogBurst {
		t.Fatalf("%d log lines for %d errors in one window, want 1..%d", n, flood, protoLogBurst)
	}
}

func TestLogLimiter(t *testing.T) {
	var l logLimiter
	t0 := time.Unix(1000, 0)
	for i := 0; i < protoLogBurst; i++ {
		if ok, _ := l.allow(t0); !ok {
			t.Fatalf("line %d of the burst refused", i)
		}
	}
	for i := 0; i < 100; i++ {
		if ok, _ := l.allow(t0.Add(time.Second)); ok {
			t.Fatal("line beyond the burst allowed within the window")
		}
	}
	ok, suppressed := l.allow(t0.Add(protoLogWindow))
	if !ok || suppressed != 100 {
		t.Fatalf("first line of the next window: %v, suppressed %d; want true, 100", ok, suppressed)
	}
	if ok, suppressed := l.allow(t0.Add(protoLogWindow)); !ok || suppressed != 0 {
		t.Fatalf("second line: %v %d", ok, suppressed)
	}
}
