// Package proxy is cordon's guard as a reverse proxy: the one-door rule for
// session cookies, enforced at the edge in front of any application (Rails
// on Unicorn or Puma, Django, PHP, Node) with no change to the app.
//
// Every browser gets a long-lived device cookie (__Host-cordon-dev, 256
// random bits). The proxy binds each app session — by its fingerprint, the
// hex of the first 16 bytes of SHA-256 of the cookie value — to the device
// it was first issued to or first presented by. Then:
//
//   - Egress: a Set-Cookie of the app's session cookie whose session is
//     bound to another device, or revoked at the edge, is a guard_block, and
//     so is a line that smuggles the cookie's name outside the cookie a
//     browser stores from it. In block mode the response fails closed (an
//     error page, and no app session cookie leaves; OnBlock Strip only
//     removes the header); in report mode it passes and is logged. A new
//     session issued to this device binds to it.
//   - Ingress: a session presented by a device it is not bound to is logged
//     as device_mismatch and, with StripForeign, removed from the request
//     before the app sees it. A session revoked at the edge is always
//     removed.
//   - The app may name its principal in a response header (UserHeader),
//     which the proxy strips and logs as uid_view and uid_out.
//
// Each request leaves one line in the request log (package reqlog), so
// `cordon scan` can prove who got what.
package proxy

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cordon-sec/cordon/internal/reqcookie"
	"github.com/cordon-sec/cordon/internal/setcookie"
	"github.com/cordon-sec/cordon/internal/token"
	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/store"
)

// Mode says what the guard does with a cookie that must not leave.
type Mode int

const (
	// Block fails the response closed (the default).
	Block Mode = iota
	// Report lets it pass and logs the guard_block.
	Report
)

// OnBlock says how a blocked response fails.
type OnBlock int

const (
	// Fail replaces the response with an error page (the default).
	Fail OnBlock = iota
	// Strip removes only the offending Set-Cookie.
	Strip
)

// DeviceCookie is the name of the proxy's device cookie; DevDeviceCookie
// its name in development mode (Options.Dev), where it is not Secure and so
// may not carry the __Host- prefix.
const (
	DeviceCookie    = "__Host-cordon-dev"
	DevDeviceCookie = "cordon-dev"
)

// Options configure a Proxy.
type Options struct {
	// Upstream is the app's base URL. Required.
	Upstream *url.URL
	// SessionCookie is the name of the app's session cookie. Required.
	SessionCookie string
	// Mode is Block (default) or Report.
	Mode Mode
	// OnBlock is Fail (default) or Strip.
	OnBlock OnBlock
	// StripForeign removes from the request a session presented by a device
	// it is not bound to.
	StripForeign bool
	// Dev is development mode, for trying the proxy out over plain HTTP:
	// the device cookie is sent without Secure (and so without the
	// __Host- prefix, as DevDeviceCookie), or a browser would not send it
	// back over http://. Never set it in production: it is an explicit
	// choice, never inferred from a request.
	Dev bool
	// UserHeader, if set, is the response header in which the app names the
	// principal the response is for. The proxy strips it.
	UserHeader string
	// Bindings holds the session-to-device bindings and edge revocations:
	// a *Bindings (one node) or a *RedisBindings (many). Nil means in
	// memory only.
	Bindings BindingStore
	// MaxRequestBody caps request bodies (default 32 MiB); larger ones get
	// 413.
	MaxRequestBody int64
	// MaxResponseHeader caps the upstream's response headers (default 1 MiB).
	MaxResponseHeader int64
	// Transport is the upstream transport. Nil means keep-alive HTTP/1.1:
	// bodiless GET and HEAD on the caller's goroutine (see fastTransport),
	// everything else through a tuned clone of http.DefaultTransport.
	Transport http.RoundTripper
	// DBSC, if set, turns on device-bound sessions at the edge: the proxy
	// registers and refreshes them on the app's behalf (see DBSC).
	DBSC *DBSC
	// Now, Rand and Logger default to time.Now, crypto/rand and
	// slog.Default().
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
}

