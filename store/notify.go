package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// This file is the revocation-notification contract between the backends
// that publish revocations to every node (pgstore, redisstore) and the
// caches that listen (store/cache).

// Kind says what a revocation Event removed.
type Kind string

// The kinds of Event.
const (
	// KindSessions: the sessions named by Event.Fingerprints were deleted
	// (revoked one by one, or logged out).
	KindSessions Kind = "sessions"
	// KindPrincipal: every session of Event.Principal was revoked.
	KindPrincipal Kind = "principal"
	// KindAll: every session was revoked.
	KindAll Kind = "all"
	// KindFlush: something may have been revoked that the event cannot name
	// (too many fingerprints for one message, or a subscription that was
	// re-established after events may have been lost). Drop everything.
	KindFlush Kind = "flush"
)

// Event is one revocation, as published by a backend to every node.
type Event struct {
	// Seq is the value of the store's revocation counter after this
	// revocation; 0 for a KindFlush sent by the subscriber itself.
	Seq int64 `json:"-"`
	// Kind says what was revoked.
	Kind Kind `json:"k"`
	// Fingerprints lists the sessions of a KindSessions event.
	Fingerprints []string `json:"f,omitempty"`
	// Principal names the user of a KindPrincipal event.
	Principal string `json:"p,omitempty"`
	// At is when the revocation was published, by the publisher's clock
	// (used to observe propagation lag). Zero if unknown.
	At time.Time `json:"-"`
	// AtNanos carries At on the wire.
	AtNanos int64 `json:"t,omitempty"`
}

// Notifier is implemented by backends that publish every revocation to every
// node (PostgreSQL LISTEN/NOTIFY, Redis pub/sub) and keep a revocation
// counter that each revocation increments in the same transaction that
// revokes.
type Notifier interface {
	// Subscribe delivers every revocation published through the backend,
	// by any node, to fn, until ctx is done; then it returns ctx.Err().
	// It reconnects by itself when the connection is lost, and calls fn
	// with a KindFlush event after every (re)subscription, since events may
	// have been missed in between. fn is called from one goroutine.
	Subscribe(ctx context.Context, fn func(Event)) error
	// RevocationSeq returns the current value of the revocation counter.
	RevocationSeq(ctx context.Context) (int64, error)
}

// MaxPayload is the largest encoded event a backend should publish; an
// event that does not fit is published as KindFlush instead. (PostgreSQL's
// NOTIFY payload limit is 8000 bytes.)
const MaxPayload = 7000

// EncodePayload encodes ev (without Seq) for publishing. It encodes a
// KindFlush event if ev does not fit in MaxPayload bytes. Backends prefix
// the payload with the revocation counter and a space (see DecodeMessage).
func EncodePayload(ev Event) string {
	if !ev.At.IsZero() {
		ev.AtNanos = ev.At.UnixNano()
	}
	b, err := json.Marshal(ev)
	if err != nil || len(b) > MaxPayload {
		b, _ = json.Marshal(Event{Kind: KindFlush, AtNanos: ev.AtNanos})
	}
	return string(b)
}

// DecodeMessage decodes a published message "<seq> <payload>".
func DecodeMessage(msg string) (Event, error) {
	seqText, payload, ok := strings.Cut(msg, " ")
	if !ok {
		return Event{}, fmt.Errorf("store: malformed revocation message")
	}
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if err != nil {
		return Event{}, fmt.Errorf("store: malformed revocation counter: %w", err)
	}
	var ev Event
	if err := json.Unmarshal([]byte(payload), &ev); err != nil {
		return Event{}, fmt.Errorf("store: malformed revocation payload: %w", err)
	}
	switch ev.Kind {
	case KindSessions, KindPrincipal, KindAll, KindFlush:
	default:
		return Event{}, fmt.Errorf("store: unknown revocation kind %q", ev.Kind)
	}
	ev.Seq = seq
	if ev.AtNanos != 0 {
		ev.At = time.Unix(0, ev.AtNanos)
	}
	return ev, nil
}

// Resubscribe runs listen until ctx is done, for a Notifier's Subscribe:
// each time listen returns (its connection was lost) it waits with
// exponential backoff, from 10 ms up to 1 s, and calls it again. listen
// calls connected once it is subscribed, which resets the backoff; it
// must deliver a KindFlush event after every subscription, since events
// may have been missed in between. what names the listener in the log.
func Resubscribe(ctx context.Context, log *slog.Logger, what string, listen func(ctx context.Context, connected func()) error) error {
	backoff := 10 * time.Millisecond
	for {
		err := listen(ctx, func() { backoff = 10 * time.Millisecond })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Warn(what+" lost its connection; reconnecting", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}
