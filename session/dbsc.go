package session

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/cordon-sec/cordon/dbsc"
	"github.com/cordon-sec/cordon/internal/token"
	"github.com/cordon-sec/cordon/reqlog"
)

// DBSC turns on Device Bound Session Credentials (see package dbsc): after
// every log-in the response offers the browser to bind the session to a
// private key it keeps; a browser that does is then served only while it
// also presents a short-lived bound cookie, which it can renew only by
// signing a fresh challenge with that key. A session cookie copied to
// another browser stops working there when the bound cookie expires (TTL)
// and cannot be refreshed without the key. Browsers without DBSC keep
// working on the session cookie alone.
type DBSC struct {
	// TTL is the bound cookie's lifetime, enforced by the server as well as
	// the browser. Default 10 minutes; at least 30 seconds.
	TTL time.Duration
	// RegisterPath and RefreshPath are the endpoints the middleware
	// answers itself. Defaults "/.cordon/dbsc/register" and
	// "/.cordon/dbsc/refresh".
	RegisterPath, RefreshPath string
	// CookieName is the bound cookie's name. Default "__Host-cordon-bound"
	// ("cordon-bound" in development mode, as with the session cookie).
	CookieName string
	// ChallengeTTL is how long a challenge may be answered. Default 5
	// minutes.
	ChallengeTTL time.Duration
}

// dbscKey holds a session's binding in its values (a key of the package's
// own, like rememberKey): every store carries it without a schema change,
// and it goes with the session through Renew and LogoutOthers. Log-out,
// revocation and expiry remove it with the session.
const dbscKey = "\x00dbsc"

// binding is a session's DBSC state. Times are Unix seconds.
type binding struct {
	chal    string // the challenge the browser may answer now
	chalExp int64
	id      string // the DBSC session identifier; "" until registered
	jwk     string // the registered public key
	bound   string // hex SHA-256 of the current bound cookie value
	boundTo int64  // the bound cookie's end
}

func (b binding) registered() bool { return b.id != "" && b.jwk != "" }

func (b binding) value() map[string]any {
	return map[string]any{
		"c": b.chal, "ce": strconv.FormatInt(b.chalExp, 10),
		"id": b.id, "k": b.jwk,
		"b": b.bound, "be": strconv.FormatInt(b.boundTo, 10),
	}
}

func bindingOf(vals map[string]any) (binding, bool) { return bindingFrom(vals[dbscKey]) }

// storedBinding reads the binding from stored session data, decoding only
// the binding's value.
func storedBinding(data []byte) (binding, bool) {
	raw, ok, err := lookupValue(data, dbscKey)
	if err != nil || !ok {
		return binding{}, false
	}
	v, err := decodeRaw(raw)
	if err != nil {
		return binding{}, false
	}
	return bindingFrom(v)
}

// bindingFrom reads a binding from the value stored under dbscKey.
func bindingFrom(v any) (binding, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return binding{}, false
	}
	s := func(k string) string { v, _ := m[k].(string); return v }
	n := func(k string) int64 { v, _ := strconv.ParseInt(s(k), 10, 64); return v }
	return binding{chal: s("c"), chalExp: n("ce"), id: s("id"), jwk: s("k"), bound: s("b"), boundTo: n("be")}, true
}

// dbscConfig is DBSC with its defaults applied.
type dbscConfig struct {
	DBSC
	devCookie string
}

func newDBSC(o *DBSC) *dbscConfig {
	if o == nil {
		return nil
	}
	c := &dbscConfig{DBSC: *o}
	if c.TTL <= 0 {
		c.TTL = dbsc.DefaultBoundTTL
	}
	c.TTL = max(c.TTL, dbsc.MinBoundTTL)
	if c.ChallengeTTL <= 0 {
		c.ChallengeTTL = dbsc.DefaultChallengeTTL
	}
	if c.RegisterPath == "" {
		c.RegisterPath = dbsc.DefaultRegisterPath
	}
	if c.RefreshPath == "" {
		c.RefreshPath = dbsc.DefaultRefreshPath
	}
	if c.CookieName == "" {
		c.CookieName = dbsc.DefaultBoundCookie
	}
	c.devCookie = strings.TrimPrefix(c.CookieName, "__Host-")
	return c
}

