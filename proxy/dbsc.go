package proxy

import (
	"container/list"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/cordon-sec/cordon/dbsc"
	"github.com/cordon-sec/cordon/internal/token"
	"github.com/cordon-sec/cordon/reqlog"
)

// DBSC turns on Device Bound Session Credentials at the edge (see package
// dbsc): the proxy offers registration on every response that issues an
// app session cookie, answers the registration and refresh endpoints
// itself, and forwards a device-bound session's cookie to the app only
// while the request also carries that session's current, unexpired bound
// cookie. The app needs no change.
//
// The binding state lives in the proxy's memory, per node, bounded by
// MaxSessions (least recently used first out). A forgotten binding (a
// restart, an eviction) makes the session a plain bearer session again;
// see docs/proxy.md.
type DBSC struct {
	// TTL is the bound cookie's life, enforced by the proxy. Default 10
	// minutes; at least 30 seconds.
	TTL time.Duration
	// RegisterPath and RefreshPath are the endpoints the proxy answers
	// itself, never forwarding them. Defaults "/.cordon/dbsc/register" and
	// "/.cordon/dbsc/refresh".
	RegisterPath, RefreshPath string
	// ChallengeTTL is how long a challenge may be answered. Default 5
	// minutes.
	ChallengeTTL time.Duration
	// MaxSessions bounds the device-bound sessions kept in memory
	// (default 1<<18). MaxChallenges bounds the unanswered challenges
	// (default 100,000).
	MaxSessions, MaxChallenges int
}

// BoundCookie is the bound cookie's name; DevBoundCookie its name in
// development mode (Options.Dev), without Secure and so without the
// __Host- prefix.
const (
	BoundCookie    = dbsc.DefaultBoundCookie
	DevBoundCookie = "cordon-bound"
)

// Defaults of DBSC.
const (
	DefaultDBSCTTL     = dbsc.DefaultBoundTTL
	MinDBSCTTL         = dbsc.MinBoundTTL
	DefaultMaxSessions = 1 << 18
)

// dbscState is the proxy's DBSC memory: the device-bound sessions by app
// session fingerprint, and the outstanding challenges.
type dbscState struct {
	cfg     DBSC
	name    string // the bound cookie's name
	chals   *dbsc.Challenges
	started time.Time // when this proxy started: bindings before it are forgotten

	mu  sync.Mutex
	m   map[string]*list.Element // fingerprint -> *boundSession
	lru *list.List               // most recently used first
}

// boundSession is one registered session.
type boundSession struct {
	fp      string
	id      string   // the DBSC session identifier
	jwk     []byte   // the registered public key
	bound   [32]byte // SHA-256 of the current bound cookie value
	boundTo int64    // the bound cookie's end, Unix nanoseconds
}

func newDBSCState(c DBSC, opt *Options) *dbscState {
	if c.TTL <= 0 {
		c.TTL = DefaultDBSCTTL
	}
	c.TTL = max(c.TTL, MinDBSCTTL)
	if c.ChallengeTTL <= 0 {
		c.ChallengeTTL = dbsc.DefaultChallengeTTL
	}
	if c.RegisterPath == "" {
		c.RegisterPath = dbsc.DefaultRegisterPath
	}
	if c.RefreshPath == "" {
		c.RefreshPath = dbsc.DefaultRefreshPath
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = DefaultMaxSessions
	}
	s := &dbscState{cfg: c, name: BoundCookie, m: map[string]*list.Element{}, lru: list.New(), started: opt.Now(),
		chals: dbsc.NewChallenges(dbsc.ChallengeOptions{TTL: c.ChallengeTTL, Max: c.MaxChallenges, Now: opt.Now, Rand: opt.Rand})}
	if opt.Dev {
		s.name = DevBoundCookie
	}
	return s
}

// get returns a copy of fp's bound session and marks it used.
func (s *dbscState) get(fp string) (boundSession, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[fp]
	if !ok {
		return boundSession{}, false
	}
	s.lru.MoveToFront(e)
	return *e.Value.(*boundSession), true
}

// put stores bs, replacing fp's previous one, and evicts the least recently
// used beyond MaxSessions.
func (s *dbscState) put(bs boundSession) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.m[bs.fp]; ok {
		*e.Value.(*boundSession) = bs
		s.lru.MoveToFront(e)
	} else {
		s.m[bs.fp] = s.lru.PushFront(&bs)
	}
	for s.lru.Len() > s.cfg.MaxSessions {
		old := s.lru.Remove(s.lru.Back()).(*boundSession)
		delete(s.m, old.fp)
	}
}

