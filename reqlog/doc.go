// Package reqlog writes cordon's request log: one JSON line per request in
// the shared log schema, the forensic record from which `cordon scan` proves
// which sessions went to whom.
//
// The middleware puts a *Record in each request's context; the session
// manager, the egress guard and handlers annotate it (session in and out,
// the principal viewed, events), and the line is written when the response
// has been sent or the request aborted.
package reqlog
