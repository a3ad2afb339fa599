// Package demo is the reference application that `cordon demo` serves: a
// small site with sign-up, log-in, a profile page listing the user's active
// sessions, log-out, a JSON API for programs and an admin page for
// revocation, built on cordon's session manager and request log the way an
// application should use them.
//
// # Composition
//
// App.ServeHTTP runs, from the outside in: the request log
// (reqlog.Middleware, so the session layer can annotate each line with
// sid_in/uid_in/sid_out/uid_out/uid_view and events), the error reporter's
// request scope (report.Middleware, when Options.Report is set), the
// session middleware, the ledger of sessions served (which also notes why
// the request's session cookie stopped working, below), cross-origin
// protection (net/http's
// CrossOriginProtection, which refuses state-changing requests a browser
// sends from another origin), and the routes. The session middleware runs
// outside the cross-origin check so that a refused cross-site request is
// still logged with the session it carried. Admin revocations and "log out
// my other sessions" record a revoke event (detail session, user, all or
// others) on their request-log line.
//
// # JSON API
//
//	POST /api/signup  {"user":"...","password":"..."}  201 {"user":"name"}
//	POST /api/login   {"user":"...","password":"..."}  200 {"user":"name"}
//	GET  /api/whoami                                   200 {"user":"name"} or {"user":null}
//	POST /api/logout                                   200 {"user":null}
//
// Errors answer {"error":"message"}: 400 for a malformed body or a name or
// password that breaks the rules, 401 for a failed log-in, 409 for a name
// that is taken, 413 for a body over 8 KiB, 415 for a body that is not
// application/json, 403 for a cross-origin browser request, 503 when the
// session store is down or every password-hash slot stayed busy. A wrong password, an unknown user and a malformed
// user name at log-in get the same 401 and the same body after the same
// password-hash work (see Users.Authenticate).
//
// # Cross-site request forgery
//
// Every POST, HTML form or JSON, passes http.CrossOriginProtection: a
// browser's request whose Sec-Fetch-Site is not same-origin/none, or whose
// Origin does not match the Host, is refused with 403. Requests without
// either header (curl, programs) are not browser requests and pass: they
// carry no ambient cookie an attacker could borrow. The session cookie is
// also SameSite=Lax, so a cross-site POST does not carry it in the first
// place.
//
// # Users
//
// User names are 3 to 64 of [a-z0-9_-]. Passwords are MinPassword (15) to
// MaxPassword (128) characters, per OWASP ASVS 5.0 V6.2.1's recommended
// minimum, and are stored as argon2id hashes (golang.org/x/crypto/argon2)
// in SQLite (see Users). Sign-up necessarily tells whether a name is taken.
//
// # A log-in flood
//
// Each argon2id hash takes 19 MiB while it runs. At most
// UsersOptions.MaxHashes run at once (default: the CPUs Go uses, at most
// 4); more sign-ups and log-ins wait for a slot, up to HashWait, then get
// 503. Before any hash, failed log-ins are throttled per account name and
// per client address (Throttle: free failures, then a delay that doubles
// with each failure; an attempt inside the delay gets 429 with
// Retry-After, the right password included). Unknown and known names are
// throttled alike. The throttles' memory is bounded (10,000 keys each,
// least recently failed forgotten first). Signed-in requests never hash, so
// they are served meanwhile.
//
// # How a session ended
//
// A page shown to nobody says why, when the browser's session cookie
// stopped working: logged out, revoked (by the administrator, or by the user
// from another session), expired, or a cookie that no longer verifies. The
// session manager tells the request why it did not honour its cookie
// (Session.BadCookie); the stores mostly cannot tell
// a revoked session from an expired one, so the app keeps a bounded ledger
// of the sessions it served and when: one gone before its idle deadline was
// revoked, one gone after it expired, one the app never served (another
// node, a restart, a forged cookie) no longer verifies. When the dead
// cookie arrives on a request that redirects, the reason rides along in a
// one-minute NoticeCookie holding one word.
//
// # Admin
//
// /admin belongs to one account: Options.Admin, or else the account signed
// up first. Signed in as anyone else it answers 403; signed in as nobody it
// sends the browser to log in. It lists every active session (this
// browser's marked) and revokes one session (by fingerprint), every session
// of one user, or every session; the last two ask for confirmation first.
//
// # Pages
//
// The pages use one stylesheet of their own, embedded and served at
// /static/style.css (no framework, nothing from another origin, so they
// work offline; the CSP allows no other style and no script). Every form
// control has a label; errors are role="alert" and notices aria-live. At
// phone width the session tables become one card per session. Pages that
// list sessions mark this browser's, and mark device-bound sessions when
// Options.DeviceBound says which are.
package demo
