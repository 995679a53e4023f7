package ovs

import (
	"github.com/go-logr/logr"
	"go.uber.org/zap"
)

// zapSink lets libovsdb (which logs through logr) write to our zap logger:
// logr V-levels above 0 become debug messages.
type zapSink struct{ l *zap.SugaredLogger }

func newLogr(l *zap.Logger) logr.Logger { return logr.New(zapSink{l.Sugar()}) }

func (s zapSink) Init(logr.RuntimeInfo) {}
func (s zapSink) Enabled(level int) bool {
	if level > 0 {
		return s.l.Desugar().Core().Enabled(zap.DebugLevel)
	}
	return s.l.Desugar().Core().Enabled(zap.InfoLevel)
}
func (s zapSink) Info(level int, msg string, kv ...any) {
	if level > 0 {
		s.l.Debugw(msg, kv...)
	} else {
		s.l.Infow(msg, kv...)
	}
}
func (s zapSink) Error(err error, msg string, kv ...any) {
	s.l.Errorw(msg, append(kv, "error", err)...)
}
func (s zapSink) WithValues(kv ...any) logr.LogSink { return zapSink{s.l.With(kv...)} }
func (s zapSink) WithName(name string) logr.LogSink { return zapSink{s.l.Named(name)} }
