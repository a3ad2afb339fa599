package forensics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/maphash"
	"math"
	"net/netip"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// Finding is one thing the scan found: a rule that fired for a session (or
// a request), with every request that fired it (up to Config.MaxRequests).
type Finding struct {
	Rule       string
	Severity   Severity
	Sessions   []string // fingerprints
	Principals []string
	Requests   []string // request ids
	First      time.Time
	Last       time.Time
	Count      int // how many requests fired the rule
	Evidence   string

	timelines []*timeline
	key       string // in scanner.finds
	facts
}

// facts are what the rule that fired knew about the leak, in the terms a
// responder asks about: whose session, who got it, where, and what happened.
type facts struct {
	owner     string // principal whose session it was
	recipient string // principal who was given or used it ("" unknown or anonymous)
	host      string
	pid       int64
	seq       int64
	client    string // label of the client that got the session (Use.Client)
	story     string // one sentence in plain words
}

// Timeline returns, per session of the finding, who used the session, from
// where and when, as far as the scan kept it.
func (f *Finding) Timeline() []SessionTimeline {
	out := make([]SessionTimeline, 0, len(f.timelines))
	for _, t := range f.timelines {
		st := SessionTimeline{Session: t.fp, Spans: append([]Span(nil), t.spans...), Uses: append([]Use(nil), t.uses...), Dropped: t.dropped}
		out = append(out, st)
	}
	return out
}

// SessionTimeline is the use history of one session.
type SessionTimeline struct {
	Session string
	// Spans summarize use before the first finding, per network.
	Spans []Span
	// Uses are single requests from the first finding on.
	Uses []Use
	// Dropped counts uses beyond the kept maximum.
	Dropped int
}

// Span is a period in which a session was used from one network.
type Span struct {
	Network    string
	Client     string
	First      time.Time
	Last       time.Time
	Count      int
	Principals string
}

// Use is one request that carried a session.
type Use struct {
	TS        time.Time
	IP        string
	Client    string
	Principal string
	Req       string
}

// Malformed locates a line the scan could not read.
type Malformed struct {
	File   string `json:"file"`
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
}

// Stats summarizes a scan.
type Stats struct {
	Files      int         `json:"files"`       // inputs given
	InputBytes int64       `json:"input_bytes"` // bytes read (compressed for gzip)
	Bytes      int64       `json:"bytes"`       // bytes of log text
	Lines      int64       `json:"lines"`
	Requests   int64       `json:"requests"`  // lines read as requests
	Malformed  int64       `json:"malformed"` // lines skipped
	FirstBad   []Malformed `json:"malformed_first,omitempty"`
	// Late counts lines further out of time order than Config.Skew; they
	// were scanned after lines that came later.
	Late int64 `json:"late"`
	// Errors are read errors that ended an input (a truncated gzip).
	Errors   []string `json:"errors,omitempty"`
	Sessions int64    `json:"sessions"` // distinct sessions seen
	First    string   `json:"first,omitempty"`
	Last     string   `json:"last,omitempty"`
	Seconds  float64  `json:"seconds"`
	// ByRule and BySeverity count findings.
	ByRule     map[string]int `json:"by_rule"`
	BySeverity map[string]int `json:"by_severity"`
	// Retracted counts findings withdrawn when a line delivered later than
	// Config.Skew showed them to be none (a late login inside a flip).
	Retracted int64 `json:"retracted,omitempty"`
	// Suppressed counts rule hits below Config.MinSeverity (by default the
	// informational IPv4/IPv6 switches), not listed as findings.
	Suppressed int64 `json:"below_min_severity"`
	// Noise counts, per rule, the hits below Config.MinSeverity, with a
	// few examples: patterns that are normal at scale (one client's
	// network switches), reported as counts rather than findings.
	Noise map[string]*NoiseCount `json:"noise,omitempty"`
	// Benign counts requests that look like a rule's pattern but are not
	// a leak, by what they were (a shared-cache hit served to the very
	// principal the page was produced for).
	Benign map[string]int64 `json:"benign,omitempty"`
}

// NoiseCount is how often one rule fired at one severity below
// Config.MinSeverity. Stats.Noise keys them "rule/severity".
type NoiseCount struct {
	Rule     string   `json:"rule"`
	Severity string   `json:"severity"`
	Count    int64    `json:"count"`
	Examples []string `json:"examples"`
}

// BenignOwnCache names the Stats.Benign count of shared-cache hits served
// to the principal the cached response was produced for.
const BenignOwnCache = "cache-hit-own-principal"

const noiseExamples = 3

// Report is the result of a scan.
type Report struct {
	Findings []*Finding
	// Incidents group the findings that concern one leak.
	Incidents []*Incident
	Stats     Stats
	// SessionsFile and RevokeSeverity, when set, are shown in the HTML
	// report's revoke command (the -sessions-out file and its severity).
	SessionsFile   string
	RevokeSeverity Severity

	hosts []string // every host seen, for the incident timeline
}

type fpKey [16]byte

type client struct {
	dev    fpKey
	hasDev bool
	ua     uint64
}

type netKey struct {
	hi, lo uint64
}

type netUse struct {
	net   netKey
	v6    bool
	asn   int64
	cl    client
	first int64
	last  int64
	n     int32
}

// label names the network: its IPv4 /24 or IPv6 /64.
func (n *netUse) label() string {
	if n.v6 {
		var b [16]byte
		for i := 0; i < 8; i++ {
			b[i] = byte(n.net.hi >> (56 - 8*i))
		}
		return netip.PrefixFrom(netip.AddrFrom16(b), 64).String()
	}
	h := n.net.hi
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(h >> 16), byte(h >> 8), byte(h), 0}), 24).String()
}

// who names the client that last used the network.
func (n *netUse) who() string {
	if n.cl.hasDev {
		return "dev " + hex.EncodeToString(n.cl.dev[:4]) + "…"
	}
	return fmt.Sprintf("ua#%06x", n.cl.ua>>40)
}

type sessState struct {
	// The fields every use reads come first, with the first two networks
	// inline (nets points into inl until a third network comes): with
	// hundreds of thousands of sessions, each separate object is one more
	// cache miss per line.
	last      int64
	bound     client
	hasBound  bool
	infoDone  bool
	lastNet   int32
	principal sstr
	nets      []netUse
	inl       [2]netUse
	tombKind  string
	tombTS    int64
	watch     *timeline
	name      string // the fingerprint as logged, when it is not 32 hex digits
}