// Proxy is the guard proxy. It is an http.Handler; wrap it in
// reqlog.Middleware to write the request log.
type Proxy struct {
	opt     Options
	direct  *fastTransport // the pool serveDirect uses; nil for a Transport of the caller's or an https upstream
	upAddr  string         // the upstream's host:port, for serveDirect
	rp      *httputil.ReverseProxy
	log     *slog.Logger
	devName string // the device cookie's name
	dbsc    *dbscState
}

// New returns a Proxy. It returns an error for a missing upstream or
// session cookie name.
func New(opt Options) (*Proxy, error) {
	if opt.Upstream == nil || opt.Upstream.Host == "" {
		return nil, errors.New("proxy: an upstream URL is required")
	}
	if opt.SessionCookie == "" {
		return nil, errors.New("proxy: the app's session cookie name is required")
	}
	if opt.Bindings == nil {
		opt.Bindings = NewBindings()
	}
	if opt.MaxRequestBody <= 0 {
		opt.MaxRequestBody = 32 << 20
	}
	if opt.MaxResponseHeader <= 0 {
		opt.MaxResponseHeader = 1 << 20
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns = 1024
		t.MaxIdleConnsPerHost = 1024
		t.MaxResponseHeaderBytes = opt.MaxResponseHeader
		t.DisableCompression = true
		// The upstream is the app, reached directly: like nginx, the proxy
		// does not route it through HTTP_PROXY (and does not evaluate the
		// environment's proxy rules on every request).
		t.Proxy = nil
		opt.Transport = newFastTransport(t, opt.MaxResponseHeader)
	}
	p := &Proxy{opt: opt, log: opt.Logger, devName: DeviceCookie}
	if ft, ok := opt.Transport.(*fastTransport); ok && opt.Upstream.Scheme == "http" &&
		(opt.Upstream.Path == "" || opt.Upstream.Path == "/") && opt.Upstream.RawQuery == "" {
		p.direct = ft
		p.upAddr = opt.Upstream.Host
		if opt.Upstream.Port() == "" {
			p.upAddr = net.JoinHostPort(opt.Upstream.Hostname(), "80")
		}
	}
	if opt.Dev {
		p.devName = DevDeviceCookie
	}
	if opt.DBSC != nil {
		p.dbsc = newDBSCState(*opt.DBSC, &opt)
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:        p.rewrite,
		BufferPool:     &bufferPool{},
		Transport:      opt.Transport,
		ModifyResponse: p.egress,
		ErrorHandler:   p.fail,
		ErrorLog:       slog.NewLogLogger(opt.Logger.Handler(), slog.LevelWarn),
	}
	return p, nil
}

type reqKey struct{}

// reqInfo is what the proxy knows about one request, for the egress side.
type reqInfo struct {
	dev    string // device fingerprint
	devNew string // device cookie value to set, when minted in this request
	rec    *reqlog.Record
	gw     guardWriter
	// inVal and inFP are the app session the request presented and its
	// fingerprint, so that a response renewing it is not hashed again.
	inVal, inFP string
	// dbscOK: the request carried a device-bound session with its current
	// bound cookie.
	dbscOK bool
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	info := &reqInfo{rec: reqlog.FromContext(r.Context())}
	if v, ok := cookieValue(r.Header, p.devName); ok && token.Valid(v) {
		info.dev = store.Fingerprint(v)
	} else {
		tok, err := token.New(p.opt.Rand)
		if err != nil {
			p.log.Error("proxy: no randomness for a device cookie", "err", err)
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
			return
		}
		info.devNew, info.dev = tok, store.Fingerprint(tok)
	}
	info.rec.Device(info.dev)
	p.ingress(r, info)
	if p.dbsc != nil {
		if p.serveDBSCEndpoint(w, r, info) {
			return
		}
		p.checkBound(r, info)
	}
	if r.ContentLength > p.opt.MaxRequestBody {
		if info.devNew != "" {
			w.Header().Add("Set-Cookie", p.deviceCookie(info))
		}
		http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
		return
	}
	// The device cookie is added to the final response (egress, or fail
	// for the proxy's own error pages), never to the header map before: the
	// reverse proxy clears that map after each informational response.
	if p.direct != nil && p.serveDirect(w, r, info) {
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, p.opt.MaxRequestBody)
	}
	info.gw = guardWriter{ResponseWriter: w, p: p, info: info}
	p.rp.ServeHTTP(&info.gw, r.WithContext(context.WithValue(r.Context(), reqKey{}, info)))
}

