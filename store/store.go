// Package store defines the contract between cordon's session manager and the
// backends that persist sessions (memstore, sqlitestore, pgstore, redisstore).
//
// A store never sees a raw session token. Sessions are keyed by Hash, the
// SHA-256 of the session cookie's value exactly as sent on the wire; the
// fingerprint used in logs and revocation lists is the lowercase hex of the
// first 16 bytes of that hash (see Hash.Fingerprint).
//
// Revocation is by epoch: every session is stamped, when it is created, with
// the store's global epoch and with its principal's epoch. Revoking a
// principal or everyone bumps one counter, so it costs O(1) whatever the
// number of sessions; Find treats a session whose stamps are older than the
// current epochs as absent. Revoking single sessions deletes them.
//
// The package imports nothing outside the standard library.
package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Errors returned by stores. Check them with errors.Is; backends wrap them
// with context.
var (
	// ErrNotFound means no live session has the hash: it never existed, was
	// deleted, has expired, or was revoked.
	ErrNotFound = errors.New("store: session not found")
	// ErrExists means Create was given a hash that is already stored.
	ErrExists = errors.New("store: session already exists")
	// ErrConflict means Update was given a Version that is no longer the
	// stored one: another request changed the session in between. The caller
	// reloads, reapplies its changes and tries again.
	ErrConflict = errors.New("store: version conflict")
	// ErrExpired and ErrRevoked may be joined to ErrNotFound by Find to say
	// why a stored session is not live (errors.Join(ErrNotFound,
	// ErrExpired)); a backend that cannot tell returns ErrNotFound alone.
	// Callers must treat all three alike: the session is absent.
	ErrExpired = errors.New("store: session expired")
	ErrRevoked = errors.New("store: session revoked")
	// ErrBadFingerprint means RevokeFingerprints was given a string that is
	// not a fingerprint (see ValidFingerprint). It revokes nothing then.
	ErrBadFingerprint = errors.New("store: malformed fingerprint (want 32 lowercase hex digits)")
)

// Hash is the SHA-256 of a session cookie's value. It is the key of a session.
type Hash [32]byte

// HashToken returns the Hash of a session cookie value as sent on the wire.
func HashToken(cookieValue string) Hash {
	// A token of cordon's form (43 characters) is hashed from the stack;
	// converting it to a []byte would allocate.
	var buf [64]byte
	if len(cookieValue) <= len(buf) {
		n := copy(buf[:], cookieValue)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(cookieValue))
}

// Fingerprint returns the session's fingerprint: the lowercase hex of the
// first 16 bytes of h. It identifies a session in logs, reports and
// revocation lists and cannot be turned back into a working cookie.
func (h Hash) Fingerprint() string {
	return hex.EncodeToString(h[:16])
}

// Fingerprint returns the fingerprint of a session cookie value.
func Fingerprint(cookieValue string) string {
	return HashToken(cookieValue).Fingerprint()
}