type devState struct {
	cur, prev sstr
	resetTS   int64 // when the device's last login or logout was
	// before holds who the device showed (cur, prev) at that login or
	// logout: within Config.ClockSkew after it, their pages may be from
	// before it.
	before [2]sstr
	curSid string
	curReq string
	curTS  int64 // when cur was first shown
	last   int64
	pend   *pendingFlip
	// flips are the last flips reported for the device, each from B
	// shown to A back: a login delivered late may still turn out to fall
	// inside them.
	flips []reportedFlip
}

type reportedFlip struct {
	f        *Finding
	from, to int64
}

// pendingFlip is an A, B, A seen on one device, reported once no login or
// logout of the device turns up within Config.ClockSkew of it: hosts'
// clocks apart can put a login line after the pages it came before.
type pendingFlip struct {
	a, b, sid, breq string
	ts              int64 // when A came back
	from            int64 // when B was first shown
	line            []byte
	src             int
	lineNo          int64
}

type procKey struct {
	host string
	pid  int64
}

// ringEntry is one of a process's recent requests: what rule 2 needs, and
// the line for evidence. The line points into the chunk it was read from
// (b) until that chunk is recycled; then it is copied into own.
type ringEntry struct {
	used          bool
	hasIn, hasOut bool
	seq           int64
	cl            client
	kIn, kOut     fpKey
	line          string
	b             *batch // the chunk line points into; nil once copied
	own           []byte
	src           int
	lineNo        int64
}

// lineBytes returns e's line for parseLine, which only reads it.
func (e *ringEntry) lineBytes() []byte {
	if e.line == "" {
		return nil
	}
	return unsafe.Slice(unsafe.StringData(e.line), len(e.line))
}

type procState struct {
	host string
	pid  int64
	outs int // ring entries that set a cookie
	ring []ringEntry
	pos  int
	last int64
}

type timeline struct {
	fp      string
	spans   []Span
	uses    []Use
	dropped int
}

const maxTimelineUses = 300

type scanner struct {
	cfg       Config
	seed      maphash.Seed
	srcNames  []string
	sess      fpTable[sessState]
	devs      fpTable[devState]
	procs     map[uint64]*procState  // by Record.ph, a hash of host and pid
	bound     map[fpKey]*boundState  // device-bound sessions, by fingerprint (rule 10)
	procsSlow map[procKey]*procState // for the rare hash collision
	finds     map[string]*Finding
	order     []*Finding
	heap      []*cursor
	pipe      *pipeline
	lastTS    int64
	late      bool   // the line being processed came later than Config.Skew allows
	cur       *batch // the chunk of the line being processed
	nextSweep int64
	stats     Stats
	first     int64
	last      int64
	suppress  int64
	noise     map[string]*NoiseCount
	benign    map[string]int64
	byRule    map[string]int
	hosts     map[string]bool
	authPaths []string
}

// Scan reads the sources and runs every rule over their lines in time
// order (within cfg.Skew). It returns an error only when ctx ends; bad
// input is counted and reported in the Stats.
func Scan(ctx context.Context, cfg Config, srcs []Source) (*Report, error) {
	def := DefaultConfig()
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = def.ChunkSize
	}
	if cfg.HandoffWindow <= 0 {
		cfg.HandoffWindow = def.HandoffWindow
	}
	if cfg.MaxRequests <= 0 {
		cfg.MaxRequests = def.MaxRequests
	}
	if cfg.Skew < 0 {
		cfg.Skew = 0
	}
	workers := cfg.Workers
	if workers <= 0 {
		workers = max(1, runtime.GOMAXPROCS(0)-1)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	start := now()
	sc := newScanner(cfg)
	for _, s := range srcs {
		sc.srcNames = append(sc.srcNames, s.Name)
	}
	sc.stats.Files = len(srcs)
	p := startPipeline(ctx, srcs, workers, cfg.ChunkSize, sc.seed)
	sc.pipe = p
	maxTS := make([]int64, len(p.streams))
	started := make([]bool, len(p.streams))
	done := make([]bool, len(p.streams))
	for {
		if err := ctx.Err(); err != nil {
			p.stop()
			return nil, fmt.Errorf("forensics: scan: %w", err)
		}
		// Read from the source that is furthest behind in time, so that
		// files covering the same hours are merged within the skew.
		pick := -1
		for i := range p.streams {
			if done[i] {
				continue
			}
			if !started[i] {
				pick = i
				break
			}
			if pick < 0 || maxTS[i] < maxTS[pick] {
				pick = i
			}
		}
		if pick < 0 {
			break
		}
		s := p.streams[pick]
		f, ok := <-s.futures
		if !ok {
			done[pick] = true
		} else {
			b := <-f
			if !started[pick] {
				started[pick] = true
				maxTS[pick] = math.MinInt64
			}
			sc.absorb(pick, s, b, &maxTS[pick])
		}
		if cfg.Progress != nil {
			cfg.Progress(p.bytesRead.Load())
		}
		wm := int64(math.MaxInt64)
		for i := range p.streams {
			if done[i] {
				continue
			}
			if !started[i] {
				wm = math.MinInt64
				break
			}
			wm = min(wm, maxTS[i])
		}
		if wm != math.MaxInt64 && wm != math.MinInt64 {
			sc.drain(wm - int64(cfg.Skew))
		}
	}
	sc.drain(math.MaxInt64)
	sc.devs.all(func(_ fpKey, d *devState) {
		if d.pend != nil {
			sc.settleFlip(d)
		}
	})
	p.stop()
	sc.stats.InputBytes = p.bytesRead.Load()
	sc.stats.Seconds = now().Sub(start).Seconds()
	return sc.report(), nil
}

// newScanner returns a scanner with empty state.
func newScanner(cfg Config) *scanner {
	sc := &scanner{
		cfg:       cfg,
		seed:      maphash.MakeSeed(),
		procs:     make(map[uint64]*procState),
		bound:     make(map[fpKey]*boundState),
		procsSlow: make(map[procKey]*procState),
		finds:     make(map[string]*Finding),
		first:     math.MaxInt64,
		last:      math.MinInt64,
		lastTS:    math.MinInt64,
		nextSweep: math.MinInt64,
		byRule:    make(map[string]int),
		noise:     make(map[string]*NoiseCount),
		benign:    make(map[string]int64),
		hosts:     make(map[string]bool),
	}
	for _, p := range cfg.AuthPaths {
		if p = strings.TrimSpace(p); p != "" {
			sc.authPaths = append(sc.authPaths, p)
		}
	}
	return sc
}

