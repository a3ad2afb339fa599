// Package session is cordon's net/http session manager.
//
// A Manager wraps handlers in Middleware; a handler gets the request's
// session with From(r). The handle is bound to its request: when the request
// ends (the handler returns or panics, or the client goes away) it is
// sealed, and every method then returns an error matching ErrRequestEnded
// that says where the handle was obtained and when its request ended. A
// handle kept by a goroutine, a callback or an error reporter can therefore
// never read or write another request's session. To start background work
// from a handler, copy the plain values it needs and give it
// scope.Detach(r.Context()).
//
// # One door for the session cookie
//
// Only the middleware writes the session cookie, and only for the handle's
// own session. At the first WriteHeader, Write or Flush it removes every
// Set-Cookie line that would give a client the session cookie — under any
// spelling of the header key, in a trailer, comma-joined, nameless, inside
// another cookie — that the handler (or a library, or a stale goroutine)
// put into the header map, carries out a hand-written deletion properly,
// and checks, against the store
// at that moment, that the session it sends belongs to the principal the
// request arrived with or logged in as. Anything else is a guard_block: the
// response fails closed with 500 and no cookie at all (GuardBlock, the
// default), or passes and is recorded (GuardReport, for a first rollout).
// Every response that sets or clears the session cookie carries
// Cache-Control: no-store and Vary: Cookie.
//
// Not guarded: bytes written to a hijacked connection (the handler owns the
// raw connection; the session is committed before it is handed over), and a
// handler that obtains the raw token by other means (it never gets it from
// cordon).
//
// # Tokens and cookies
//
// A token is 32 bytes from crypto/rand, base64url without padding (43
// characters). The store keeps only its SHA-256 (store.HashToken); logs use
// the fingerprint, the hex of the first 16 bytes of that hash. The cookie is
// named __Host-session, with Secure, HttpOnly, SameSite=Lax, Path=/ and no
// Domain. Development mode (Options.Dev, which the application sets; it is
// never inferred from a request) drops the prefix and Secure so that a
// browser sends the cookie back over plain HTTP. Without it, the first
// plain-HTTP request makes the manager warn once that the browser will not.
//
// A request carrying the cookie's name more than once, with values that are
// not all valid sessions of one signed-in principal (cookie tossing, or the
// user's own stale session beside a tossed one), is served as anonymous,
// with bad_cookie "ambiguous".
//
// A cookie that is malformed, longer than MaxCookieBytes, unknown, expired or
// revoked is ignored: the request goes on as anonymous, the cookie is
// cleared, and the request log records a bad_cookie event with the reason.
//
// # Values
//
// Put accepts, and Get returns (as deep copies):
//
//	string, bool                       as is
//	int, int8, int16, int32, int64     stored and returned as int64
//	uint, uint8, uint16, uint32, uint64 stored and returned as uint64
//	float32, float64                   returned as float64
//	time.Time                          to the nanosecond, with its zone offset
//	                                   (the zone's name and the monotonic
//	                                   reading are dropped)
//	[]byte, []string                   as is
//	[]any, map[string]any              of these types, nested up to 32 deep
//	map[string]string                  returned as map[string]any
//	nil
//
// Anything else (structs, pointers, funcs, channels, other maps) is refused
// by Put with ErrUnsupportedType. To store a struct, choose its encoding
// explicitly: PutJSON stores its encoding/json form, and GetJSON[T] decodes
// a fresh T on every call, so what a caller gets is never shared with what
// is stored.
//
// Pop returns a value and deletes it in the same step, for a flash message
// set before a redirect and shown once. Keys starting with a NUL byte are
// reserved for the package's own bookkeeping (ErrReservedKey).
//
// # Concurrent requests on one session
//
// A request records which keys it put or deleted. When it commits, the
// manager re-reads the stored session if another request committed in
// between (optimistic concurrency on the store's version), re-applies only
// its own keys and writes again. Two requests that put different keys both
// survive; for the same key the last commit wins. Login, Renew, Logout and
// LogoutOthers act on the store at once and return its error.
//
// # Defaults
//
// Idle timeout 30 minutes and absolute lifetime 12 hours, after OWASP ASVS
// 5.0 V7.3 at level 2 (re-authentication after inactivity and at least every
// 12 hours of use); the last-seen time is written at most once a minute
// (TouchInterval), so idle expiry is accurate to a minute; expired sessions
// are swept every 5 minutes. A store that fails when a request arrives
// makes it anonymous (FailAnonymous; FailUnavailable answers 503), never
// somebody else.
//
// # Remember me
//
// A login is a browser-session cookie by default (Options.Persist gives
// every cookie a Max-Age instead). LoginWith with LoginOptions{Remember:
// true} gives that one login a persistent cookie and its own timeouts:
// Options.RememberLifetime (default 14 days, never more than
// MaxRememberLifetime, 30 days) from the login, however active the
// session, and Options.RememberIdleTimeout (default 7 days) of inactivity.
// ASVS 5.0 V7.3 asks for both timeouts by risk analysis and V7.1.1 for a
// justification against NIST SP 800-63B, whose longest re-authentication
// interval (AAL1) is 30 days: hence the bound. A remembered session is
// still a session: its token rotates at login, Renew keeps its absolute
// end, and revocation reaches it like any other. Ask for the password
// again before anything sensitive (changing the password or e-mail
// address), which a remembered browser should not be enough for.
//
// # Revocation
//
// RevokeFingerprints deletes exactly the listed sessions (for example the
// list `cordon scan` produced); RevokePrincipal and RevokeAll bump an epoch
// in the store, O(1) whatever the number of sessions. Sessions lists a
// principal's live sessions for a "your devices" page, and the handle's
// LogoutOthers ends every session of its principal but its own.
//
// # Cross-site request forgery
//
// cordon does not issue CSRF tokens: wrap the handler in the standard
// library's http.CrossOriginProtection (Go 1.25 and later), outside the
// session middleware, as every example does:
//
//	h := http.NewCrossOriginProtection().Handler(m.Middleware(mux))
//
// It refuses, with 403 before the session is loaded, every request other
// than GET, HEAD and OPTIONS that a browser marks as cross-origin
// (Sec-Fetch-Site, or an Origin whose host is not the request's Host), so
// a page on another site cannot log a user in or out or change their
// session. GET, HEAD and OPTIONS always pass: never change anything on
// them. Requests without either header (curl, other servers) pass: every
// current browser sends one of them with such a request. Trusted
// other origins are added with AddTrustedOrigin. The SameSite=Lax cookie is
// a second line, not the answer: it does not stop a sibling subdomain,
// which is same-site.
package session
