package cache

import "github.com/cordon-sec/cordon/store"

// The revocation-notification contract lives in package store, beside the
// backends that implement it; these names are kept for code written
// against the cache.

// Kind says what a revocation Event removed (see store.Kind).
type Kind = store.Kind

// The kinds of Event.
const (
	KindSessions  = store.KindSessions
	KindPrincipal = store.KindPrincipal
	KindAll       = store.KindAll
	KindFlush     = store.KindFlush
)

// Event is one revocation (see store.Event).
type Event = store.Event

// Notifier is implemented by backends that publish every revocation to
// every node (see store.Notifier).
type Notifier = store.Notifier

// MaxPayload is the largest encoded event a backend should publish (see
// store.MaxPayload).
const MaxPayload = store.MaxPayload