// guardWriter is the writer the reverse proxy answers through. It guards
// informational (1xx) responses, which the reverse proxy forwards from
// inside the transport before the final response reaches egress: none may
// set a cookie or carry the user header.
type guardWriter struct {
	http.ResponseWriter
	p    *Proxy
	info *reqInfo
}

func (g *guardWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		g.p.guard1xx(g.ResponseWriter.Header(), g.info)
	}
	g.ResponseWriter.WriteHeader(code)
}

// Unwrap gives http.ResponseController (flushes, the hijack of a protocol
// switch) the writer underneath.
func (g *guardWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

// guard1xx removes every Set-Cookie (in any spelling of the name) and the
// user header from an informational response's header h. An app session
// cookie among them is logged as a guard_block (detail informational): it
// does not leave, whoever it belongs to.
func (p *Proxy) guard1xx(h http.Header, info *reqInfo) {
	for k, lines := range h {
		switch {
		case strings.EqualFold(k, "Set-Cookie"):
			for _, l := range lines {
				if kind, _ := setcookie.Classify(l, p.opt.SessionCookie); kind != setcookie.None {
					info.rec.Event(reqlog.EventGuardBlock, "informational")
					p.log.Warn("proxy: removed the app session cookie from an informational response")
					break
				}
			}
			delete(h, k)
		case p.opt.UserHeader != "" && strings.EqualFold(k, p.opt.UserHeader):
			delete(h, k)
		}
	}
}

// ingress checks the app sessions the request presents.
func (p *Proxy) ingress(r *http.Request, info *reqInfo) {
	name := p.opt.SessionCookie
	v, ok := cookieValue(r.Header, name)
	if !ok || v == "" {
		return
	}
	fp := store.Fingerprint(v)
	info.inVal, info.inFP = v, fp
	bd, st := p.opt.Bindings.Get(fp)
	switch st {
	case Revoked:
		removeCookie(r.Header, name)
		info.rec.Event(reqlog.EventRevoke, "edge_revoked")
		return
	case Unbound:
		var err error
		bd, st, err = p.opt.Bindings.Bind(r.Context(), fp, Binding{Device: info.dev, Created: p.opt.Now(), Presented: true})
		if err != nil {
			p.log.Warn("proxy: binding not persisted", "fingerprint", fp, "err", err)
		}
		switch st {
		case Revoked:
			removeCookie(r.Header, name)
			return
		case Unbound:
			// The shared store could not say whose session this is: fail
			// closed, the app serves the request anonymously.
			removeCookie(r.Header, name)
			info.rec.SessionIn(fp, "")
			return
		}
	}
	info.rec.SessionIn(fp, bd.Principal)
	if bd.Device != info.dev {
		info.rec.Event(reqlog.EventDeviceMismatch, "presented")
		if p.opt.StripForeign {
			removeCookie(r.Header, name)
		}
	}
}

func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.SetURL(p.opt.Upstream)
	pr.Out.Host = pr.In.Host // the app sees the site's own host
	pr.SetXForwarded()
	// Forwarded (RFC 7239) for the hop we add; X-Forwarded-* by SetXForwarded.
	proto := "http"
	if pr.In.TLS != nil {
		proto = "https"
	}
	hop := "for=" + forwardedNode(pr.In.RemoteAddr) + ";host=" + quoteIfNeeded(pr.In.Host) + ";proto=" + proto
	if prior := pr.In.Header.Values("Forwarded"); len(prior) > 0 {
		pr.Out.Header.Set("Forwarded", strings.Join(prior, ", ")+", "+hop)
	} else {
		pr.Out.Header.Set("Forwarded", hop)
	}
	if p.opt.UserHeader != "" {
		pr.Out.Header.Del(p.opt.UserHeader) // a client may not claim to be anyone
	}
}

