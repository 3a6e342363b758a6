// Structured logs: one line per event, `time level msg key=value...`.

package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Logger writes structured lines; safe for concurrent use. Loggers made by
// With share their parent's writer and add their pairs to every line.
type Logger struct {
	mu     sync.Mutex
	w      io.Writer
	parent *Logger       // set for loggers made by With: they write through it
	kv     []interface{} // pairs every line of a With logger starts with
}

// With returns a logger whose lines carry kv (key, value, ...) first, such
// as the host a line is about.
func (l *Logger) With(kv ...interface{}) *Logger {
	return &Logger{parent: l, kv: kv}
}

func (l *Logger) log(level, msg string, kv []interface{}) {
	for ; l.parent != nil; l = l.parent {
		kv = append(append([]interface{}(nil), l.kv...), kv...)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "time=%s level=%s msg=%q", time.Now().UTC().Format(time.RFC3339Nano), level, msg)
	for i := 0; i+1 < len(kv); i += 2 {
		v := fmt.Sprint(kv[i+1])
		// Values may come from the network (host ids, errors): quoted, a
		// line stays one line.
		if strings.ContainsAny(v, " \"=\n\r") || v == "" {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, " %v=%s", kv[i], v)
	}
	b.WriteByte('\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, b.String())
}

// Info logs progress.
func (l *Logger) Info(msg string, kv ...interface{}) { l.log("info", msg, kv) }

// Warn logs a failure that will be retried.
func (l *Logger) Warn(msg string, kv ...interface{}) { l.log("warn", msg, kv) }

// Error logs a failure that will not be retried.
func (l *Logger) Error(msg string, kv ...interface{}) { l.log("error", msg, kv) }