func (sc *scanner) absorb(src int, s *stream, b *batch, maxTS *int64) {
	st := &sc.stats
	st.Lines += b.lines
	st.Bytes += b.bytes
	st.Requests += int64(len(b.recs))
	st.Malformed += int64(len(b.bad))
	for _, bl := range b.bad {
		if len(st.FirstBad) < sc.cfg.MaxMalformed {
			st.FirstBad = append(st.FirstBad, Malformed{File: s.name, Line: s.lineOff + bl.line, Reason: bl.reason})
		}
	}
	if b.err != nil {
		st.Errors = append(st.Errors, fmt.Sprintf("%s: after line %d: %v", s.name, s.lineOff+b.lines, b.err))
	}
	for i := range b.recs {
		r := &b.recs[i]
		r.Src = src
		r.LineNo += s.lineOff
		if r.TS > *maxTS {
			*maxTS = r.TS
		}
	}
	if len(b.order) > 0 {
		sc.push(&cursor{b: b})
	}
	s.lineOff += b.lines
}

// cursor walks one batch in time order. The merge heap holds one cursor
// per batch not yet fully scanned, ordered by the record each points at:
// batches are sorted by the parsing workers, so the merge costs
// O(log batches) per record rather than O(log records).
type cursor struct {
	b *batch
	i int
}

func (c *cursor) head() *Record { return c.b.order[c.i] }

// recLess orders records by (TS, Src, LineNo).
func recLess(a, b *Record) bool {
	if a.TS != b.TS {
		return a.TS < b.TS
	}
	if a.Src != b.Src {
		return a.Src < b.Src
	}
	return a.LineNo < b.LineNo
}

func (sc *scanner) push(c *cursor) {
	h := append(sc.heap, c)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !recLess(h[i].head(), h[p].head()) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
	sc.heap = h
}