// end ends fp's device-bound session (the app logged it out) but keeps
// its entry, key and bound cookie forgotten, so that the session cookie
// stays stripped: an app that deletes a cookie of the name without ending
// the session (another path, a clean-up) must not turn it back into a
// bearer session. It reports whether fp was device-bound.
func (s *dbscState) end(fp string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[fp]
	if ok {
		*e.Value.(*boundSession) = boundSession{fp: fp}
	}
	return ok
}

// setBound replaces fp's bound cookie hash and end, if fp is still bound
// under the session id id; it reports whether it did.
func (s *dbscState) setBound(fp, id string, sum [32]byte, to int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[fp]
	if !ok || e.Value.(*boundSession).id != id {
		return false
	}
	bs := e.Value.(*boundSession)
	bs.bound, bs.boundTo = sum, to
	s.lru.MoveToFront(e)
	return true
}

// Len returns how many device-bound sessions the proxy holds.
func (s *dbscState) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Len()
}

// DBSCSessions returns how many device-bound sessions the proxy holds in
// memory (0 without DBSC).
func (p *Proxy) DBSCSessions() int {
	if p.dbsc == nil {
		return 0
	}
	return p.dbsc.Len()
}

// rebind moves the device-bound session old to the new value's
// fingerprint fp, and ends old (its value stays stripped). It reports
// whether old was device-bound.
func (s *dbscState) rebind(old, fp string) bool {
	s.mu.Lock()
	e, ok := s.m[old]
	if !ok || e.Value.(*boundSession).id == "" {
		s.mu.Unlock()
		return false
	}
	bs := *e.Value.(*boundSession)
	*e.Value.(*boundSession) = boundSession{fp: old}
	s.mu.Unlock()
	bs.fp = fp
	s.put(bs)
	return true
}

// dbscIssued is egress's hook for a kept Set-Cookie of a new app session
// value fp. When the request carried a device-bound session with its
// current bound cookie, the app is renewing that session (or signing the
// same browser in again): the binding moves to the new value, for the
// browser holds the key. Otherwise the response offers registration.
func (p *Proxy) dbscIssued(h http.Header, info *reqInfo, fp string) {
	if info.dbscOK && p.dbsc.rebind(info.inFP, fp) {
		info.dbscOK = false
		return
	}
	p.offerDBSC(h, fp)
}

// offerDBSC adds a registration offer for the app session fp that this
// response issues.
func (p *Proxy) offerDBSC(h http.Header, fp string) {
	s := p.dbsc
	if s == nil {
		return
	}
	if _, ok := s.get(fp); ok {
		return // already device-bound
	}
	ch, err := s.chals.Issue(fp)
	if err != nil {
		p.log.Error("proxy: dbsc: no challenge", "err", err)
		return
	}
	v, err := dbsc.RegistrationHeader([]string{dbsc.ES256, dbsc.RS256}, s.cfg.RegisterPath, ch, "")
	if err != nil {
		p.log.Error("proxy: dbsc: registration header", "err", err)
		return
	}
	h.Set(dbsc.HeaderRegistration, v)
}

// loggedOut ends the device-bound session fp that the app deletes in this
// response, and deletes the bound cookie in the browser: it returns the
// Set-Cookie line to add, or "".
func (p *Proxy) loggedOut(fp string) string {
	if p.dbsc == nil || fp == "" || !p.dbsc.end(fp) {
		return ""
	}
	return p.boundCookie("", -1)
}

// checkBound is the ingress check of a request that is not a DBSC
// endpoint: a device-bound session presented without its current,
// unexpired bound cookie is removed from the request (the app serves it
// anonymously) and logged as dbsc_unbound. So is a session that predates
// this proxy process (issued before it started, or never seen issued)
// presented with a bound cookie: it was device-bound before a restart and
// its binding is lost, so the user logs in again and the browser
// registers anew. The bound cookie itself never reaches the app.
func (p *Proxy) checkBound(r *http.Request, info *reqInfo) {
	s := p.dbsc
	v, present := cookieValue(r.Header, s.name)
	if present {
		removeCookie(r.Header, s.name)
	}
	if info.inFP == "" {
		return
	}
	if _, still := cookieValue(r.Header, p.opt.SessionCookie); !still {
		return // ingress removed it already
	}
	bs, ok := s.get(info.inFP)
	if !ok {
		if !present {
			return
		}
		if bd, st := p.opt.Bindings.Get(info.inFP); st != Bound || !bd.Presented && !bd.Created.Before(s.started) {
			return // a session issued since the start, with an older session's bound cookie
		}
		removeCookie(r.Header, p.opt.SessionCookie)
		info.rec.Event(reqlog.EventDBSCUnbound, "forgotten")
		return
	}
	if present && p.opt.Now().UnixNano() < bs.boundTo {
		sum := sha256.Sum256([]byte(v))
		if subtle.ConstantTimeCompare(sum[:], bs.bound[:]) == 1 {
			info.dbscOK = true
			return
		}
	}
	removeCookie(r.Header, p.opt.SessionCookie)
	info.rec.Event(reqlog.EventDBSCUnbound, "")
}

