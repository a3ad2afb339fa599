package lab

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// Event is one thing the composition did, recorded by the code that did it
// at the moment it did it.
type Event struct {
	// N numbers the events of a run from 1.
	N int `json:"n"`
	// Step is the post-mortem step the driver was executing (0 for setup).
	Step int `json:"step"`
	// Lane is the goroutine that acted: "request", "background" or
	// "driver" (the client side, outside the server).
	Lane string `json:"lane"`
	// Actor says which goroutine, with what it was serving ("request
	// goroutine, serving #3").
	Actor string `json:"actor"`
	// Object is what was touched: "env#1", "jar#3", "controller#1",
	// "store", "reporter", "session handle #1", "guard", "response #3".
	Object string `json:"object"`
	// Op is the operation: read, write, clear, copy, call, park, block...
	Op string `json:"op"`
	// Detail says what was read or written. It never holds a token: only
	// fingerprints and principals.
	Detail string `json:"detail"`
}

// Trace collects a run's events. A nil *Trace records nothing. Its methods
// are safe for concurrent use.
type Trace struct {
	mu     sync.Mutex
	events []Event
	step   int
	heads  map[int]string
	sched  *Sched
	out    io.Writer // if set, each event is printed as it is recorded
}

// NewTrace returns a trace stamping events with the scheduler's running
// actor; if out is not nil every event is printed to it as it happens.
func NewTrace(s *Sched, out io.Writer) *Trace {
	return &Trace{sched: s, out: out}
}

// Step marks the start of a post-mortem step and prints its heading.
func (t *Trace) Step(n int, heading string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.step = n
	if t.heads == nil {
		t.heads = map[int]string{}
	}
	t.heads[n] = heading
	if t.out != nil {
		fmt.Fprintf(t.out, "\nstep %d: %s\n", n, heading)
	}
}

// Note records an event of the driver (the client side).
func (t *Trace) Note(object, op, detail string) {
	t.add("driver", "client (driver)", object, op, detail)
}

// Add records an event of the actor that is running now.
func (t *Trace) Add(object, op, detail string) {
	if t == nil {
		return
	}
	lane, who := "?", "?"
	if a := t.sched.Current(); a != nil {
		lane, who = a.Name, a.Name+" goroutine"
		if a.label != "" {
			who += ", " + a.label
		}
	}
	t.add(lane, who, object, op, detail)
}

func (t *Trace) add(lane, who, object, op, detail string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := Event{N: len(t.events) + 1, Step: t.step, Lane: lane, Actor: who, Object: object, Op: op, Detail: detail}
	t.events = append(t.events, e)
	if t.out != nil {
		fmt.Fprintf(t.out, "  %3d  %-38s %-18s %-6s %s\n", e.N, who, object, op, detail)
	}
}

// Events returns a copy of the recorded events.
func (t *Trace) Events() []Event {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Event(nil), t.events...)
}

// Headings returns the step headings by step number.
func (t *Trace) Headings() map[int]string {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[int]string, len(t.heads))
	for k, v := range t.heads {
		out[k] = v
	}
	return out
}

// WriteSVG draws the events as a sequence diagram with four lanes: the
// request goroutine, the background goroutine, the env and the cookie jar.
// An event that touches an env or a jar is an arrow from its goroutine's
// lane to that object's lane; other events are notes on their lane, and
// what the clients received is written across the diagram. headings, if
// given, label the steps.
func WriteSVG(w io.Writer, title string, events []Event, headings map[int]string) error {
	return writeSVG(w, title, events, headings, svgMarks{})
}

// svgMarks are what a story diagram highlights.
type svgMarks struct {
	leakSteps  map[int]string   // step → what leaks there
	leakEvent  int              // the event that writes the wrong session (N)
	breakStep  int              // this replay's chain breaks here (0: none)
	breakWhat  string           // and how
	mitigation map[int][]string // step → mitigations that, alone, break the chain there
	dbscSteps  map[int]string   // step → what device binding did there (after the leak)
}