func (sc *scanner) down(i int) {
	h := sc.heap
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && recLess(h[r].head(), h[l].head()) {
			m = r
		}
		if !recLess(h[m].head(), h[i].head()) {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

func (sc *scanner) drain(upTo int64) {
	for len(sc.heap) > 0 {
		c := sc.heap[0]
		r := c.head()
		if r.TS > upTo {
			return
		}
		c.i++
		exhausted := c.i == len(c.b.order)
		if exhausted {
			n := len(sc.heap) - 1
			sc.heap[0] = sc.heap[n]
			sc.heap[n] = nil
			sc.heap = sc.heap[:n]
		}
		if len(sc.heap) > 0 {
			sc.down(0)
		}
		sc.late = r.TS < sc.lastTS
		if sc.late {
			sc.stats.Late++
		} else {
			sc.lastTS = r.TS
		}
		sc.cur = c.b
		sc.process(r)
		sc.cur = nil
		if exhausted && sc.pipe != nil {
			sc.release(c.b)
			sc.pipe.recycle(c.b)
		}
	}
}

// sameClient reports whether two uses come from one client: by device
// fingerprint when both have one, else by User-Agent.
func sameClient(a, b client) bool {
	if a.hasDev && b.hasDev {
		return a.dev == b.dev
	}
	return a.ua == b.ua
}

// makeKey turns a fingerprint into a map key: its 16 bytes when it is 32
// hex digits (ok), else the first 16 bytes of its SHA-256.
func makeKey(s string) (k fpKey, ok bool) {
	if len(s) == 32 {
		ok = true
		for i := 0; i < 16; i++ {
			h, l := unhex(s[2*i]), unhex(s[2*i+1])
			if h > 15 || l > 15 {
				ok = false
				break
			}
			k[i] = h<<4 | l
		}
		if ok {
			return k, true
		}
	}
	sum := sha256.Sum256([]byte(s))
	copy(k[:], sum[:16])
	k[0] ^= 0x80 // keep apart from hex keys in the unlikely case of a clash
	return k, false
}

// hexVal maps a byte to its value as a lower-case hex digit, 255 for
// anything else (upper-case hex is not a fingerprint per the schema): a
// lookup, because a branch per digit of random hex mispredicts half the time.
const hexVal = "" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\x0a\x0b\x0c\x0d\x0e\x0f\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"

func unhex(c byte) byte { return hexVal[c] }

func clone(s string) string { return strings.Clone(s) }

func (sc *scanner) tsString(ts int64) string {
	return time.Unix(0, ts).UTC().Format(time.RFC3339Nano)
}

func (sc *scanner) where(r *Record) string {
	name := "?"
	if r.Src >= 0 && r.Src < len(sc.srcNames) {
		name = sc.srcNames[r.Src]
	}
	return name + ":" + strconv.FormatInt(r.LineNo, 10)
}

// find records that rule fired for request r, keyed by key (the session,
// or the request when there is none). The first request's line becomes the
// evidence. It returns the finding, and whether this request created it
// (then the caller fills in its facts); nil below Config.MinSeverity, where
// the hit is only counted.
func (sc *scanner) find(rule string, sev Severity, key string, sessions, principals []string, r *Record, why func() string) (*Finding, bool) {
	if sev < sc.cfg.MinSeverity {
		sc.suppress++
		k := rule + "/" + sev.String()
		n := sc.noise[k]
		if n == nil {
			n = &NoiseCount{Rule: rule, Severity: sev.String()}
			sc.noise[k] = n
		}
		n.Count++
		if len(n.Examples) < noiseExamples {
			n.Examples = append(n.Examples, why()+"\n"+sc.where(r)+": "+clone(r.Line))
		}
		return nil, false
	}
	k := rule + "|" + key
	f := sc.finds[k]
	created := f == nil
	if f == nil {
		f = &Finding{Rule: rule, Severity: sev, First: time.Unix(0, r.TS).UTC(), Last: time.Unix(0, r.TS).UTC()}
		for _, s := range sessions {
			if s != "" {
				f.Sessions = append(f.Sessions, clone(s))
			}
		}
		f.Evidence = why() + "\n" + sc.where(r) + ": " + clone(r.Line)
		sc.finds[k] = f
		f.key = k
		sc.order = append(sc.order, f)
		sc.byRule[rule]++
		for _, s := range f.Sessions {
			f.timelines = append(f.timelines, sc.watch(s))
		}
	}
	if sev > f.Severity {
		f.Severity = sev
	}
	f.Count++
	t := time.Unix(0, r.TS).UTC()
	if t.Before(f.First) {
		f.First = t
	}
	if t.After(f.Last) {
		f.Last = t
	}
	if len(f.Requests) < sc.cfg.MaxRequests && !contains(f.Requests, r.Req) {
		f.Requests = append(f.Requests, clone(r.Req))
	}
	for _, p := range principals {
		if p != "" && !contains(f.Principals, p) {
			f.Principals = append(f.Principals, clone(p))
		}
	}
	return f, created
}

// setFacts fills in a new finding's facts from the request that created it.
func (f *Finding) setFacts(owner, recipient string, r *Record, story string) {
	f.owner, f.recipient = clone(owner), clone(recipient)
	f.host, f.pid, f.seq = clone(r.Host), r.PID, r.Seq
	f.client = clientLabel(r)
	f.story = story
}

// hms formats a time of the log for a sentence.
func hms(ts int64) string { return time.Unix(0, ts).UTC().Format("15:04:05") }

func orAnon(p string) string {
	if p == "" {
		return "an anonymous visitor"
	}
	return p
}

// short abbreviates a fingerprint for a sentence.
func short(fp string) string { return clip(fp, 8) }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// watch starts keeping every use of session fp for the timeline.
func (sc *scanner) watch(fp string) *timeline {
	k, _ := makeKey(fp)
	h := keyHash(sc.seed, k)
	st := sc.sess.get(k, h)
	if st == nil {
		st = sc.newSess(k, h, fp, 0)
	}
	if st.watch == nil {
		st.watch = &timeline{fp: fp}
		for _, n := range st.nets {
			st.watch.spans = append(st.watch.spans, Span{Network: n.label(), Client: n.who(), First: time.Unix(0, n.first).UTC(), Last: time.Unix(0, n.last).UTC(), Count: int(n.n), Principals: st.principal.String()})
		}
	}
	return st.watch
}

func (sc *scanner) newSess(k fpKey, h uint64, fp string, ts int64) *sessState {
	sc.stats.Sessions++
	st := sc.sess.add(k, h)
	st.last, st.lastNet = ts, -1
	st.nets = st.inl[:0]
	if _, ok := makeKey(fp); !ok {
		st.name = clone(fp)
	}
	return st
}

// endEvent returns the constant for an end event, so that state never
// points into a chunk.
func endEvent(ev string) string {
	switch ev {
	case "logout":
		return "logout"
	case "revoke":
		return "revoke"
	}
	return "expire"
}

func isEnd(ev string) bool { return ev == "logout" || ev == "revoke" || ev == "expire" }

func (sc *scanner) process(r *Record) {
	if r.TS < sc.first {
		sc.first = r.TS
	}
	if r.TS > sc.last {
		sc.last = r.TS
	}
	if r.TS >= sc.nextSweep {
		sc.sweep(r.TS)
	}
	cl := r.cl

	// Rule 9: a shared cache answered with someone's cookie or page. A hit
	// served to the very principal the response was produced for (a CDN or
	// browser cache keyed by user) leaks nothing: counted, not a finding.
	if r.Cache == "hit" && (r.SidOut != "" || r.UidView != "") && r.UidIn != "" &&
		(r.UidView == "" || r.UidView == r.UidIn) && (r.SidOut == "" || r.UidOut == r.UidIn) {
		sc.benign[BenignOwnCache]++
	} else if r.Cache == "hit" && (r.SidOut != "" || r.UidView != "") {
		sev := High
		if r.SidOut != "" {
			sev = Critical
		}
		key := r.SidOut
		if key == "" {
			key = "req:" + r.Req
		}
		f, created := sc.find(RuleCacheLeak, sev, key, []string{r.SidOut}, []string{r.UidOut, r.UidView}, r, func() string {
			if r.SidOut != "" {
				return fmt.Sprintf("a shared-cache hit set session %s (of %q) for %s %s", r.SidOut, r.UidOut, r.Method, r.Path)
			}
			return fmt.Sprintf("a shared-cache hit served a page produced for %q at %s %s", r.UidView, r.Method, r.Path)
		})
		if created {
			owner := r.UidOut
			if owner == "" {
				owner = r.UidView
			}
			story := fmt.Sprintf("A shared cache in front of %s served a response produced for %s to a request of %s at %s (%s %s)", r.Host, orAnon(r.UidView), orAnon(r.UidIn), hms(r.TS), r.Method, clip(r.Path, 60))
			if r.SidOut != "" {
				story = fmt.Sprintf("A shared cache in front of %s served %s's response, with the Set-Cookie of session %s, to a request of %s at %s (%s %s)", r.Host, orAnon(owner), short(r.SidOut), orAnon(r.UidIn), hms(r.TS), r.Method, clip(r.Path, 60))
			}
			f.setFacts(owner, r.UidIn, r, story)
		}
	}

	// Rule 1: the cookie set belongs to someone other than the viewer.
	if r.SidOut != "" && r.UidOut != "" && r.UidOut != r.UidView && r.Event != "login" && !sc.isAuthPath(r.Path) {
		f, created := sc.find(RuleCookieMismatch, Critical, r.SidOut, []string{r.SidOut}, []string{r.UidOut, r.UidView}, r, func() string {
			view := r.UidView
			if view == "" {
				view = "an anonymous visitor"
			}
			return fmt.Sprintf("response for %s set session %s of %q (%s %s on %s pid %d)", view, r.SidOut, r.UidOut, r.Method, r.Path, r.Host, r.PID)
		})
		if created {
			f.setFacts(r.UidOut, r.UidView, r, fmt.Sprintf("%s's session %s was set by %s pid %d at %s in the response to a request of %s's client (%s, %s %s)",
				r.UidOut, short(r.SidOut), r.Host, r.PID, hms(r.TS), orAnon(r.UidView), r.IP, r.Method, clip(r.Path, 60)))
		}
	}

	// Rules 2 and 8 look at the same process's recent requests.
	sc.process2(r)

	// Rule 10 before the session's other rules, so that its finding, the
	// more specific account, leads the incident.
	if strings.HasPrefix(r.Event, "dbsc_") || r.Event == "renew" {
		sc.dbsc(r)
	}

	if r.SidIn != "" {
		sc.useSession(r, r.SidIn, r.kIn, r.hIn, true, cl)
	}
	if r.SidOut != "" && r.SidOut != r.SidIn {
		sc.useSession(r, r.SidOut, r.kOut, r.hOut, false, cl)
	}
	// Rule 6 reads the order of one device's pages: a line delivered
	// later than the skew (a stalled shipper, a redelivered batch) is out
	// of that order and says nothing about it.
	if cl.hasDev && !sc.late {
		sc.flip(r, cl)
	} else if cl.hasDev && (r.Event == "login" || r.Event == "logout") {
		sc.lateReset(r)
	}
}

// lateReset takes a login or logout delivered later than the skew into
// account after the fact: an A, B, A it falls inside (within
// Config.ClockSkew) was that login, not a flip.
func (sc *scanner) lateReset(r *Record) {
	d := sc.devs.get(r.cl.dev, r.hDev)
	if d == nil {
		return
	}
	tol := int64(sc.cfg.ClockSkew)
	if p := d.pend; p != nil && r.TS >= p.from-tol && r.TS <= p.ts+tol {
		d.pend = nil
	}
	kept := d.flips[:0]
	for _, fl := range d.flips {
		if r.TS >= fl.from-tol && r.TS <= fl.to+tol && fl.f.Count == 1 {
			sc.retract(fl.f)
			continue
		}
		kept = append(kept, fl)
	}
	d.flips = kept
}

// retract removes a finding that a later line showed to be none.
func (sc *scanner) retract(f *Finding) {
	if sc.finds[f.key] != f {
		return
	}
	delete(sc.finds, f.key)
	for i, g := range sc.order {
		if g == f {
			sc.order = append(sc.order[:i], sc.order[i+1:]...)
			break
		}
	}
	sc.byRule[f.Rule]--
	sc.stats.Retracted++
}

func (sc *scanner) isAuthPath(p string) bool {
	for _, a := range sc.authPaths {
		if strings.HasSuffix(p, a) {
			return true
		}
	}
	return false
}

func (sc *scanner) process2(r *Record) {
	p := sc.procs[r.ph]
	if p == nil {
		p = &procState{host: clone(r.Host), pid: r.PID, ring: make([]ringEntry, sc.cfg.HandoffWindow)}
		sc.procs[r.ph] = p
		if len(sc.hosts) < 1024 {
			sc.hosts[p.host] = true
		}
	} else if p.pid != r.PID || p.host != r.Host {
		pk := procKey{r.Host, r.PID}
		if p = sc.procsSlow[pk]; p == nil {
			pk.host = clone(pk.host)
			p = &procState{host: pk.host, pid: r.PID, ring: make([]ringEntry, sc.cfg.HandoffWindow)}
			sc.procsSlow[pk] = p
		}
	}
	p.last = r.TS
	n := int64(sc.cfg.HandoffWindow)
	// Rule 2 needs a cookie set on one side: most requests set none, so the
	// ring is walked only when this one does or one in the ring did.
	for i := range p.ring {
		if r.SidOut == "" && p.outs == 0 {
			break
		}
		e := &p.ring[i]
		if !e.used || e.seq == r.Seq {
			continue
		}
		d := r.Seq - e.seq
		if d > n || d < -n {
			continue
		}
		if r.SidOut == "" && !e.hasOut {
			continue
		}
		rSets := r.SidOut != "" && ((e.hasIn && e.kIn == r.kOut) || (e.hasOut && e.kOut == r.kOut))
		eSets := e.hasOut && ((r.SidIn != "" && r.kIn == e.kOut) || (r.SidOut != "" && r.kOut == e.kOut))
		if !rSets && !eSets || sameClient(e.cl, r.cl) {
			continue
		}
		// A hit: read the earlier request back from its copy.
		var er Record
		if parseLine(e.lineBytes(), &er) != nil {
			continue
		}
		er.Src, er.LineNo = e.src, e.lineNo
		setter, other, shared := r, &er, r.SidOut
		if !rSets {
			setter, other, shared = &er, r, er.SidOut
		}
		f, created := sc.find(RuleProcessHandoff, Critical, shared, []string{shared}, []string{setter.UidOut, setter.UidView, other.UidIn, other.UidOut}, r, func() string {
			return fmt.Sprintf("%s pid %d set session %s for the client of request %s (seq %d, %s) though request %s (seq %d, %s) of another client had just carried it\n%s: %s",
				setter.Host, setter.PID, shared, setter.Req, setter.Seq, setter.IP, other.Req, other.Seq, other.IP, sc.where(&er), er.Line)
		})
		if created {
			owner := setter.UidOut
			if owner == "" {
				owner = other.UidIn
			}
			recipient := ""
			for _, p := range []string{setter.UidView, setter.UidIn, other.UidIn, other.UidOut} {
				if p != "" && p != owner {
					recipient = p
					break
				}
			}
			d := setter.Seq - other.Seq
			if d < 0 {
				d = -d
			}
			f.setFacts(owner, recipient, setter, fmt.Sprintf("%s pid %d handed %s's session %s to the client of %s (%s) at %s, %d request(s) of that process apart from a request of %s's client that carried it",
				setter.Host, setter.PID, orAnon(owner), short(shared), orAnon(recipient), setter.IP, hms(setter.TS), d, orAnon(owner)))
		}
		if f := sc.finds[RuleProcessHandoff+"|"+shared]; f != nil && len(f.Requests) < sc.cfg.MaxRequests && !contains(f.Requests, er.Req) {
			f.Requests = append(f.Requests, clone(er.Req))
		}
	}

	// Rule 8: events cordon records when it stopped something.
	if r.Event == "guard_block" || r.Event == "stale_use" {
		key := r.SidIn
		if key == "" {
			key = r.SidOut
		}
		if key == "" {
			key = "req:" + r.Req
		}
		key = r.Event + "|" + key
		f, created := sc.find(RuleGuardEvent, Medium, key, []string{r.SidIn, r.SidOut}, []string{r.UidIn, r.UidOut, r.UidView}, r, func() string {
			s := fmt.Sprintf("%s (%s) on %s pid %d seq %d for %s %s, client %s dev %q; session in %q of %q, viewer %q",
				r.Event, r.Detail, r.Host, r.PID, r.Seq, r.Method, r.Path, r.IP, r.Dev, r.SidIn, r.UidIn, r.UidView)
			var prev *ringEntry
			for i := range p.ring {
				if e := &p.ring[i]; e.used && e.seq < r.Seq && (prev == nil || e.seq > prev.seq) {
					prev = e
				}
			}
			var pr Record
			if prev != nil && parseLine(prev.lineBytes(), &pr) == nil {
				s += fmt.Sprintf("; previous request on this process: %s seq %d from %s, session %q of %q", pr.Req, pr.Seq, pr.IP, pr.SidIn, pr.UidIn)
			}
			return s
		})
		if created {
			owner := r.UidIn
			if owner == "" {
				owner = r.UidOut
			}
			recipient := r.UidView
			if recipient == owner {
				recipient = ""
			}
			sid := r.SidIn
			if sid == "" {
				sid = r.SidOut
			}
			f.setFacts(owner, recipient, r, fmt.Sprintf("Cordon recorded %s (%s) on %s pid %d at %s for %s's session %s (%s %s from %s): the leak was stopped there, the session is suspect",
				r.Event, r.Detail, r.Host, r.PID, hms(r.TS), orAnon(owner), short(sid), r.Method, clip(r.Path, 60), r.IP))
		}
	}

	// Keep what rule 2 needs; the line stays in its chunk until the chunk
	// is recycled (release), so most lines are never copied.
	e := &p.ring[p.pos]
	if e.hasOut {
		p.outs--
	}
	if r.SidOut != "" {
		p.outs++
	}
	e.used, e.seq, e.cl, e.kIn, e.kOut = true, r.Seq, r.cl, r.kIn, r.kOut
	e.hasIn, e.hasOut = r.SidIn != "", r.SidOut != ""
	e.line, e.b = r.Line, sc.cur
	if sc.cur == nil {
		e.own = append(e.own[:0], r.Line...)
		e.line = bstr(e.own)
	}
	e.src, e.lineNo = r.Src, r.LineNo
	p.pos = (p.pos + 1) % len(p.ring)
}

func (sc *scanner) useSession(r *Record, fp string, k fpKey, h uint64, in bool, cl client) {
	st := sc.sess.get(k, h)
	if st == nil {
		st = sc.newSess(k, h, fp, r.TS)
	}
	if !st.hasBound {
		st.bound, st.hasBound = cl, true
	}
	st.last = r.TS
	uid := r.UidOut
	if in {
		uid = r.UidIn
	}

	// Rule 4: one session, two principals.
	if uid != "" {
		if st.principal.empty() {
			st.principal.set(uid)
		} else if !st.principal.eq(uid) {
			was := st.principal.String()
			f, created := sc.find(RulePrincipalDrift, Critical, fp, []string{fp}, []string{was, uid}, r, func() string {
				return fmt.Sprintf("session %s belonged to %q and now to %q", fp, was, uid)
			})
			if created {
				f.setFacts(was, uid, r, fmt.Sprintf("Session %s, first seen as %s's, came back as %s's on %s pid %d at %s (%s %s from %s)", short(fp), was, uid, r.Host, r.PID, hms(r.TS), r.Method, clip(r.Path, 60), r.IP))
			}
		}
	}

	// Rule 3: the session reaches a client it was not bound to.
	if !sameClient(st.bound, cl) {
		if r.Event == "login" {
			st.bound = cl
		} else {
			dir := "arrived from"
			if !in {
				dir = "was sent to"
			}
			f, created := sc.find(RuleSecondClient, High, fp, []string{fp}, []string{uid, r.UidView}, r, func() string {
				return fmt.Sprintf("session %s %s a second client (%s, dev %q, ua %q) without a login there", fp, dir, r.IP, r.Dev, clip(r.UA, 60))
			})
			if created {
				owner := st.principal.String()
				if owner == "" {
					owner = uid
				}
				recipient := r.UidView
				if recipient == owner {
					recipient = ""
				}
				f.setFacts(owner, recipient, r, fmt.Sprintf("%s's session %s %s another client (%s, %s) at %s without a login there", orAnon(owner), short(fp), dir, r.IP, clip(r.UA, 40), hms(r.TS)))
			}
		}
	}

	// Rule 7: use after the session ended.
	if in && st.tombKind != "" && r.UidIn != "" && !isEnd(r.Event) && r.Event != "bad_cookie" && r.TS > st.tombTS+int64(sc.cfg.Grace) {
		kind, at := st.tombKind, st.tombTS
		f, created := sc.find(RuleUseAfterEnd, High, fp, []string{fp}, []string{r.UidIn}, r, func() string {
			return fmt.Sprintf("session %s of %q authenticated %s after its %s at %s", fp, r.UidIn, time.Duration(r.TS-at).Round(time.Millisecond), kind, sc.tsString(at))
		})
		if created {
			f.setFacts(r.UidIn, "", r, fmt.Sprintf("%s's session %s ended (%s) at %s but authenticated again at %s on %s, %s later, from %s", r.UidIn, short(fp), kind, hms(at), hms(r.TS), r.Host, time.Duration(r.TS-at).Round(time.Second), r.IP))
		}
	}
	if isEnd(r.Event) && (in || r.SidIn == "") && st.tombKind == "" {
		st.tombKind, st.tombTS = endEvent(r.Event), r.TS
	}

	sc.networks(r, fp, st, cl)

	if st.watch != nil {
		w := st.watch
		if len(w.uses) < maxTimelineUses {
			w.uses = append(w.uses, Use{TS: time.Unix(0, r.TS).UTC(), IP: clone(r.IP), Client: clientLabel(r), Principal: clone(uid), Req: clone(r.Req)})
		} else {
			w.dropped++
		}
	}
}

func clientLabel(r *Record) string {
	if r.Dev != "" {
		return "dev " + clip(r.Dev, 8)
	}
	if r.UA == "" {
		return "no ua"
	}
	return "ua " + clip(r.UA, 24)
}

// network returns the network of ip: its IPv4 /24 or IPv6 /64.
func network(ip string) (netKey, bool, bool) {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return netKey{}, false, false
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return netKey{hi: 4<<32 | uint64(b[0])<<16 | uint64(b[1])<<8 | uint64(b[2])}, false, true
	}
	b := a.As16()
	var hi uint64
	for i := 0; i < 8; i++ {
		hi = hi<<8 | uint64(b[i])
	}
	return netKey{hi: hi, lo: 6}, true, true
}

func netLabel(ip string, v6 bool) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	bits := 24
	if v6 {
		bits = 64
	}
	p, err := a.Unmap().Prefix(bits)
	if err != nil {
		return ip
	}
	return p.String()
}

