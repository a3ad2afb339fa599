package dbsc

import (
	"crypto/rand"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/cordon-sec/cordon/internal/token"
)

// Challenge errors. Each means "answer 403 with a fresh challenge": the
// browser may resend a cached, validly signed proof, and that must not end
// its session.
var (
	ErrChallengeUnknown = errors.New("dbsc: challenge unknown or already used")
	ErrChallengeExpired = errors.New("dbsc: challenge expired")
	ErrChallengeSession = errors.New("dbsc: challenge issued to another session")
)

// Defaults cordon's session middleware and proxy share: the endpoints
// they answer, the bound cookie's name and life, and how long a challenge
// may be answered.
const (
	DefaultRegisterPath = "/.cordon/dbsc/register"
	DefaultRefreshPath  = "/.cordon/dbsc/refresh"
	DefaultBoundCookie  = "__Host-cordon-bound"
	DefaultBoundTTL     = 10 * time.Minute
	MinBoundTTL         = 30 * time.Second
	DefaultChallengeTTL = 5 * time.Minute
)

// ChallengeOptions configure [Challenges].
type ChallengeOptions struct {
	// TTL is how long a challenge may be answered. Default 5 minutes.
	TTL time.Duration
	// Max bounds how many unanswered challenges are kept; when full, the
	// oldest is forgotten (its proof then gets a fresh challenge).
	// Default 100,000 (about 15 MB at most).
	Max int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Rand is the source of challenge bytes. Default crypto/rand.Reader.
	Rand io.Reader
}

// Challenges issues challenges and accepts each one once, within its TTL,
// for the session it was issued to. It is safe for concurrent use. Its
// memory is bounded by [ChallengeOptions.Max] however many challenges
// are asked for and never answered.
type Challenges struct {
	opt ChallengeOptions

	mu    sync.Mutex
	m     map[string]issued
	order []string // issue order, oldest first, for eviction; may hold used ones
	head  int
}

type issued struct {
	session string // "" for a registration challenge
	exp     time.Time
}

// NewChallenges returns an empty set of challenges.
func NewChallenges(opt ChallengeOptions) *Challenges {
	if opt.TTL <= 0 {
		opt.TTL = DefaultChallengeTTL
	}
	if opt.Max <= 0 {
		opt.Max = 100_000
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	return &Challenges{opt: opt, m: make(map[string]issued)}
}

// Issue returns a new challenge for the session named sessionID, or for a
// registration when sessionID is "". A challenge is 32 random bytes in
// base64url.
func (c *Challenges) Issue(sessionID string) (string, error) {
	ch, err := token.New(c.opt.Rand)
	if err != nil {
		return "", err
	}
	now := c.opt.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.m) >= c.opt.Max {
		c.evictOldest()
	}
	c.m[ch] = issued{session: sessionID, exp: now.Add(c.opt.TTL)}
	c.order = append(c.order, ch)
	c.compact()
	return ch, nil
}

// Consume accepts challenge for sessionID once: it is then forgotten,
// whatever the outcome, so no proof is accepted twice.
func (c *Challenges) Consume(challenge, sessionID string) error {
	now := c.opt.Now()
	c.mu.Lock()
	is, ok := c.m[challenge]
	delete(c.m, challenge)
	c.mu.Unlock()
	switch {
	case !ok:
		return ErrChallengeUnknown
	case !now.Before(is.exp):
		return ErrChallengeExpired
	case is.session != sessionID:
		return ErrChallengeSession
	}
	return nil
}

// Len is the number of challenges issued and not yet answered, expired or
// forgotten.
func (c *Challenges) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// evictOldest forgets the oldest challenge still held.
func (c *Challenges) evictOldest() {
	for c.head < len(c.order) {
		ch := c.order[c.head]
		c.order[c.head] = ""
		c.head++
		if _, ok := c.m[ch]; ok {
			delete(c.m, ch)
			return
		}
	}
}

// compact drops expired challenges from the front and reclaims the slice
// once half of it is spent; answered challenges behind a live one are
// dropped when they pass twice Max, so order stays within about 2*Max.
func (c *Challenges) compact() {
	now := c.opt.Now()
	for c.head < len(c.order) {
		ch := c.order[c.head]
		is, ok := c.m[ch]
		if ok && now.Before(is.exp) {
			break
		}
		delete(c.m, ch)
		c.order[c.head] = ""
		c.head++
	}
	switch {
	case len(c.order)-c.head > 2*c.opt.Max:
		// Mostly answered challenges behind a live one: keep the live ones.
		live := make([]string, 0, len(c.m))
		for _, ch := range c.order[c.head:] {
			if _, ok := c.m[ch]; ok {
				live = append(live, ch)
			}
		}
		c.order, c.head = live, 0
	case c.head > 0 && c.head >= len(c.order)/2:
		c.order = append(c.order[:0:0], c.order[c.head:]...)
		c.head = 0
	}
}
