package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/memstore"
)

// StressOptions configures the seeded randomized stress.
type StressOptions struct {
	// Runs is the number of runs per combination (default 40).
	Runs int
	// Requests is the number of requests per run (default 12).
	Requests int
	// Users is the number of signed-in users besides anonymous clients
	// (default 4).
	Users int
	// Seed selects the interleavings; run i of every combination uses the
	// same seed, so combinations face the same random driver (default 1).
	Seed uint64
	// NewStore returns a fresh store for a run (default memstore).
	NewStore func() store.Store
}

func (o *StressOptions) defaults() {
	if o.Runs <= 0 {
		o.Runs = 40
	}
	if o.Requests <= 0 {
		o.Requests = 12
	}
	if o.Users <= 0 {
		o.Users = 4
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.NewStore == nil {
		o.NewStore = func() store.Store { return memstore.New(memstore.Options{}) }
	}
}

// StressResult sums the runs of one combination.
type StressResult struct {
	Runs int
	// Requests is the number of responses the clients received.
	Requests int
	// Leaks counts responses that carried a session cookie of a principal
	// other than the client's (or the one its body shows).
	Leaks int
	// Blocked counts attempts refused by a sealed handle or the guard.
	Blocked int
	// Reports counts the background's error reports.
	Reports int
}

// Stress runs the composition o.Runs times. In each run a seeded random
// driver interleaves anonymous and signed-in clients (over HTTP on a
// loopback listener) with the background refresher, choosing at every
// step which goroutine moves next, and the clients check every response.
func Stress(ctx context.Context, m Mitigations, o StressOptions) (StressResult, error) {
	o.defaults()
	var res StressResult
	for i := 0; i < o.Runs; i++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		r, err := stressRun(ctx, m, o, o.Seed*1_000_003+uint64(i))
		if err != nil {
			return res, fmt.Errorf("lab: stress %s run %d: %w", m, i, err)
		}
		res.Runs++
		res.Requests += r.Requests
		res.Leaks += r.Leaks
		res.Blocked += r.Blocked
		res.Reports += r.Reports
	}
	return res, nil
}

func stressRun(ctx context.Context, m Mitigations, o StressOptions, seed uint64) (StressResult, error) {
	rng := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	st := o.NewStore()
	h, err := newHarness(m, st, nil, NewSched(0), time.Now, cryptoRand{})
	if err != nil {
		return StressResult{}, err
	}
	defer h.close()
	users := make([]string, o.Users)
	tokens := make([]string, o.Users)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i+1)
		if tokens[i], err = createSession(ctx, st, cryptoRand{}, time.Now(), users[i]); err != nil {
			return StressResult{}, err
		}
	}
	var res StressResult
	sent := 0
	for {
		var moves []func() error
		if h.req == nil && sent < o.Requests {
			moves = append(moves, func() error {
				sent++
				if rng.IntN(10) == 0 {
					// An anonymous client signs in as one of the users.
					k := rng.IntN(o.Users)
					return h.send("POST", "/login", "", "", url.Values{"user": {users[k]}, "password": {Password}})
				}
				tok, as := "", ""
				if rng.IntN(10) >= 4 {
					k := rng.IntN(o.Users)
					tok, as = tokens[k], users[k]
				}
				path := "/account"
				if rng.IntN(2) == 0 {
					path = "/page"
				}
				return h.send("GET", path, tok, as, nil)
			})
		}
		if h.req != nil {
			moves = append(moves, func() error {
				if err := h.sched.step(h.req); err != nil {
					return err
				}
				if h.req.At != "exit" {
					return nil
				}
				ob, err := h.collect()
				if err != nil {
					return err
				}
				res.Requests++
				if ob.Leaked {
					res.Leaks++
				}
				return nil
			})
		}
		switch h.bg.At {
		case "sleep":
			if sent < o.Requests || h.req != nil {
				moves = append(moves, func() error { return h.tick(rng.IntN(10) < 7) })
			}
		case "exit":
		default:
			moves = append(moves, func() error { return h.sched.step(h.bg) })
		}
		if len(moves) == 0 {
			break
		}
		if err := moves[rng.IntN(len(moves))](); err != nil {
			return res, err
		}
	}
	res.Blocked = int(h.srv.Blocked())
	res.Reports = len(h.srv.Reports())
	return res, nil
}

