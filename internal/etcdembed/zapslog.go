package etcdembed

import (
	"context"
	"log/slog"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// slogCore forwards the embedded etcd server's zap logs (warn and above)
// to op25b's slog logger, so that op25bd has one structured log stream.
//
// Two kinds of etcd warnings are demoted to debug: "apply request took too
// long" / "request stats" fire on every batch of a 100k-pool replace on a
// small machine and say nothing actionable; and once stop was called,
// embed reports its own listeners closing as errors ("mux: server closed").
type slogCore struct {
	log      *slog.Logger
	attrs    []any
	stopping *atomic.Bool
}

func newEtcdZapLogger(log *slog.Logger, stopping *atomic.Bool) *zap.Logger {
	return zap.New(&slogCore{log: log.With("component", "etcd"), stopping: stopping})
}

var demotedEtcdMessages = map[string]bool{
	"apply request took too long": true,
	"request stats":               true,
	"slow fdatasync":              true,
	"leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk": true,
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return l >= zapcore.WarnLevel }

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, attrs: append(append([]any(nil), c.attrs...), fieldAttrs(fields)...), stopping: c.stopping}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	level := slog.LevelWarn
	if e.Level >= zapcore.ErrorLevel {
		level = slog.LevelError
	}
	if demotedEtcdMessages[e.Message] || c.stopping.Load() {
		level = slog.LevelDebug
	}
	ctx := context.Background()
	if !c.log.Enabled(ctx, level) {
		return nil
	}
	args := append(append([]any(nil), c.attrs...), fieldAttrs(fields)...)
	c.log.Log(ctx, level, e.Message, args...)
	return nil
}

func (c *slogCore) Sync() error { return nil }

func fieldAttrs(fields []zapcore.Field) []any {
	if len(fields) == 0 {
		return nil
	}
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	out := make([]any, 0, 2*len(enc.Fields))
	for k, v := range enc.Fields {
		if k == "error" { // zap.Error's key; op25b logs errors under "err"
			k = "err"
		}
		out = append(out, k, v)
	}
	return out
}