// serveDBSCEndpoint answers the registration and refresh endpoints; it
// reports false for any other path.
func (p *Proxy) serveDBSCEndpoint(w http.ResponseWriter, r *http.Request, info *reqInfo) bool {
	s := p.dbsc
	var f func(*http.Request, *reqInfo) *dbscReply
	switch r.URL.Path {
	case s.cfg.RegisterPath:
		f = p.dbscRegister
	case s.cfg.RefreshPath:
		f = p.dbscRefresh
	default:
		return false
	}
	var rp *dbscReply
	if r.Method != http.MethodPost {
		rp = &dbscReply{status: http.StatusMethodNotAllowed, header: http.Header{"Allow": {http.MethodPost}}}
	} else {
		if r.Body != nil {
			// The endpoints read no body; take a little of it so the
			// connection can be reused, and no more.
			_, _ = io.CopyN(io.Discard, r.Body, 4<<10)
		}
		rp = f(r, info)
	}
	h := w.Header()
	for k, v := range rp.header {
		h[k] = v
	}
	if info.devNew != "" {
		h.Add("Set-Cookie", p.deviceCookie(info))
	}
	h.Set("Cache-Control", "no-store")
	if rp.body == nil {
		http.Error(w, http.StatusText(rp.status), rp.status)
		return true
	}
	h.Set("Content-Type", "application/json")
	w.WriteHeader(rp.status)
	_ = json.NewEncoder(w).Encode(rp.body)
	return true
}

// dbscReply is a DBSC endpoint's answer.
type dbscReply struct {
	status int
	header http.Header
	body   any
}

// refuse is the answer to a DBSC request that cannot go on: a 4xx (which
// ends that browser's device-bound session, not the binding) and a
// dbsc_proof_failed line.
func (p *Proxy) refuse(info *reqInfo, status int, detail string) *dbscReply {
	info.rec.Event(reqlog.EventDBSCProofFailed, detail)
	return &dbscReply{status: status}
}

// presented returns the app session fingerprint the request still carries
// after ingress, or "".
func (p *Proxy) presented(r *http.Request, info *reqInfo) string {
	if info.inFP == "" {
		return ""
	}
	if _, ok := cookieValue(r.Header, p.opt.SessionCookie); !ok {
		return "" // revoked at the edge, or unverifiable
	}
	return info.inFP
}

// dbscRegister answers a registration: a proof carrying the browser's new
// public key, signed over the challenge offered with the app session the
// request presents, from the device that session is bound to.
func (p *Proxy) dbscRegister(r *http.Request, info *reqInfo) *dbscReply {
	s := p.dbsc
	fp := p.presented(r, info)
	if fp == "" {
		return p.refuse(info, http.StatusUnauthorized, "no_registration_offered")
	}
	if bd, st := p.opt.Bindings.Get(fp); st != Bound || bd.Device != info.dev {
		return p.refuse(info, http.StatusUnauthorized, "no_registration_offered")
	}
	if bs, ok := s.get(fp); ok {
		if bs.id == "" {
			return p.refuse(info, http.StatusUnauthorized, "logged_out")
		}
		return p.refuse(info, http.StatusUnauthorized, "already_registered")
	}
	raw, err := dbsc.HeaderString(r.Header.Get(dbsc.HeaderResponse))
	if err != nil {
		return p.refuse(info, http.StatusBadRequest, "malformed_header")
	}
	pr, err := dbsc.VerifyRegistration(raw)
	if err != nil {
		p.log.Info("proxy: dbsc registration refused", "fingerprint", fp, "err", err)
		return p.refuse(info, http.StatusBadRequest, "bad_proof")
	}
	if err := s.chals.Consume(pr.Challenge, fp); err != nil {
		return p.refuse(info, http.StatusBadRequest, "bad_challenge")
	}
	id, err := token.New(p.opt.Rand)
	if err != nil {
		return &dbscReply{status: http.StatusServiceUnavailable, header: http.Header{"Retry-After": {"5"}}}
	}
	val, sum, err := p.newBound()
	if err != nil {
		return &dbscReply{status: http.StatusServiceUnavailable, header: http.Header{"Retry-After": {"5"}}}
	}
	bs := boundSession{fp: fp, id: id, jwk: pr.Key.JWK(), bound: sum, boundTo: p.opt.Now().Add(s.cfg.TTL).UnixNano()}
	s.put(bs)
	info.rec.Event(reqlog.EventDBSCRegister, "")
	return p.issued(r, bs.id, val)
}

