// Package corpus holds realistic request-handling code, one case per
// function: functions named Bug... let a request-scoped value escape its
// request, functions named Safe... are look-alikes that do not. The
// precision/recall test counts cordonvet's findings per function.
package corpus

import (
	"context"
	"net/http"
	"sync"
)

func auditLog(r *http.Request)                       {}
func audit(ctx context.Context, user, action string) {}
func sendWelcome(email string)                       {}
func reindex(ctx context.Context, id string) error   { return nil }
func notify(msg string)                              {}
func process(b []byte)                               {}
func fetch(ctx context.Context, url string) error    { return nil }
func render(w http.ResponseWriter, v any)            {}

// Tx is a database transaction.
type Tx struct{}

func withTx(ctx context.Context, f func(*Tx) error) error { return f(nil) }

// Bus is an in-process pub/sub bus that lives as long as the server.
type Bus struct{}

// Subscribe registers f and returns a function that removes it.
func (b *Bus) Subscribe(topic string, f func(msg string)) (unsubscribe func()) { return func() {} }

var bus = &Bus{}

// Reporter is an error reporter shared by the whole process.
type Reporter struct{}

func (r *Reporter) AddHook(f func(err error)) {}
func (r *Reporter) Report(err error)          {}

var reporter = &Reporter{}

// Queue is a process-wide work queue.
type Queue struct{}

func (q *Queue) Push(f func()) {}

var retryQueue = &Queue{}

// TTLCache is a process-wide cache.
type TTLCache struct{}

func (c *TTLCache) Set(key string, v any) {}
func (c *TTLCache) Delete(key string)     {}

var pageCache = &TTLCache{}

// Logger is a structured logger.
type Logger struct{}

func (l *Logger) Info(msg string, args ...any) {}
func (l *Logger) Warn(msg string, args ...any) {}

var logger = &Logger{}

var mu sync.Mutex

// sortBy sorts items in place with less, synchronously.
func sortBy(items []string, less func(a, b string) bool) {
	for i := 1; i < len(items); i++ {
		for j := i; j > 0 && less(items[j], items[j-1]); j-- {
			items[j], items[j-1] = items[j-1], items[j]
		}
	}
}
