package controller

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Per-switch protocol problems (errors for requests nobody waits for,
// malformed messages) are logged at most protoLogBurst times per
// protoLogWindow per session; the rest are counted and the next line
// that gets through says how many were left out. A switch, or something
// claiming to be one, can send thousands a second: they must not turn
// into thousands of log lines. op25b_openflow_errors_total still counts
// every OFPT_ERROR.
const (
	protoLogBurst  = 5
	protoLogWindow = 10 * time.Second
)

// logLimiter rate-limits one session's protocol-problem log lines.
type logLimiter struct {
	mu          sync.Mutex
	windowStart time.Time
	inWindow    int
	suppressed  int
}

// allow reports whether a line may be logged now and, if so, how many
// were suppressed since the last one that was.
func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.windowStart) >= protoLogWindow {
		l.windowStart, l.inWindow = now, 0
	}
	if l.inWindow >= protoLogBurst {
		l.suppressed++
		return false, 0
	}
	l.inWindow++
	suppressed, l.suppressed = l.suppressed, 0
	return true, suppressed
}

// protoWarn logs a per-switch protocol problem through the session's
// limiter.
func (s *session) protoWarn(msg string, args ...any) {
	ok, suppressed := s.protoLog.allow(time.Now())
	if !ok {
		return
	}
	if suppressed > 0 {
		args = append(args, "suppressed", suppressed)
	}
	s.logger().Log(context.Background(), slog.LevelWarn, msg+" (at most 5 such lines per 10s per switch)", args...)
}
