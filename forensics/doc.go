// Package forensics reads cordon's request logs (see logschema.md) and finds
// every session that went to the wrong person, so that exactly those
// sessions can be revoked.
//
// Scan streams any number of sources, plain or gzip-compressed: one reader
// goroutine per source cuts the input into chunks at line ends, a pool of
// workers parses chunks in parallel with a hand-written JSON scanner (no
// reflection; strings share the chunk's memory), and the batches of each
// source come back in order. A k-way merge across sources and a heap put
// the lines in time order within Config.Skew; lines further out of order
// are still scanned and counted as late. The ten rules (see Rules) keep
// per-session, per-device and per-process state only as long as their
// windows need it (Config.SessionTTL).
//
// Findings are grouped per rule and session; a Report writes them as text,
// JSON, an HTML page with an SVG timeline per finding, or the list of
// session fingerprints to revoke. Session tokens never appear: logs carry
// only fingerprints and so do reports.
package forensics
