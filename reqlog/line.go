package reqlog

import (
	"context"
	"sync"
)

// Version is the schema version this package writes.
const Version = 1

// Events a request can record (the `event` field).
const (
	EventLogin          = "login"
	EventLogout         = "logout"
	EventRenew          = "renew"
	EventRevoke         = "revoke"
	EventExpire         = "expire"
	EventBadCookie      = "bad_cookie"
	EventGuardBlock     = "guard_block"
	EventStaleUse       = "stale_use"
	EventDeviceMismatch = "device_mismatch"

	// Device-bound sessions (DBSC): a browser registered its key, renewed
	// its bound cookie, sent a proof that failed (detail says why), or
	// presented a device-bound session's cookie without its bound cookie
	// (served as nobody).
	EventDBSCRegister    = "dbsc_register"
	EventDBSCRefresh     = "dbsc_refresh"
	EventDBSCProofFailed = "dbsc_proof_failed"
	EventDBSCUnbound     = "dbsc_unbound"
)

// Line is one request-log record, field for field as in the log schema.
// Optional fields are omitted when empty.
type Line struct {
	V       int     `json:"v"`
	TS      string  `json:"ts"`
	DurMS   float64 `json:"dur_ms"`
	Req     string  `json:"req"`
	Host    string  `json:"host"`
	PID     int     `json:"pid"`
	Seq     int64   `json:"seq"`
	IP      string  `json:"ip"`
	UA      string  `json:"ua,omitempty"`
	Dev     string  `json:"dev,omitempty"`
	ASN     int     `json:"asn,omitempty"`
	Cache   string  `json:"cache,omitempty"`
	Method  string  `json:"method"`
	Path    string  `json:"path"`
	Status  int     `json:"status"`
	SidIn   string  `json:"sid_in,omitempty"`
	UidIn   string  `json:"uid_in,omitempty"`
	SidOut  string  `json:"sid_out,omitempty"`
	UidOut  string  `json:"uid_out,omitempty"`
	UidView string  `json:"uid_view,omitempty"`
	Event   string  `json:"event,omitempty"`
	Detail  string  `json:"detail,omitempty"`
}

// eventRank orders events when one request has several: the record keeps
// the highest-ranked one (the most important for an investigator), and among
// equals the latest.
var eventRank = map[string]int{
	EventGuardBlock:      9,
	EventStaleUse:        8,
	EventDeviceMismatch:  7,
	EventDBSCProofFailed: 7,
	EventDBSCUnbound:     7,
	EventRevoke:          6,
	EventLogin:           5,
	EventDBSCRegister:    5,
	EventLogout:          4,
	EventDBSCRefresh:     3,
	EventRenew:           3,
	EventExpire:          2,
	EventBadCookie:       1,
}

// Record collects what the layers of one request learn about its session,
// for the log line written when the request ends. Its methods are safe for
// concurrent use and do nothing on a nil Record or once the line has been
// written, so a late call from a stale goroutine can never change a record.
type Record struct {
	mu     sync.Mutex
	done   bool
	ip     string
	sidIn  string
	uidIn  string
	sidOut string
	uidOut string
	view   string
	dev    string
	cache  string
	event  string
	detail string

	// Set by the middleware when the line is written, for Late: with the
	// fields above (frozen once done), what Late's line repeats.
	w     *Writer
	opt   *Options
	final written
}

// written is what a request's line carried beyond its Record's fields, for
// a Late line about the same request.
type written struct {
	req, ua, method, path string
	pid, asn              int
	seq                   int64
}

type recordKey struct{}

// NewContext returns ctx carrying rec.
func NewContext(ctx context.Context, rec *Record) context.Context {
	return context.WithValue(ctx, recordKey{}, rec)
}

// FromContext returns the request's Record, or nil when the request is not
// being logged. A nil *Record accepts every call and records nothing.
func FromContext(ctx context.Context) *Record {
	rec, _ := ctx.Value(recordKey{}).(*Record)
	return rec
}