var errBlocked = errors.New("proxy: response blocked by the session guard")

// egress checks every app session cookie the response sets (the reverse
// proxy's ModifyResponse).
func (p *Proxy) egress(resp *http.Response) error {
	info, _ := resp.Request.Context().Value(reqKey{}).(*reqInfo)
	if info == nil {
		return errors.New("proxy: response without request info")
	}
	return p.egressHeader(resp.Request.Context(), resp.Header, info)
}

// egressHeader checks every app session cookie that the response header h
// sets, strips the user header, and adds the device cookie if one was
// minted. It returns errBlocked when the response must fail closed.
func (p *Proxy) egressHeader(ctx context.Context, h http.Header, info *reqInfo) error {
	uid := ""
	if p.opt.UserHeader != "" {
		uid = h.Get(p.opt.UserHeader)
		h.Del(p.opt.UserHeader)
		info.rec.View(uid)
	}
	lines := h["Set-Cookie"]
	if len(lines) == 0 {
		if info.devNew != "" {
			h["Set-Cookie"] = []string{p.deviceCookie(info)}
		}
		return nil
	}
	kept := lines[:0:0]
	blocked := false
	unbind := ""
	for _, l := range lines {
		if setcookie.Smuggles(l, p.opt.SessionCookie) {
			// The session cookie's name with a value outside the cookie a
			// browser stores: a client or intermediary that splits the line
			// another way would take it. No honest app writes one; it does
			// not leave, whoever the value belongs to.
			info.rec.Event(reqlog.EventGuardBlock, p.detail("smuggled"))
			p.log.Warn("proxy: guard blocked a Set-Cookie line that smuggles the app session cookie", "mode", p.opt.Mode)
			if p.opt.Mode == Report {
				kept = append(kept, l)
			} else {
				blocked = true
			}
			continue
		}
		v, ours := setcookie.Value(l, p.opt.SessionCookie)
		if !ours || setcookie.Deletes(l) {
			if ours && p.dbsc != nil && unbind == "" && setcookie.Expired(l) {
				unbind = p.loggedOut(info.inFP) // the app logs the session out
			}
			kept = append(kept, l)
			continue
		}
		fp := info.inFP
		if v != info.inVal {
			fp = store.Fingerprint(v)
		}
		bd, st := p.opt.Bindings.Get(fp)
		if st == Unbound || st == Bound && bd.Presented && bd.Device == info.dev {
			// A new session, or the app renewing one this device presented
			// first: the app issued it to this device (a presented-only
			// binding moves to the issued class).
			var err error
			bd, st, err = p.opt.Bindings.Bind(ctx, fp, Binding{Device: info.dev, Principal: uid, Created: p.opt.Now()})
			if err != nil {
				p.log.Warn("proxy: binding not persisted", "fingerprint", fp, "err", err)
			}
		}
		// uid_out is the session's owner as the proxy knows it: the user
		// the app named when it first issued the session, else this one.
		out := bd.Principal
		if out == "" {
			out = uid
		}
		switch {
		case st == Revoked:
			info.rec.Event(reqlog.EventGuardBlock, p.detail("revoked"))
		case st == Unbound:
			// The shared store could not say whose session this is: it
			// does not leave (fail closed).
			info.rec.Event(reqlog.EventGuardBlock, p.detail("unverified"))
		case bd.Device != info.dev:
			info.rec.Event(reqlog.EventGuardBlock, p.detail("foreign_device"))
		default:
			info.rec.SessionOut(fp, out)
			kept = append(kept, l)
			if p.dbsc != nil && v != info.inVal {
				p.dbscIssued(h, info, fp)
			}
			continue
		}
		p.log.Warn("proxy: guard blocked an app session cookie", "fingerprint", fp, "mode", p.opt.Mode)
		info.rec.SessionOut(fp, out)
		if p.opt.Mode == Report {
			kept = append(kept, l)
			continue
		}
		blocked = true
	}
	if blocked && p.opt.OnBlock == Fail {
		return errBlocked
	}
	if len(kept) != len(lines) || blocked {
		h.Set("Cache-Control", "no-store")
	}
	if info.devNew != "" {
		kept = append(kept, p.deviceCookie(info))
	}
	if unbind != "" {
		kept = append(kept, unbind)
	}
	h["Set-Cookie"] = kept
	return nil
}