func (sc *scanner) networks(r *Record, fp string, st *sessState, cl client) {
	nk, v6 := r.nk, r.v6
	if !r.netOK {
		return
	}
	idx := -1
	for i := range st.nets {
		if st.nets[i].net == nk {
			idx = i
			break
		}
	}
	w := int64(sc.cfg.NetWindow)
	tol := int64(sc.cfg.ClockSkew)
	for i := range st.nets {
		m := &st.nets[i]
		if i == idx || r.TS-m.last > w {
			continue
		}
		switch {
		case !sameClient(m.cl, cl):
			f, created := sc.find(RuleConcurrentNetworks, Medium, fp, []string{fp}, []string{st.principal.String()}, r, func() string {
				return fmt.Sprintf("session %s used from %s by one client and from %s by another within %s", fp, m.label(), netLabel(r.IP, v6), time.Duration(r.TS-m.last).Round(time.Second))
			})
			if created {
				f.setFacts(st.principal.String(), "", r, fmt.Sprintf("%s's session %s was used from %s by one client and from %s by another within %s (at %s)", orAnon(st.principal.String()), short(fp), m.label(), netLabel(r.IP, v6), time.Duration(r.TS-m.last).Round(time.Second), hms(r.TS)))
			}
		case m.v6 != v6:
			if !st.infoDone {
				st.infoDone = true
				_, _ = sc.find(RuleConcurrentNetworks, Info, "info|"+fp, []string{fp}, []string{st.principal.String()}, r, func() string {
					return fmt.Sprintf("session %s switched between IPv4 and IPv6 (%s, %s) on one client: Happy Eyeballs", fp, m.label(), netLabel(r.IP, v6))
				})
			}
		case sameOperator(m, r):
			// Carrier NAT: one client, one operator, another address.
		case idx >= 0 && r.TS-st.nets[idx].last <= w && !sc.late &&
			st.nets[idx].first < m.last-tol && r.TS-m.last > tol:
			// Back and forth: this network in use more than the hosts'
			// clocks may be apart before the other one's last use, and
			// again as long after it. Closer than that, a client that
			// moved once looks as if it came back when two hosts' lines
			// interleave.
			back := st.nets[idx].label()
			if m.cl.hasDev && cl.hasDev {
				// The same device cookie on both networks: one device
				// flapping between Wi-Fi and cellular, or toggling a VPN.
				// Normal at scale; counted, and listed only on request.
				sc.find(RuleConcurrentNetworks, Low, "flap|"+fp, []string{fp}, []string{st.principal.String()}, r, func() string {
					return fmt.Sprintf("session %s went back and forth between %s and %s (another operator) within %s on one device (same device cookie)", fp, back, m.label(), time.Duration(r.TS-st.nets[idx].last).Round(time.Second))
				})
				break
			}
			f, created := sc.find(RuleConcurrentNetworks, Medium, fp, []string{fp}, []string{st.principal.String()}, r, func() string {
				return fmt.Sprintf("session %s went back and forth between %s and %s (another operator) within %s", fp, back, m.label(), time.Duration(r.TS-st.nets[idx].last).Round(time.Second))
			})
			if created {
				f.setFacts(st.principal.String(), "", r, fmt.Sprintf("%s's session %s went back and forth between %s and %s (another operator) within %s, with the same User-Agent but no device cookie to tell the clients apart (at %s)", orAnon(st.principal.String()), short(fp), back, m.label(), time.Duration(r.TS-st.nets[idx].last).Round(time.Second), hms(r.TS)))
			}
		}
	}
	if idx < 0 {
		if len(st.nets) < 4 {
			st.nets = append(st.nets, netUse{})
			idx = len(st.nets) - 1
		} else {
			idx = 0
			for i := range st.nets {
				if st.nets[i].last < st.nets[idx].last {
					idx = i
				}
			}
		}
		st.nets[idx] = netUse{net: nk, v6: v6, first: r.TS}
	}
	n := &st.nets[idx]
	n.last, n.asn, n.cl = max(n.last, r.TS), r.ASN, cl
	n.n++
	st.lastNet = int32(idx)
}

