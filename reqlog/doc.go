// Package reqlog writes cordon's request log: one JSON line per request in
// the shared log schema, the forensic record from which `cordon scan` proves
// which sessions went to whom.
//
// The middleware puts a *Record in each request's context; the session
// manager, the egress guard and handlers annotate it (session in and out,
// the principal viewed, events), and the line is written when the response
// has been sent or the request aborted.
//
// # Wiring
//
//	w, err := reqlog.Open("requests.log", reqlog.WriterOptions{}) // "-" for stdout
//	...
//	defer w.Close() // after the server has shut down: writes out every line
//	opt := reqlog.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
//	handler = reqlog.Middleware(w, opt)(sessionMiddleware(app))
//
// Put it outermost, so that its line covers everything below it and its
// Record is in the context before the session layer runs. Other components
// that must agree on the client address (the session manager's "last IP",
// the proxy) call the same Options' ClientIP.
//
// # Fields
//
//   - ts is the arrival time (UTC, microseconds) and dur_ms the time until the
//     handler returned, from Options.Now.
//   - req is 128 bits from crypto/rand in hex.
//   - seq counts the requests of the process from 1 in arrival order. The
//     counter lives in the Writer (NextSeq), one atomic add per request: a
//     process must log through one Writer for seq to mean "the process's
//     n-th request".
//   - ip is Options.ClientIP: the peer address unless the peer is a trusted
//     proxy (see ClientIP for exactly what is believed).
//   - ua is the User-Agent, invalid UTF-8 replaced by U+FFFD, cut to 256
//     bytes at a character boundary.
//   - path is r.URL.Path: the query string never reaches the log.
//   - status is the final status sent. Informational 1xx responses (103 Early
//     Hints, 100 Continue) are not the final status; 101 is. A handler that
//     writes without WriteHeader sent 200, as does one that returns without
//     writing. It is 0 when nothing was sent: the client went away (the
//     server cancelled its request context; a deadline set by an outer
//     middleware does not count) before the status was written, or the
//     handler panicked before its header left net/http's buffer (no Flush,
//     at most 2 KiB of body). A hijacked connection logs the status written
//     before Hijack if any, else 101 when the request asked for an upgrade,
//     else 0 (what the handler wrote on the raw connection is unknown).
//   - The session fields come from the Record. Calls on the Record after the
//     line is written are ignored, so a goroutine that outlives its request
//     cannot change what was logged.
//
// # Flush and fsync policy
//
// Lines are encoded by hand (AppendJSON; always valid JSON and UTF-8, for
// any User-Agent or path) and appended to an in-memory buffer; a request
// never waits on a system call for its log line. One goroutine per Writer
// writes the buffer out every 100 ms (WriterOptions.FlushInterval) and as
// soon as 64 KiB are waiting (FlushSize); another fsyncs the file once a
// second (SyncInterval) if anything was written since the last fsync, so a
// slow fsync never holds up writing. Close writes
// out every line accepted before it, fsyncs and closes the file. So a
// process crash loses at most the last 100 ms of lines, a power loss at most
// the last second, and a clean shutdown nothing.
//
// A failed write is retried on the next flush from the first unwritten byte,
// so lines are not torn. Failures are counted (Writer.Stats) and reported
// through the slog logger at most once a second. When the output stalls or
// keeps failing (a full disk) the buffer is bounded (MaxPending, 8 MiB): a
// line waits at most MaxWait (100 ms) for room, then is dropped and counted,
// and until a write succeeds again lines that find no room are dropped at
// once: a broken disk delays a few requests by MaxWait and blocks none.
// Open creates the file with mode 0600 and appends (O_APPEND), so a
// rotated-away or shared file is never overwritten.
package reqlog