// Row is one line of the matrix.
type Row struct {
	Mitigations  []string `json:"mitigations"`
	ReplayLeaked bool     `json:"replay_leaked"`
	Runs         int      `json:"runs"`
	Leaks        int      `json:"leaks"`
	Blocked      int      `json:"blocked"`
	// BreaksLink and BreaksStep say which link of the chain (Chain) the
	// combination's replay breaks first, and at which step; 0 and "" for
	// the vulnerable baseline, whose chain is whole.
	BreaksLink int    `json:"breaks_link"`
	BreaksStep int    `json:"breaks_step"`
	BreaksName string `json:"breaks_name"`
	// StolenUsableAfterTTL reports whether, in the replay's aftermath, bob's
	// browser was still served as the user whose session response #3
	// delivered once the lab's clock had moved on by the bound cookie's
	// TTL (false when nothing was delivered).
	StolenUsableAfterTTL bool `json:"stolen_usable_after_ttl"`
	// RecipientRefreshRefused reports whether bob's browser's attempt to
	// refresh the bound cookie without the owner's key brought no cookie
	// (only rows with dbsc make that attempt).
	RecipientRefreshRefused bool `json:"recipient_refresh_refused"`

	m        Mitigations
	requests int
}

// Matrix is the result of RunMatrix.
type Matrix struct {
	Rows []Row `json:"rows"`
}

// MatrixOptions configures RunMatrix.
type MatrixOptions struct {
	StressOptions
	// Combinations to run (default: all 32, then dbsc alone).
	Combinations []Mitigations
}

// MatrixCombinations is the matrix's default list: the 32 combinations of
// the five mitigations that break the chain, then dbsc alone.
func MatrixCombinations() []Mitigations {
	return append(Combinations(), Mitigations{DBSC: true})
}

// RunMatrix runs, for every combination, the eight-step replay and the
// seeded stress, and tabulates what the clients observed.
func RunMatrix(ctx context.Context, o MatrixOptions) (*Matrix, error) {
	o.StressOptions.defaults()
	combos := o.Combinations
	if combos == nil {
		combos = MatrixCombinations()
	}
	mx := &Matrix{Rows: []Row{}}
	for _, m := range combos {
		rep, err := Replay(ctx, ReplayOptions{Mitigations: m, Store: o.NewStore(), Aftermath: true})
		if err != nil {
			return nil, fmt.Errorf("lab: replay %s: %w", m, err)
		}
		s, err := Stress(ctx, m, o.StressOptions)
		if err != nil {
			return nil, err
		}
		row := Row{
			Mitigations: m.Names(), ReplayLeaked: rep.Leaked,
			Runs: s.Runs, Leaks: s.Leaks, Blocked: s.Blocked + int(rep.Blocked),
			m: m, requests: s.Requests,
		}
		if af := rep.Aftermath; af != nil {
			row.StolenUsableAfterTTL = af.StolenUsable
			row.RecipientRefreshRefused = af.RecipientRefresh.Refused()
		}
		if br := ChainBreak(rep); br.Link != nil {
			row.BreaksLink, row.BreaksStep, row.BreaksName = br.Link.N, br.Step, br.Link.Name
		}
		mx.Rows = append(mx.Rows, row)
	}
	return mx, nil
}

// WriteJSON writes the matrix as {"rows":[...]}.
func (mx *Matrix) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(mx)
}

// WriteText writes the matrix as a table, grouped by the link of the chain
// each combination breaks first: the baseline, whose chain is whole, then
// link 1 (the earliest) to link 5. Within a group, rows keep their order.
func (mx *Matrix) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "breaks the chain at\tmitigations\treplay\tstolen session after TTL\tstress leaks / runs\tresponses\trefused (blocked)")
	for link := 0; link <= len(Chain); link++ {
		first := true
		for _, r := range mx.Rows {
			if r.BreaksLink != link {
				continue
			}
			group := ""
			if first {
				if link == 0 {
					group = "nothing (whole chain)"
				} else {
					l := Chain[link-1]
					group = fmt.Sprintf("step %d, link %d: %s", l.Step, l.N, l.Name)
				}
				first = false
			}
			name := strings.Join(r.Mitigations, "+")
			if name == "" {
				name = "none (vulnerable)"
			}
			replay := "no leak"
			if r.ReplayLeaked {
				replay = "LEAK"
			}
			after := "—"
			switch {
			case r.StolenUsableAfterTTL:
				after = "still works"
			case r.ReplayLeaked && r.RecipientRefreshRefused:
				after = "dead, refresh refused"
			case r.ReplayLeaked:
				after = "dead"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d / %d\t%d\t%d\n", group, name, replay, after, r.Leaks, r.Runs, r.requests, r.Blocked)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nThe links: a combination breaks the chain at the first link its replay does not show.")
	for _, l := range Chain {
		fmt.Fprintf(w, "  link %d (step %d) %s: %s\n", l.N, l.Step, l.Name, l.What)
	}
	fmt.Fprintf(w, "\"stolen session after TTL\": in the replay, %s after step 8 (the bound cookie's TTL), is bob's browser still served as the user whose session it received? dbsc does not stop the leak; it makes the delivered session stop working at that TTL and refuses its refresh without the owner's key.\n", DBSCTTL)
	fmt.Fprintln(w, "\"refused (blocked)\" counts what cordon refused in the replay and the stress runs: a sealed handle's late call, a response the guard failed closed.")
	return nil
}