// sameOperator reports whether the network m and the request r belong to
// one operator: the same ASN when both lines have one, else (a writer
// without an ASN lookup) the same IPv4 /16 or IPv6 /32, where carrier NAT
// pools and a subscriber's prefixes usually sit.
func sameOperator(m *netUse, r *Record) bool {
	if m.asn != 0 && r.ASN != 0 {
		return m.asn == r.ASN
	}
	if m.v6 != r.v6 {
		return false
	}
	if r.v6 {
		return m.net.hi>>32 == r.nk.hi>>32
	}
	return m.net.hi>>8 == r.nk.hi>>8
}

func (sc *scanner) flip(r *Record, cl client) {
	if r.UidView == "" && r.Event != "login" && r.Event != "logout" {
		return // nothing shown to anybody, nothing to flip
	}
	d := sc.devs.get(cl.dev, r.hDev)
	if d == nil {
		d = sc.devs.add(cl.dev, r.hDev)
	}
	d.last = r.TS
	view := r.UidView
	if d.pend != nil && r.TS > d.pend.ts+int64(sc.cfg.ClockSkew) {
		sc.settleFlip(d)
	}
	if r.Event == "login" || r.Event == "logout" {
		d.pend = nil // the flip was a login the clocks put late
		if r.TS-d.resetTS > int64(sc.cfg.ClockSkew) {
			d.before[0], d.before[1] = d.cur, d.prev
		} else {
			// A second login or logout close to the first (the same line
			// delivered twice, a login right after a logout): keep whom
			// the device showed before the first as well.
			keep := d.before
			d.before = [2]sstr{}
			n := 0
			for _, c := range [...]*sstr{&keep[0], &keep[1], &d.cur, &d.prev} {
				if n < 2 && !c.empty() && !c.eq(view) && !d.before[0].eq(c.String()) {
					d.before[n] = *c
					n++
				}
			}
		}
		d.resetTS = r.TS
		d.prev.set("")
		if !d.cur.eq(view) {
			d.cur.set(view)
		}
		d.curSid, d.curReq = clone(r.SidOut), ""
		return
	}
	if view == "" {
		return
	}
	if !d.cur.eq(view) && (d.before[0].eq(view) || d.before[1].eq(view)) && r.TS-d.resetTS <= int64(sc.cfg.ClockSkew) {
		// Within the hosts' clock difference of a login or logout, a page
		// of whom the device showed before it may be from before it: not
		// part of the order.
		return
	}
	if d.cur.eq(view) {
		if d.curSid == "" && r.SidIn != "" {
			d.curSid = clone(r.SidIn)
		}
		if d.curSid == "" && r.SidOut != "" {
			d.curSid = clone(r.SidOut)
		}
		return
	}
	if !d.cur.empty() && d.prev.eq(view) && d.pend == nil {
		d.pend = &pendingFlip{a: clone(view), b: d.cur.String(), sid: d.curSid, breq: d.curReq, ts: r.TS, from: d.curTS, line: []byte(r.Line), src: r.Src, lineNo: r.LineNo}
	}
	d.prev = d.cur
	d.cur.set(view)
	d.curTS = r.TS
	d.curSid = r.SidIn
	if d.curSid == "" {
		d.curSid = r.SidOut
	}
	d.curSid, d.curReq = clone(d.curSid), clone(r.Req)
}