// dbscRefresh answers a refresh: without a proof, 403 with a fresh
// challenge; with a proof signed by the registered key over a live
// challenge, a new bound cookie; with a validly signed stale one, 403 with
// a fresh challenge.
func (p *Proxy) dbscRefresh(r *http.Request, info *reqInfo) *dbscReply {
	s := p.dbsc
	id, err := dbsc.HeaderString(r.Header.Get(dbsc.HeaderSessionID))
	if err != nil {
		return p.refuse(info, http.StatusBadRequest, "malformed_session_id")
	}
	fp := p.presented(r, info)
	bs, ok := s.get(fp)
	if fp == "" || !ok || bs.id == "" || subtle.ConstantTimeCompare([]byte(id), []byte(bs.id)) != 1 {
		// Logged out, revoked, forgotten or never bound: no cookie.
		return p.refuse(info, http.StatusUnauthorized, "no_bound_session")
	}
	key, err := dbsc.ParseJWK(bs.jwk)
	if err != nil {
		return p.refuse(info, http.StatusUnauthorized, "stored_key")
	}
	hdr := r.Header.Get(dbsc.HeaderResponse)
	if hdr == "" {
		return p.dbscChallenge(fp, bs.id)
	}
	raw, err := dbsc.HeaderString(hdr)
	if err != nil {
		return p.refuse(info, http.StatusBadRequest, "malformed_header")
	}
	pr, err := dbsc.VerifyRefresh(raw, key)
	if err != nil {
		p.log.Info("proxy: dbsc refresh refused", "fingerprint", fp, "err", err)
		return p.refuse(info, http.StatusBadRequest, "bad_proof")
	}
	if err := s.chals.Consume(pr.Challenge, fp); err != nil {
		// Validly signed but stale (a browser may resend a cached proof):
		// a fresh challenge, not the end of the session.
		info.rec.Event(reqlog.EventDBSCProofFailed, "stale_challenge")
		return p.dbscChallenge(fp, bs.id)
	}
	val, sum, err := p.newBound()
	if err != nil {
		return &dbscReply{status: http.StatusServiceUnavailable, header: http.Header{"Retry-After": {"5"}}}
	}
	if !s.setBound(fp, bs.id, sum, p.opt.Now().Add(s.cfg.TTL).UnixNano()) {
		return p.refuse(info, http.StatusUnauthorized, "no_bound_session") // logged out meanwhile
	}
	info.rec.Event(reqlog.EventDBSCRefresh, "")
	return p.issued(r, bs.id, val)
}

// dbscChallenge answers 403 with a fresh challenge for fp's session id.
func (p *Proxy) dbscChallenge(fp, id string) *dbscReply {
	ch, err := p.dbsc.chals.Issue(fp)
	if err != nil {
		return &dbscReply{status: http.StatusServiceUnavailable, header: http.Header{"Retry-After": {"5"}}}
	}
	v, _ := dbsc.ChallengeHeader(ch, id)
	return &dbscReply{status: http.StatusForbidden, header: http.Header{dbsc.HeaderChallenge: {v}}}
}

// newBound returns a new bound cookie value and its SHA-256.
func (p *Proxy) newBound() (string, [32]byte, error) {
	v, err := token.New(p.opt.Rand)
	if err != nil {
		return "", [32]byte{}, err
	}
	return v, sha256.Sum256([]byte(v)), nil
}

// issued answers the session instructions with the bound cookie val.
func (p *Proxy) issued(r *http.Request, id, val string) *dbscReply {
	s := p.dbsc
	attrs := "Path=/; Secure; HttpOnly; SameSite=Lax"
	scheme := "https"
	if p.opt.Dev {
		attrs = "Path=/; HttpOnly; SameSite=Lax"
		if r.TLS == nil {
			scheme = "http"
		}
	}
	return &dbscReply{
		status: http.StatusOK,
		header: http.Header{"Set-Cookie": {p.boundCookie(val, int(s.cfg.TTL/time.Second))}},
		body: dbsc.Instructions{
			SessionID:  id,
			RefreshURL: s.cfg.RefreshPath,
			Scope:      dbsc.Scope{Origin: scheme + "://" + r.Host},
			Creds:      []dbsc.Credential{{Type: "cookie", Name: s.name, Attributes: attrs}},
		},
	}
}

// boundCookie is the Set-Cookie line of the bound cookie (a deletion for a
// negative maxAge).
func (p *Proxy) boundCookie(val string, maxAge int) string {
	c := http.Cookie{Name: p.dbsc.name, Value: val, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: !p.opt.Dev, SameSite: http.SameSiteLaxMode}
	return c.String()
}
