// Package lab models the 2021 session mix-up in Go and measures cordon's
// defences against it.
//
// The vulnerable composition is real code: a Unicorn-like Worker that
// reuses one request Env per worker and clears it between requests; a
// Controller per request that authenticates lazily from the env it was given
// and writes the session cookie into the CookieJar living in that env; a
// Reporter whose context holds lazy callbacks and whose reports copy the
// current context; a background Refresher that reports its failures through
// it; and cordon's store.Store as the authentication system.
//
// Replay drives it through the post-mortem's eight steps with Sched, a
// deterministic cooperative scheduler that lets one goroutine at a time run
// to its next yield point, over HTTP on a loopback listener, and reads the
// outcome from request #3's response. Stress runs seeded random
// interleavings, RunMatrix both for every combination of Mitigations, and
// Serve and Attack do the same live, at full concurrency.
//
// The hardened side uses cordon's own packages: session (sealed handles and
// the egress guard) and store/memstore. Every mitigation is a different code
// path in the composition; none is a flag that a result is read from.
package lab