// settleFlip reports d's pending flip.
func (sc *scanner) settleFlip(d *devState) {
	p := d.pend
	d.pend = nil
	var rec Record
	if p == nil || parseLine(p.line, &rec) != nil {
		return
	}
	rec.Src, rec.LineNo = p.src, p.lineNo
	r := &rec
	{
		a, b, sid, breq := p.a, p.b, p.sid, p.breq
		f, created := sc.find(RuleIdentityFlip, High, sid+"|"+r.Dev, []string{sid}, []string{a, b}, r, func() string {
			return fmt.Sprintf("device %s saw %q, then %q (session %q, request %s), then %q again without a login or logout", r.Dev, a, b, sid, breq, a)
		})
		if created {
			if len(d.flips) == 4 {
				d.flips = d.flips[1:]
			}
			d.flips = append(d.flips, reportedFlip{f, p.from, p.ts})
			f.setFacts(b, a, r, fmt.Sprintf("The device %s of %s was shown %s's pages (session %s) between two of its own user's, without a login or logout, until %s", short(r.Dev), a, b, short(sid), hms(r.TS)))
		}
		if f := sc.finds[RuleIdentityFlip+"|"+sid+"|"+r.Dev]; f != nil && breq != "" && len(f.Requests) < sc.cfg.MaxRequests && !contains(f.Requests, breq) {
			f.Requests = append(f.Requests, breq)
		}
	}
}

