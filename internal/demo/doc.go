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
// session middleware, cross-origin protection (net/http's
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
// session store is down. A wrong password, an unknown user and a malformed
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
// in SQLite (see Users). Sign-up necessarily tells whether a name is taken;
// the demo has no rate limiting, which a real deployment puts in front of
// /login and /api/login.
//
// # Admin
//
// /admin, behind HTTP basic authentication (user Options.AdminUser,
// password Options.AdminPassword, both compared in constant time), lists
// every active session and revokes one session (by fingerprint), every
// session of one user, or every session.
package demo