// ValidFingerprint reports whether fp has the form of a fingerprint: 32
// lowercase hex digits.
func ValidFingerprint(fp string) bool {
	if len(fp) != 32 {
		return false
	}
	for i := 0; i < len(fp); i++ {
		c := fp[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// CheckFingerprints returns an error matching ErrBadFingerprint, naming the
// position of the first string in fps that is not a fingerprint, or nil.
// The error never repeats the string: a mistaken paste could be a live
// cookie value.
func CheckFingerprints(fps []string) error {
	for i, fp := range fps {
		if !ValidFingerprint(fp) {
			return fmt.Errorf("fingerprint #%d (%d characters): %w", i+1, len(fp), ErrBadFingerprint)
		}
	}
	return nil
}

// Session is one stored session.
type Session struct {
	// Hash is the key: SHA-256 of the cookie value. Never the token itself.
	Hash Hash
	// Principal is the user the session is authenticated as; "" for an
	// anonymous session. It never changes after Create: logging in issues a
	// new session.
	Principal string
	// Data holds the session's values, encoded by the session package. The
	// store treats it as opaque bytes.
	Data []byte
	// Version counts committed updates. Create stores version 1; each
	// successful Update increments it.
	Version int64
	// Created is when the session was created.
	Created time.Time
	// LastSeen is when the session was last used, as recorded by Touch.
	LastSeen time.Time
	// IdleDeadline is when the session expires unless used again.
	IdleDeadline time.Time
	// Expires is the absolute end of the session's life.
	Expires time.Time
	// LastIP and UserAgent describe the client that last used the session.
	LastIP    string
	UserAgent string
	// GlobalEpoch and PrincipalEpoch are stamped by Create with the store's
	// current epochs. Callers leave them zero.
	GlobalEpoch    int64
	PrincipalEpoch int64
}

// Fingerprint returns the session's fingerprint.
func (s *Session) Fingerprint() string { return s.Hash.Fingerprint() }

// Deadline returns the earlier of IdleDeadline and Expires.
func (s *Session) Deadline() time.Time {
	if s.IdleDeadline.Before(s.Expires) {
		return s.IdleDeadline
	}
	return s.Expires
}

// Expired reports whether the session is past its idle or absolute deadline
// at now.
func (s *Session) Expired(now time.Time) bool {
	return !now.Before(s.Deadline())
}

// Clone returns a deep copy of s.
func (s *Session) Clone() *Session {
	if n := len(s.Data); n > 0 && n <= cloneInline {
		// Small data shares the copy's allocation (stores clone on every
		// read and write).
		c := &sessionWithData{s: *s}
		c.s.Data = c.data[:n:n]
		copy(c.s.Data, s.Data)
		return &c.s
	}
	c := *s
	c.Data = append([]byte(nil), s.Data...)
	return &c
}

// cloneInline is the largest Data that Clone copies into the session's own
// allocation.
const cloneInline = 96

type sessionWithData struct {
	s    Session
	data [cloneInline]byte
}

// Store persists sessions. Implementations are safe for concurrent use.
//
// A session whose deadline has passed (by the store's clock), or whose epoch
// stamps are older than the current global or principal epoch, is treated as
// absent by every method.
type Store interface {
	// Create stores a new session with Version 1 and stamps it with the
	// current epochs (updating s). It returns ErrExists if the hash is taken.
	Create(ctx context.Context, s *Session) error
	// Find returns the live session with hash h, or ErrNotFound.
	Find(ctx context.Context, h Hash) (*Session, error)
	// Update stores s.Data, s.IdleDeadline, s.LastSeen, s.LastIP and
	// s.UserAgent if the stored Version equals s.Version, and then increments
	// s.Version. It returns ErrConflict if the versions differ and
	// ErrNotFound if the session is not live. Principal, Created, Expires and
	// the epochs are never changed by Update.
	Update(ctx context.Context, s *Session) error
	// Touch records a use of the session without changing its data or
	// version: it sets LastSeen, IdleDeadline (never past Expires), LastIP and
	// UserAgent. It returns ErrNotFound if the session is not live.
	Touch(ctx context.Context, h Hash, seen, idleDeadline time.Time, ip, userAgent string) error
	// Delete removes the session. Deleting an absent session is not an
	// error.
	Delete(ctx context.Context, h Hash) error
}

// Revoker is implemented by stores that can revoke sessions. Every cordon
// backend implements it.
type Revoker interface {
	// RevokeFingerprints deletes the sessions with the given fingerprints
	// and returns how many of them were live. Unknown fingerprints are
	// ignored. If any string is not a fingerprint (ValidFingerprint) it
	// returns an error matching ErrBadFingerprint and revokes nothing.
	RevokeFingerprints(ctx context.Context, fps []string) (int, error)
	// RevokePrincipal makes every existing session of principal absent by
	// bumping the principal's epoch. Sessions created afterwards are live.
	// The principal must not be empty.
	RevokePrincipal(ctx context.Context, principal string) error
	// RevokeAll makes every existing session absent by bumping the global
	// epoch.
	RevokeAll(ctx context.Context) error
}

// CountingRevoker is implemented by stores that can say how many live
// sessions a revocation by epoch reached, counted in the same transaction
// (or script) that revokes, so a tool can print what the store did rather
// than what it guessed before. Every cordon backend implements it.
type CountingRevoker interface {
	// RevokePrincipalCount is RevokePrincipal, returning how many live
	// sessions of principal it revoked.
	RevokePrincipalCount(ctx context.Context, principal string) (int, error)
	// RevokeAllCount is RevokeAll, returning how many live sessions it
	// revoked.
	RevokeAllCount(ctx context.Context) (int, error)
}

// ListOptions selects sessions for Lister.List.
type ListOptions struct {
	// Principal, if not empty, keeps only that principal's sessions.
	Principal string
	// Limit caps the number returned; 0 means no limit.
	Limit int
}

// Lister is implemented by stores that can list live sessions, newest
// LastSeen first; sessions seen at the same time are ordered newest Created
// first, then by Hash (bytewise ascending), so every backend lists them in
// the same order.
type Lister interface {
	List(ctx context.Context, opt ListOptions) ([]*Session, error)
}

// Cleaner is implemented by stores that keep expired or revoked sessions
// until they are swept. DeleteExpired removes every session that is not live
// at now and returns how many it removed.
type Cleaner interface {
	DeleteExpired(ctx context.Context, now time.Time) (int, error)
}

// Full is a store with every ability the session manager and the revocation
// tools use. Every cordon backend implements it.
type Full interface {
	Store
	Revoker
	Lister
	Cleaner
}

// SortSessions sorts l in Lister's order: newest LastSeen first, then
// newest Created, then by Hash ascending.
func SortSessions(l []*Session) {
	slices.SortFunc(l, func(a, b *Session) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return bytes.Compare(a.Hash[:], b.Hash[:])
	})
}