// release copies the ring lines that point into b, which is about to be
// recycled.
func (sc *scanner) release(b *batch) {
	fix := func(p *procState) {
		for i := range p.ring {
			if e := &p.ring[i]; e.b == b {
				e.own = append(e.own[:0], e.line...)
				e.line, e.b = bstr(e.own), nil
			}
		}
	}
	for _, p := range sc.procs {
		fix(p)
	}
	for _, p := range sc.procsSlow {
		fix(p)
	}
}

// sweep forgets state the rules' windows no longer need.
func (sc *scanner) sweep(now int64) {
	ttl := int64(sc.cfg.SessionTTL)
	if ttl <= 0 {
		ttl = int64(24 * time.Hour)
	}
	period := ttl / 8
	if sc.nextSweep != math.MinInt64 {
		sc.sess.sweep(func(st *sessState) bool {
			return now-st.last > ttl && (st.tombKind == "" || now-st.tombTS > ttl)
		})
		sc.devs.sweep(func(d *devState) bool {
			if now-d.last > ttl {
				sc.settleFlip(d)
				return true
			}
			return false
		})
		for k, b := range sc.bound {
			if now-b.last > ttl {
				delete(sc.bound, k)
			}
		}
		for k, p := range sc.procs {
			if now-p.last > int64(time.Hour) {
				delete(sc.procs, k)
			}
		}
		for k, p := range sc.procsSlow {
			if now-p.last > int64(time.Hour) {
				delete(sc.procsSlow, k)
			}
		}
	}
	sc.nextSweep = now + period
}

func (sc *scanner) report() *Report {
	st := sc.stats
	st.ByRule = map[string]int{}
	st.BySeverity = map[string]int{}
	st.Suppressed = sc.suppress
	if sc.first != math.MaxInt64 {
		st.First = sc.tsString(sc.first)
		st.Last = sc.tsString(sc.last)
	}
	fs := sc.order
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Severity != fs[j].Severity {
			return fs[i].Severity > fs[j].Severity
		}
		return fs[i].First.Before(fs[j].First)
	})
	for _, f := range fs {
		st.ByRule[f.Rule]++
		st.BySeverity[f.Severity.String()]++
	}
	if len(sc.noise) > 0 {
		st.Noise = sc.noise
	}
	if len(sc.benign) > 0 {
		st.Benign = sc.benign
	}
	rep := &Report{Findings: fs, Incidents: groupIncidents(fs, int64(sc.cfg.HandoffWindow)), Stats: st, RevokeSeverity: High}
	for h := range sc.hosts {
		rep.hosts = append(rep.hosts, h)
	}
	sort.Strings(rep.hosts)
	return rep
}

// SessionsToRevoke returns the distinct session fingerprints of the
// incidents at or above min, sorted. Only well-formed fingerprints (32
// lowercase hex digits, as logschema.md defines them) are returned:
// anything else in a log cannot name a stored session.
func (r *Report) SessionsToRevoke(min Severity) []string {
	seen := map[string]bool{}
	var out []string
	add := func(sev Severity, sessions []string) {
		if sev < min {
			return
		}
		for _, s := range sessions {
			if _, ok := makeKey(s); ok && !seen[s] {
				seen[s] = true
				out = append(out, s)
			}
		}
	}
	if r.Incidents == nil {
		for _, f := range r.Findings {
			add(f.Severity, f.Sessions)
		}
	}
	for _, in := range r.Incidents {
		add(in.Severity, in.Sessions)
	}
	sort.Strings(out)
	return out
}
