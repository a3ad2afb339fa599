package lab

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/cordon-sec/cordon/dbsc"
	"github.com/cordon-sec/cordon/internal/token"
	"github.com/cordon-sec/cordon/store"
)

// BoundCookieName is the name of the short-lived bound cookie of a
// device-bound session (the dbsc mitigation).
const BoundCookieName = "cordon_bound"

// DBSCTTL is the bound cookie's lifetime in the lab, enforced by the
// server on the lab's clock.
const DBSCTTL = 5 * time.Minute

// The lab app's DBSC endpoints.
const (
	dbscRegisterPath = "/dbsc/register"
	dbscRefreshPath  = "/dbsc/refresh"
)

// labBinding is one session's device binding: the key its browser
// registered, and the one bound cookie value the server accepts now.
type labBinding struct {
	id      string    // the DBSC session identifier
	owner   string    // the session's principal, for the trace
	key     *dbsc.Key // the registered public key
	bound   string    // hex SHA-256 of the current bound cookie value
	boundTo time.Time // the bound cookie's end, on the lab's clock
}

// dbscLayer is the lab app's own DBSC code (the dbsc mitigation): it
// offers registration at log-in, answers registration and refresh with the
// package dbsc's wire formats and proof checks, and tells the controller
// whether a request carries a device-bound session's live bound cookie. It
// keeps its bindings server-side, by session fingerprint.
type dbscLayer struct {
	rt    *rt
	st    store.Store
	ttl   time.Duration
	chals *dbsc.Challenges

	mu       sync.Mutex
	bindings map[string]*labBinding // session fingerprint → binding
	owners   map[string]string      // bound cookie fingerprint → principal, for the trace
}

func newDBSCLayer(r *rt, st store.Store) *dbscLayer {
	return &dbscLayer{
		rt: r, st: st, ttl: DBSCTTL,
		chals:    dbsc.NewChallenges(dbsc.ChallengeOptions{Now: r.now, Rand: r.rand}),
		bindings: map[string]*labBinding{},
		owners:   map[string]string{},
	}
}

// endpoint reports whether path is one of the DBSC endpoints.
func (d *dbscLayer) endpoint(path string) bool {
	return path == dbscRegisterPath || path == dbscRefreshPath
}

// offer returns a Secure-Session-Registration value offering the session
// with fingerprint fp a device binding (the log-in response carries it).
func (d *dbscLayer) offer(fp string) (string, error) {
	ch, err := d.chals.Issue("register:" + fp)
	if err != nil {
		return "", fmt.Errorf("lab: dbsc: %w", err)
	}
	v, err := dbsc.RegistrationHeader([]string{dbsc.ES256, dbsc.RS256}, dbscRegisterPath, ch, "")
	if err != nil {
		return "", fmt.Errorf("lab: dbsc: %w", err)
	}
	return v, nil
}

// boundFP names a bound cookie value in the trace: its SHA-256's first 8
// digits, never the value.
func boundFP(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:4])
}

// check reports whether a request presenting the session with fingerprint
// fp may be served: yes when the session is not device-bound, and when it
// is, only with its current bound cookie before its end on the lab's
// clock. why says which, in plain words, for the trace.
func (d *dbscLayer) check(fp, bound string) (ok, isBound bool, why string) {
	d.mu.Lock()
	b := d.bindings[fp]
	var cp labBinding
	if b != nil {
		cp = *b
	}
	d.mu.Unlock()
	if b == nil {
		return true, false, "not device-bound"
	}
	now := d.rt.now()
	switch {
	case bound == "":
		return false, true, "device-bound, and the request carries no bound cookie"
	case subtle.ConstantTimeCompare([]byte(hashHex(bound)), []byte(cp.bound)) != 1:
		return false, true, "device-bound, and the request's bound cookie " + boundFP(bound) + " is not its current one"
	case !now.Before(cp.boundTo):
		return false, true, fmt.Sprintf("device-bound, and its bound cookie %s has ended (set %s ago; its TTL is %s)", boundFP(bound), now.Sub(cp.boundTo.Add(-d.ttl)).Round(time.Second), d.ttl)
	}
	return true, true, fmt.Sprintf("device-bound, bound cookie %s live for %s more", boundFP(bound), cp.boundTo.Sub(now).Round(time.Second))
}