// WriteStorySVG draws res as WriteSVG does, and highlights the story: the
// steps where another user's session is written into a response's jar and
// delivered (red), the step where this replay's chain breaks (green), and,
// for each mitigation in breaks, the step at which it alone breaks the
// chain (a green tag on that step's heading).
func WriteStorySVG(w io.Writer, title string, res *ReplayResult, breaks []MitigationBreak) error {
	mk := svgMarks{leakSteps: map[int]string{}, mitigation: map[int][]string{}, dbscSteps: map[int]string{}}
	for _, st := range Story(res) {
		if st.Leak != "" {
			mk.leakSteps[st.N] = st.Leak
		}
		if st.DBSC != "" {
			mk.dbscSteps[st.N] = st.DBSC
		}
		if st.Stolen != "" {
			mk.leakSteps[st.N] = st.Stolen
		}
	}
	if res.Leaked {
		if e := findEvent(res.Events, Chain[3].match); e != nil {
			mk.leakEvent = e.N
		}
	}
	if br := ChainBreak(res); br.Link != nil {
		mk.breakStep = br.Step
		mk.breakWhat = fmt.Sprintf("chain broken: link %d (%s) does not happen", br.Link.N, br.Link.Name)
	}
	for _, b := range breaks {
		if b.Break.Link != nil {
			mk.mitigation[b.Break.Step] = append(mk.mitigation[b.Break.Step], b.Mitigation)
		}
	}
	return writeSVG(w, title, res.Events, res.Headings, mk)
}