// cookieName is the bound cookie's name for this request's cookie spec.
func (c *dbscConfig) cookieName(spec cookieSpec) string {
	if !spec.secure {
		return c.devCookie
	}
	return c.CookieName
}

// newChallenge returns 32 random bytes in base64url.
func (m *Manager) newChallenge() (string, error) {
	return token.New(m.opt.Rand)
}

// offerDBSC replaces any binding in vals (a log-in starts a new device
// binding) with a registration challenge, and returns it. Called with mu
// held, from Login, before the new session is created.
func (st *reqState) offerDBSC(vals map[string]any) (map[string]any, string) {
	c := st.m.dbsc
	if c == nil {
		return vals, ""
	}
	delete(vals, dbscKey)
	ch, err := st.m.newChallenge()
	if err != nil {
		st.m.log.Error("session: dbsc: no challenge", "err", err)
		return vals, ""
	}
	vals[dbscKey] = binding{chal: ch, chalExp: st.m.opt.Now().Add(c.ChallengeTTL).Unix()}.value()
	return vals, ch
}

// announceDBSC writes the Secure-Session-Registration header for a log-in
// that offered a challenge. Called with mu held.
func (st *reqState) announceDBSC(ch string) {
	if ch == "" || st.hdr == nil {
		return
	}
	v, err := dbsc.RegistrationHeader([]string{dbsc.ES256, dbsc.RS256}, st.m.dbsc.RegisterPath, ch, "")
	if err != nil {
		st.m.log.Error("session: dbsc: registration header", "err", err)
		return
	}
	st.hdr.Set(dbsc.HeaderRegistration, v)
}

// unbound reports whether the session s that r presents is device-bound
// and r lacks its valid bound cookie. The refresh endpoint is exempt: that
// is where a browser whose bound cookie expired gets a new one, and it
// serves only a request that proves possession of the key.
func (st *reqState) unbound(r *http.Request, data []byte) bool {
	c := st.m.dbsc
	if c == nil || len(data) == 0 || r.URL.Path == c.RefreshPath {
		return false
	}
	b, ok := storedBinding(data)
	if !ok || !b.registered() {
		return false
	}
	v, ok := requestCookie(r, c.cookieName(st.spec))
	if !ok || st.m.opt.Now().Unix() >= b.boundTo {
		return true
	}
	sum := sha256.Sum256([]byte(v))
	return subtle.ConstantTimeCompare([]byte(hex.EncodeToString(sum[:])), []byte(b.bound)) != 1
}

// dbscRoute returns the handler for r: the DBSC endpoints, or next.
func (m *Manager) dbscRoute(next http.Handler, r *http.Request) http.Handler {
	c := m.dbsc
	if c == nil {
		return next
	}
	switch r.URL.Path {
	case c.RegisterPath:
		return serveDBSC((*reqState).register)
	case c.RefreshPath:
		return serveDBSC((*reqState).refresh)
	}
	return next
}

// dbscReply is a DBSC endpoint's answer, decided with the request's state
// locked and written after it is unlocked (the guard locks it again to
// commit at egress).
type dbscReply struct {
	status int
	header http.Header
	body   any
}

func (rp *dbscReply) write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range rp.header {
		h[k] = v
	}
	h.Set("Cache-Control", "no-store")
	if rp.body == nil {
		if rp.status >= 400 {
			http.Error(w, http.StatusText(rp.status), rp.status)
			return
		}
		w.WriteHeader(rp.status)
		return
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(rp.status)
	_ = json.NewEncoder(w).Encode(rp.body)
}

// fail is the answer to a DBSC request that cannot go on, with a
// request-log event. 4xx statuses end the browser's device-bound session
// (only that browser's: the server keeps the binding); 5xx are temporary.
// Called with mu held.
func (st *reqState) fail(status int, event, detail string) *dbscReply {
	if event != "" {
		st.rec.Event(event, detail)
		fp := ""
		if st.loaded != nil {
			fp = st.loaded.Fingerprint()
		}
		st.m.event(st.rctx, Event{Name: event, Detail: detail, Fingerprint: fp})
	}
	rp := &dbscReply{status: status}
	if status == http.StatusServiceUnavailable {
		rp.header = http.Header{"Retry-After": {"5"}}
	}
	return rp
}