func hashHex(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

// ServeHTTP answers the two endpoints. Both are POSTs and both find the
// session by the request's session cookie.
func (d *dbscLayer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	tok := sessionToken(r.Header.Get("Cookie"))
	var sess *store.Session
	if tok != "" {
		s, err := d.st.Find(r.Context(), store.HashToken(tok))
		switch {
		case err == nil:
			sess = s
		case !errors.Is(err, store.ErrNotFound):
			w.Header().Set("Retry-After", "5")
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
	}
	if r.URL.Path == dbscRegisterPath {
		d.register(w, r, tok, sess)
		return
	}
	d.refresh(w, r, tok, sess)
}

func (d *dbscLayer) refuse(w http.ResponseWriter, status int, what string) {
	d.rt.ev("dbsc", "block", fmt.Sprintf("%s → %d, no bound cookie", what, status))
	http.Error(w, http.StatusText(status), status)
}

// register checks a registration proof over the challenge the session was
// offered, keeps its public key and sets the first bound cookie.
func (d *dbscLayer) register(w http.ResponseWriter, r *http.Request, tok string, sess *store.Session) {
	if sess == nil || sess.Principal == "" {
		d.refuse(w, http.StatusUnauthorized, "registration without a signed-in session")
		return
	}
	fp := store.Fingerprint(tok)
	raw, err := dbsc.HeaderString(r.Header.Get(dbsc.HeaderResponse))
	if err != nil {
		d.refuse(w, http.StatusBadRequest, "registration: malformed "+dbsc.HeaderResponse)
		return
	}
	p, err := dbsc.VerifyRegistration(raw)
	if err != nil {
		d.refuse(w, http.StatusBadRequest, "registration: "+err.Error())
		return
	}
	if err := d.chals.Consume(p.Challenge, "register:"+fp); err != nil {
		d.refuse(w, http.StatusBadRequest, "registration: "+err.Error())
		return
	}
	id, err := newToken(d.rt.rand) // the DBSC session identifier: 256 random bits
	if err != nil {
		http.Error(w, "no randomness", http.StatusServiceUnavailable)
		return
	}
	b := &labBinding{id: id, owner: sess.Principal, key: p.Key}
	d.mu.Lock()
	d.bindings[fp] = b
	d.mu.Unlock()
	d.rt.ev("dbsc", "write", fmt.Sprintf("register %s: proof verified, public key %s… kept with the session", d.rt.describeFP(fp), p.Key.Thumbprint()[:8]))
	d.issue(w, r, fp, b, "registration")
}

// refresh answers 403 with a challenge, then, given a proof signed by the
// registered key over it, a new bound cookie.
func (d *dbscLayer) refresh(w http.ResponseWriter, r *http.Request, tok string, sess *store.Session) {
	id, err := dbsc.HeaderString(r.Header.Get(dbsc.HeaderSessionID))
	if err != nil {
		d.refuse(w, http.StatusBadRequest, "refresh: malformed "+dbsc.HeaderSessionID)
		return
	}
	fp := ""
	if sess != nil {
		fp = store.Fingerprint(tok)
	}
	d.mu.Lock()
	b := d.bindings[fp]
	var cp labBinding
	if b != nil {
		cp = *b
	}
	d.mu.Unlock()
	if b == nil || subtle.ConstantTimeCompare([]byte(id), []byte(cp.id)) != 1 {
		d.refuse(w, http.StatusUnauthorized, "refresh of "+d.rt.describe(tok)+": no device-bound session with that id")
		return
	}
	hdr := r.Header.Get(dbsc.HeaderResponse)
	if hdr == "" {
		d.challenge(w, fp, cp)
		return
	}
	raw, err := dbsc.HeaderString(hdr)
	if err != nil {
		d.refuse(w, http.StatusBadRequest, "refresh: malformed "+dbsc.HeaderResponse)
		return
	}
	p, err := dbsc.VerifyRefresh(raw, cp.key)
	if err != nil {
		d.refuse(w, http.StatusBadRequest, fmt.Sprintf("refresh of %s: the proof is not signed by the key its owner registered (%v)", d.rt.describeFP(fp), err))
		return
	}
	if err := d.chals.Consume(p.Challenge, cp.id); err != nil {
		// Validly signed but stale: a fresh challenge, not the end.
		d.rt.ev("dbsc", "read", "refresh: "+err.Error()+": a fresh challenge")
		d.challenge(w, fp, cp)
		return
	}
	d.rt.ev("dbsc", "read", fmt.Sprintf("refresh of %s: proof verified against the registered key %s…", d.rt.describeFP(fp), cp.key.Thumbprint()[:8]))
	d.issue(w, r, fp, b, "refresh")
}

func (d *dbscLayer) challenge(w http.ResponseWriter, fp string, b labBinding) {
	ch, err := d.chals.Issue(b.id)
	if err != nil {
		http.Error(w, "no randomness", http.StatusServiceUnavailable)
		return
	}
	v, err := dbsc.ChallengeHeader(ch, b.id)
	if err != nil {
		http.Error(w, "challenge", http.StatusServiceUnavailable)
		return
	}
	d.rt.ev("dbsc", "write", "refresh of "+d.rt.describeFP(fp)+" without a proof → 403 with a challenge")
	w.Header().Set(dbsc.HeaderChallenge, v)
	w.WriteHeader(http.StatusForbidden)
}

// issue gives b a new bound cookie value (the old one stops working), and
// answers the session configuration with the cookie.
func (d *dbscLayer) issue(w http.ResponseWriter, r *http.Request, fp string, b *labBinding, what string) {
	val, err := token.New(d.rt.rand)
	if err != nil {
		http.Error(w, "no randomness", http.StatusServiceUnavailable)
		return
	}
	end := d.rt.now().Add(d.ttl)
	d.mu.Lock()
	b.bound, b.boundTo = hashHex(val), end
	d.owners[boundFP(val)] = b.owner
	d.mu.Unlock()
	d.rt.ev("dbsc", "write", fmt.Sprintf("%s of %s: new bound cookie %s, valid for %s", what, d.rt.describeFP(fp), boundFP(val), d.ttl))
	http.SetCookie(w, boundCookie(val, d.ttl))
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(dbsc.Instructions{
		SessionID:  b.id,
		RefreshURL: dbscRefreshPath,
		Scope:      dbsc.Scope{Origin: "http://" + r.Host},
		Creds:      []dbsc.Credential{{Type: "cookie", Name: BoundCookieName, Attributes: "Path=/; HttpOnly; SameSite=Lax"}},
	})
}

func boundCookie(val string, ttl time.Duration) *http.Cookie {
	return &http.Cookie{Name: BoundCookieName, Value: val, Path: "/", MaxAge: int(ttl / time.Second), HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// boundToken returns the bound cookie's value in a Cookie header.
func boundToken(header string) string {
	cs, err := http.ParseCookie(header)
	if err != nil || header == "" {
		return ""
	}
	for _, c := range cs {
		if c.Name == BoundCookieName {
			return c.Value
		}
	}
	return ""
}

// describeBound names a bound cookie in the trace.
func (d *dbscLayer) describeBound(v, owner string) string {
	if v == "" {
		return "no bound cookie"
	}
	if owner == "" {
		d.mu.Lock()
		owner = d.owners[boundFP(v)]
		d.mu.Unlock()
	}
	if owner == "" {
		return "bound cookie " + boundFP(v)
	}
	return "bound cookie " + boundFP(v) + " (" + owner + ")"
}

// bindingID returns the DBSC session id of the session with fingerprint fp
// ("" if not bound): what a thief might learn, everything but the key.
func (d *dbscLayer) bindingID(fp string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if b := d.bindings[fp]; b != nil {
		return b.id
	}
	return ""
}