func writeSVG(w io.Writer, title string, events []Event, headings map[int]string, mk svgMarks) error {
	const (
		laneW  = 260
		left   = 20
		top    = 90
		rowH   = 24
		stepH  = 26
		noteW  = 250
		fontSz = 11
	)
	lanes := []string{"request goroutine", "background goroutine", "env", "cookie jar"}
	laneX := func(i int) int { return left + laneW/2 + i*laneW }
	laneOf := func(e Event) (from, to int) {
		from = -1
		switch e.Lane {
		case "request":
			from = 0
		case "background":
			from = 1
		}
		to = -1
		switch {
		case strings.HasPrefix(e.Object, "env"):
			to = 2
		case strings.HasPrefix(e.Object, "jar"):
			to = 3
		}
		return from, to
	}
	// Layout first, to know the height.
	y := top
	type row struct {
		e    Event
		y    int
		head bool
	}
	var rows []row
	step := -1
	for _, e := range events {
		from, _ := laneOf(e)
		if from < 0 && !strings.HasPrefix(e.Object, "response") && e.Object != "refresh" {
			continue // the clients' sends are in the step headings
		}
		if e.Step != step {
			step = e.Step
			y += stepH
			rows = append(rows, row{e: e, y: y, head: true})
		}
		y += rowH
		rows = append(rows, row{e: e, y: y})
	}
	height := y + 40
	width := left*2 + laneW*len(lanes)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="monospace" font-size="%d">`+"\n", width, height, width, height, fontSz)
	b.WriteString(`<defs><marker id="arr" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#333"/></marker></defs>` + "\n")
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" font-size="14" font-weight="bold">%s</text>`+"\n", left, esc(title))
	for i, l := range lanes {
		x := laneX(i)
		fmt.Fprintf(&b, `<rect x="%d" y="40" width="%d" height="28" rx="4" fill="#eef" stroke="#557"/>`+"\n", x-laneW/2+10, laneW-20)
		fmt.Fprintf(&b, `<text x="%d" y="58" text-anchor="middle" font-weight="bold">%s</text>`+"\n", x, esc(l))
		fmt.Fprintf(&b, `<line x1="%d" y1="68" x2="%d" y2="%d" stroke="#99a" stroke-dasharray="4 3"/>`+"\n", x, x, height-20)
	}
	// Bands behind the highlighted steps.
	heads := []row{}
	for _, r := range rows {
		if r.head {
			heads = append(heads, r)
		}
	}
	for i, h := range heads {
		end := height - 20
		if i+1 < len(heads) {
			end = heads[i+1].y - stepH + 4
		}
		top := h.y - stepH + 4
		if what, ok := mk.leakSteps[h.e.Step]; ok {
			fmt.Fprintf(&b, `<rect class="leak-step" data-step="%d" x="%d" y="%d" width="%d" height="%d" fill="#fde2e2" stroke="#c00" stroke-width="2"><title>%s</title></rect>`+"\n", h.e.Step, left-8, top, width-2*left+16, end-top, esc(what))
		}
		if what, ok := mk.dbscSteps[h.e.Step]; ok {
			fmt.Fprintf(&b, `<rect class="dbsc-step" data-step="%d" x="%d" y="%d" width="%d" height="%d" fill="#e4edfb" stroke="#1f5fbf" stroke-width="2"><title>%s</title></rect>`+"\n", h.e.Step, left-8, top, width-2*left+16, end-top, esc(what))
		}
		if h.e.Step == mk.breakStep && mk.breakStep > 0 {
			fmt.Fprintf(&b, `<rect class="break-step" data-step="%d" x="%d" y="%d" width="%d" height="%d" fill="#e3f5e8" stroke="#1a7f37" stroke-width="2"><title>%s</title></rect>`+"\n", h.e.Step, left-8, top, width-2*left+16, end-top, esc(mk.breakWhat))
		}
	}
	for _, r := range rows {
		if r.head {
			color := "#c33"
			if _, ok := mk.leakSteps[r.e.Step]; ok {
				color = "#c00"
			}
			fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s"/>`+"\n", left, r.y, width-left, r.y, color)
			n := 110
			if len(mk.mitigation[r.e.Step]) > 0 {
				n = 70 // leave room for the tag
			}
			label := fmt.Sprintf("step %d: %s", r.e.Step, clip(headings[r.e.Step], n))
			if _, ok := mk.leakSteps[r.e.Step]; ok {
				label += "  ◀ LEAK"
			}
			if _, ok := mk.dbscSteps[r.e.Step]; ok {
				color = "#1f5fbf"
				label += "  ◀ DBSC"
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s" font-weight="bold">%s</text>`+"\n", left+4, r.y-4, color, esc(label))
			if what, ok := mk.dbscSteps[r.e.Step]; ok {
				fmt.Fprintf(&b, `<text class="dbsc" data-step="%d" x="%d" y="%d" text-anchor="end" fill="#1f5fbf" font-weight="bold"><title>%s</title>◆ dbsc acts here</text>`+"\n", r.e.Step, width-left-4, r.y+12, esc(what))
			}
			if ms := mk.mitigation[r.e.Step]; len(ms) > 0 {
				fmt.Fprintf(&b, `<text class="breaks" data-step="%d" x="%d" y="%d" text-anchor="end" fill="#1a7f37" font-weight="bold">✂ breaks the chain here: %s</text>`+"\n", r.e.Step, width-left-4, r.y-4, esc(strings.Join(ms, ", ")))
			}
			if r.e.Step == mk.breakStep && mk.breakStep > 0 {
				fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="#1a7f37" font-weight="bold">%s</text>`+"\n", width-left-4, r.y+12, esc(mk.breakWhat))
			}
			continue
		}
		from, to := laneOf(r.e)
		if from < 0 {
			color := "#060"
			if strings.Contains(r.e.Detail, "WRONG") {
				color = "#c00"
			}
			if strings.Contains(r.e.Detail, "REFUSED") || strings.Contains(r.e.Detail, "not served") {
				color = "#1f5fbf"
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s" font-weight="bold">client receives %s: %s</text>`+"\n", left+4, r.y-4, color, esc(r.e.Object), esc(r.e.Detail))
			continue
		}
		if r.e.Object == "scheduler" {
			fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#888" font-style="italic">‖ %s</text>`+"\n", laneX(from)-noteW/2+4, r.y-4, esc(r.e.Detail))
			continue
		}
		label := r.e.Object + ": " + r.e.Detail
		if to >= 0 {
			x1, x2 := laneX(from), laneX(to)
			color, sw, extra := "#333", 1, ""
			if r.e.Op == "write" {
				color = "#a40"
			}
			if r.e.N == mk.leakEvent && mk.leakEvent > 0 {
				color, sw, extra = "#c00", 3, ` id="leak" class="leak"`
			}
			fmt.Fprintf(&b, `<line%s x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="%d" marker-end="url(#arr)"/>`+"\n", extra, x1, r.y, x2, r.y, color, sw)
			tx := x1 + 6
			if x2 < x1 {
				tx = x2 + 6
			}
			text := clip(r.e.Op+" "+r.e.Detail, 60)
			if r.e.N == mk.leakEvent && mk.leakEvent > 0 {
				text = "LEAK: " + text
			}
			fmt.Fprintf(&b, `<text x="%d" y="%d" fill="%s">%s</text>`+"\n", tx, r.y-4, color, esc(text))
		} else {
			x := laneX(from)
			fill, stroke := "#ffd", "#cc8"
			if r.e.Op == "block" {
				fill, stroke = "#dfd", "#6a6"
			}
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s" stroke="%s"/>`+"\n", x-noteW/2, r.y-15, noteW, rowH-6, fill, stroke)
			fmt.Fprintf(&b, `<text x="%d" y="%d"><title>%s</title>%s</text>`+"\n", x-noteW/2+4, r.y-2, esc(label), esc(clip(label, 35)))
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func esc(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
	return r.Replace(s)
}