// serveDBSC runs a DBSC endpoint: f decides the answer with the request's
// state locked; it must be a POST.
func serveDBSC(f func(*reqState, *http.Request) *dbscReply) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		st, err := From(r).lock()
		if err != nil {
			http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
			return
		}
		var rp *dbscReply
		if st.storeDown {
			rp = st.fail(http.StatusServiceUnavailable, "", "")
		} else {
			rp = f(st, r)
		}
		st.mu.Unlock()
		rp.write(w)
	}
}

// register answers the browser's registration: a proof carrying its new
// public key, signed over the challenge this session was offered at
// log-in. Called with mu held.
func (st *reqState) register(r *http.Request) *dbscReply {
	b, ok := st.binding()
	if st.loaded == nil || st.loaded.Principal == "" || !ok || b.chal == "" || b.registered() {
		return st.fail(http.StatusUnauthorized, reqlog.EventDBSCProofFailed, "no_registration_offered")
	}
	raw, err := dbsc.HeaderString(r.Header.Get(dbsc.HeaderResponse))
	if err != nil {
		return st.fail(http.StatusBadRequest, reqlog.EventDBSCProofFailed, "malformed_header")
	}
	p, err := dbsc.VerifyRegistration(raw)
	if err != nil {
		st.m.log.Info("session: dbsc registration refused", "fingerprint", st.loaded.Fingerprint(), "err", err)
		return st.fail(http.StatusBadRequest, reqlog.EventDBSCProofFailed, "bad_proof")
	}
	if !st.takeChallenge(&b, p.Challenge) {
		return st.fail(http.StatusBadRequest, reqlog.EventDBSCProofFailed, "bad_challenge")
	}
	id, err := st.m.newChallenge()
	if err != nil {
		return st.fail(http.StatusServiceUnavailable, "", "")
	}
	b.id, b.jwk = id, string(p.Key.JWK())
	return st.issueBound(r, b, reqlog.EventDBSCRegister, p.Key.Thumbprint())
}

// refresh answers a refresh: without a proof, 403 with a fresh challenge;
// with a proof signed by the registered key over the session's current
// challenge, a new bound cookie. Called with mu held.
func (st *reqState) refresh(r *http.Request) *dbscReply {
	id, err := dbsc.HeaderString(r.Header.Get(dbsc.HeaderSessionID))
	if err != nil {
		return st.fail(http.StatusBadRequest, reqlog.EventDBSCProofFailed, "malformed_session_id")
	}
	b, ok := st.binding()
	if st.loaded == nil || !ok || !b.registered() || subtle.ConstantTimeCompare([]byte(id), []byte(b.id)) != 1 {
		// Logged out, revoked, expired, or never bound: the device-bound
		// session is over, and no cookie comes back.
		return st.fail(http.StatusUnauthorized, reqlog.EventDBSCProofFailed, "no_bound_session")
	}
	key, err := dbsc.ParseJWK([]byte(b.jwk))
	if err != nil {
		return st.fail(http.StatusUnauthorized, reqlog.EventDBSCProofFailed, "stored_key")
	}
	hdr := r.Header.Get(dbsc.HeaderResponse)
	if hdr == "" {
		return st.challenge(b)
	}
	raw, err := dbsc.HeaderString(hdr)
	if err != nil {
		return st.fail(http.StatusBadRequest, reqlog.EventDBSCProofFailed, "malformed_header")
	}
	p, err := dbsc.VerifyRefresh(raw, key)
	if err != nil {
		st.m.log.Info("session: dbsc refresh refused", "fingerprint", st.loaded.Fingerprint(), "err", err)
		return st.fail(http.StatusBadRequest, reqlog.EventDBSCProofFailed, "bad_proof")
	}
	if !st.takeChallenge(&b, p.Challenge) {
		// Validly signed but stale (a browser may resend a cached proof):
		// a fresh challenge, not the end of the session.
		st.rec.Event(reqlog.EventDBSCProofFailed, "stale_challenge")
		st.m.event(st.rctx, Event{Name: reqlog.EventDBSCProofFailed, Detail: "stale_challenge", Fingerprint: st.loaded.Fingerprint()})
		return st.challenge(b)
	}
	return st.issueBound(r, b, reqlog.EventDBSCRefresh, key.Thumbprint())
}