func (p *Proxy) detail(d string) string {
	if p.opt.Mode == Report {
		return "report:" + d
	}
	return d
}

// fail answers for a blocked response or an upstream error: no cookie of the
// app leaves.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	info, _ := r.Context().Value(reqKey{}).(*reqInfo)
	p.failFor(w, info, err)
}

// failFor is fail for the request whose info is known.
func (p *Proxy) failFor(w http.ResponseWriter, info *reqInfo, err error) {
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	if info != nil && info.devNew != "" {
		h.Add("Set-Cookie", p.deviceCookie(info))
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, errBlocked):
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, "This response was stopped because it would have signed you in as someone else. Please reload.\n")
	case errors.As(err, &mbe):
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		io.WriteString(w, "request body too large\n")
	case errors.Is(err, context.Canceled):
		// The client went away: there is nobody to answer, and the request
		// log records status 0.
	default:
		p.log.Warn("proxy: upstream error", "err", err)
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, "bad gateway\n")
	}
}

func (p *Proxy) deviceCookie(info *reqInfo) string {
	c := http.Cookie{Name: p.devName, Value: info.devNew, Path: "/", HttpOnly: true, Secure: !p.opt.Dev,
		SameSite: http.SameSiteLaxMode, MaxAge: 400 * 24 * 3600}
	return c.String()
}

// cookieValue returns the first value of the named cookie in request
// headers h, read as internal/reqcookie does.
func cookieValue(h http.Header, name string) (string, bool) {
	return reqcookie.First(h["Cookie"], name)
}

// removeCookie removes every cookie of the name from request headers h.
func removeCookie(h http.Header, name string) {
	if out := reqcookie.Remove(h["Cookie"], name); out == nil {
		h.Del("Cookie")
	} else {
		h["Cookie"] = out
	}
}

// bufferPool recycles the buffers the reverse proxy copies bodies through.
// A buffer is reachable only by the copy loop of the request that holds it,
// and is handed back when that copy ends.
type bufferPool struct{ p sync.Pool }

func (bp *bufferPool) Get() []byte { return *bp.getPtr() }

func (bp *bufferPool) Put(b []byte) {
	if cap(b) != 32<<10 {
		return
	}
	b = b[:cap(b)]
	bp.p.Put(&b)
}

// getPtr and putPtr pass the buffer's pointer round, so that handing it
// back allocates nothing (Put must make one).
func (bp *bufferPool) getPtr() *[]byte {
	if b, ok := bp.p.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 32<<10)
	return &b
}

func (bp *bufferPool) putPtr(b *[]byte) { bp.p.Put(b) }

func forwardedNode(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() {
		return `"[` + host + `]"`
	}
	return host
}

func quoteIfNeeded(s string) string {
	if strings.ContainsAny(s, ":[]") {
		return `"` + s + `"`
	}
	return s
}