func (r *Record) set(f func()) {
	if r == nil {
		return
	}
	r.mu.Lock()
	if !r.done {
		f()
	}
	r.mu.Unlock()
}

// IP returns the client IP the log line will carry ("" on a nil Record).
func (r *Record) IP() string {
	if r == nil {
		return ""
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ip
}

// SetIP records the client IP (the middleware sets it; proxies may refine it).
func (r *Record) SetIP(ip string) { r.set(func() { r.ip = ip }) }

// SessionIn records the session presented in the request cookie (its
// fingerprint) and the principal it belonged to on arrival.
func (r *Record) SessionIn(fp, uid string) { r.set(func() { r.sidIn, r.uidIn = fp, uid }) }

// SessionOut records the session set by the response's Set-Cookie and the
// principal it belongs to at the moment the cookie is written.
func (r *Record) SessionOut(fp, uid string) { r.set(func() { r.sidOut, r.uidOut = fp, uid }) }

// View records the principal the response is produced for.
func (r *Record) View(uid string) { r.set(func() { r.view = uid }) }

// Device records the fingerprint of the per-browser device cookie.
func (r *Record) Device(fp string) { r.set(func() { r.dev = fp }) }

// Cache records whether a cache in the path answered ("hit") or passed
// ("miss") the request.
func (r *Record) Cache(c string) { r.set(func() { r.cache = c }) }

// Event records what happened to the session. When a request has several
// events the record keeps the most important one (guard_block, then
// stale_use, device_mismatch, revoke, login, logout, renew, expire,
// bad_cookie), and among equals the latest.
func (r *Record) Event(event, detail string) {
	r.set(func() {
		if r.event == "" || eventRank[event] >= eventRank[r.event] {
			r.event, r.detail = event, detail
		}
	})
}

// keep remembers the written line, for Late.
func (r *Record) keep(w *Writer, opt *Options, l *Line) {
	r.mu.Lock()
	r.w, r.opt = w, opt
	r.final = written{req: l.Req, ua: l.UA, method: l.Method, path: l.Path, pid: l.PID, asn: l.ASN, seq: l.Seq}
	r.mu.Unlock()
}

// fill copies the record into l and marks it written: later calls are
// ignored.
func (r *Record) fill(l *Line) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = true
	if r.ip != "" {
		l.IP = r.ip
	}
	l.SidIn, l.UidIn = r.sidIn, r.uidIn
	l.SidOut, l.UidOut = r.sidOut, r.uidOut
	l.UidView = r.view
	l.Dev, l.Cache = r.dev, r.cache
	l.Event, l.Detail = r.event, r.detail
}

// Late records an event that happens to a request's session after the
// request's line was written — a handle used after its request ended
// (stale_use) — as a line of its own: the ended request's client and
// session fields, a new request id, the current time, status 0, and detail
// followed by " req=" and the ended request's id. Before the line is
// written it acts as Event. It does nothing on a nil Record or one that no
// middleware writes.
func (r *Record) Late(event, detail string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	if !r.done {
		if r.event == "" || eventRank[event] >= eventRank[r.event] {
			r.event, r.detail = event, detail
		}
		r.mu.Unlock()
		return
	}
	w, opt, k := r.w, r.opt, r.final
	// The ended request's client and session fields, as its line had them.
	l := Line{
		V: Version, PID: k.pid, Seq: k.seq, IP: r.ip, UA: k.ua,
		Dev: r.dev, ASN: k.asn, Cache: r.cache, Method: k.method, Path: k.path,
		SidIn: r.sidIn, UidIn: r.uidIn, UidView: r.view,
	}
	r.mu.Unlock()
	if w == nil {
		return
	}
	ts, id := tsAndID(opt.Now(), opt.Rand)
	l.Host, l.TS, l.Req = opt.Host, ts, id
	l.Event, l.Detail = event, detail+" req="+k.req
	_ = w.WriteLine(&l) // failures are counted and reported by w
}