// binding returns the loaded session's binding. Called with mu held.
func (st *reqState) binding() (binding, bool) {
	if st.loaded == nil || st.ensureValues() != nil {
		return binding{}, false
	}
	return bindingOf(st.values)
}

// takeChallenge consumes b's challenge if ch is it and it is still alive.
// Called with mu held.
func (st *reqState) takeChallenge(b *binding, ch string) bool {
	ok := b.chal != "" && subtle.ConstantTimeCompare([]byte(ch), []byte(b.chal)) == 1 &&
		st.m.opt.Now().Unix() < b.chalExp
	b.chal, b.chalExp = "", 0
	return ok
}

// challenge stores a fresh challenge in the binding and answers 403 with
// it. Called with mu held.
func (st *reqState) challenge(b binding) *dbscReply {
	ch, err := st.m.newChallenge()
	if err != nil {
		return st.fail(http.StatusServiceUnavailable, "", "")
	}
	b.chal, b.chalExp = ch, st.m.opt.Now().Add(st.m.dbsc.ChallengeTTL).Unix()
	if err := st.saveBinding(b); err != nil {
		st.m.log.Error("session: dbsc: storing a challenge failed", "err", err)
		return st.fail(http.StatusServiceUnavailable, "", "")
	}
	v, _ := dbsc.ChallengeHeader(ch, b.id)
	return &dbscReply{status: http.StatusForbidden, header: http.Header{dbsc.HeaderChallenge: {v}}}
}

// saveBinding writes b into the session now, so that the answer goes out
// only once the store has it. Called with mu held.
func (st *reqState) saveBinding(b binding) error {
	if err := st.change(dbscKey, change{v: b.value()}); err != nil {
		return err
	}
	return st.commit()
}

// issueBound gives the session a new bound cookie value, stores it, and
// answers with the session instructions and the cookie. Called with mu
// held.
func (st *reqState) issueBound(r *http.Request, b binding, event, thumb string) *dbscReply {
	c := st.m.dbsc
	val, err := token.New(st.m.opt.Rand)
	if err != nil {
		return st.fail(http.StatusServiceUnavailable, "", "")
	}
	sum := sha256.Sum256([]byte(val))
	b.bound, b.boundTo = hex.EncodeToString(sum[:]), st.m.opt.Now().Add(c.TTL).Unix()
	if err := st.saveBinding(b); err != nil {
		st.m.log.Error("session: dbsc: storing the bound cookie failed", "err", err)
		return st.fail(http.StatusServiceUnavailable, "", "")
	}
	name := c.cookieName(st.spec)
	attrs := "Path=/; HttpOnly; SameSite=Lax"
	if st.spec.secure {
		attrs = "Path=/; Secure; HttpOnly; SameSite=Lax"
	}
	ck := &http.Cookie{Name: name, Value: val, Path: "/", MaxAge: int(c.TTL / time.Second),
		HttpOnly: true, Secure: st.spec.secure, SameSite: http.SameSiteLaxMode}
	st.rec.Event(event, "")
	st.m.event(st.rctx, Event{Name: event, Detail: thumb, Fingerprint: st.loaded.Fingerprint(), Principal: st.loaded.Principal})
	return &dbscReply{
		status: http.StatusOK,
		header: http.Header{"Set-Cookie": {ck.String()}},
		body: dbsc.Instructions{
			SessionID:  b.id,
			RefreshURL: c.RefreshPath,
			Scope:      dbsc.Scope{Origin: origin(r, st.spec.secure), IncludeSite: false},
			Creds:      []dbsc.Credential{{Type: "cookie", Name: name, Attributes: attrs}},
		},
	}
}

// origin is the request's origin as the browser sees it.
func origin(r *http.Request, secure bool) string {
	scheme := "http"
	if secure || r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// clearBound deletes the bound cookie from the browser at log-out (the
// server has already forgotten it with the session). Called with mu held.
func (st *reqState) clearBound() {
	if st.m.dbsc == nil || st.hdr == nil {
		return
	}
	ck := &http.Cookie{Name: st.m.dbsc.cookieName(st.spec), Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: st.spec.secure, SameSite: http.SameSiteLaxMode}
	st.hdr.Add("Set-Cookie", ck.String())
}

// deviceBound reports whether stored session data carries a registered
// binding.
func deviceBound(data []byte) bool {
	b, ok := storedBinding(data)
	return ok && b.registered()
}
