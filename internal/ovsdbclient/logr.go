package ovsdbclient

import (
	"sync/atomic"

	"github.com/go-logr/logr"
	"go.uber.org/zap"
)

// zapSink sends libovsdb's logr messages to zap: errors as errors, V(0)
// messages at info, more verbose ones at debug.
type zapSink struct {
	log    *zap.Logger
	name   string
	closed *atomic.Bool // set by Client.Close: drop everything after it
}

func (s *zapSink) Init(logr.RuntimeInfo) {}

func (s *zapSink) Enabled(level int) bool {
	if s.closed != nil && s.closed.Load() {
		return false
	}
	if level > 0 {
		return s.log.Core().Enabled(zap.DebugLevel)
	}
	return s.log.Core().Enabled(zap.InfoLevel)
}

func (s *zapSink) Info(level int, msg string, kv ...any) {
	if s.closed != nil && s.closed.Load() {
		return
	}
	if level > 0 {
		s.log.Debug(msg, fields(kv)...)
		return
	}
	s.log.Info(msg, fields(kv)...)
}

func (s *zapSink) Error(err error, msg string, kv ...any) {
	if s.closed != nil && s.closed.Load() {
		return
	}
	s.log.Error(msg, append(fields(kv), zap.Error(err))...)
}

func (s *zapSink) WithValues(kv ...any) logr.LogSink {
	return &zapSink{log: s.log.With(fields(kv)...), name: s.name, closed: s.closed}
}

func (s *zapSink) WithName(name string) logr.LogSink {
	return &zapSink{log: s.log.Named(name), name: name, closed: s.closed}
}

func fields(kv []any) []zap.Field {
	out := make([]zap.Field, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			k = "key"
		}
		out = append(out, zap.Any(k, kv[i+1]))
	}
	return out
}
