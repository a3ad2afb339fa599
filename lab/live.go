package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/cordon-sec/cordon/internal/setcookie"
	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/store"
	"github.com/cordon-sec/cordon/store/memstore"
)

// ErrNotLoopback is returned by CheckLoopback for an address that is not on
// a loopback interface: the vulnerable lab server must never be reachable
// from elsewhere.
var ErrNotLoopback = errors.New("lab: the lab server listens on loopback addresses only")

// CheckLoopback returns an error unless addr (host:port) names a loopback
// address or "localhost".
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("lab: address %q: %w", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !a.Unmap().IsLoopback() {
		return fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	return nil
}

// AttackOptions configures Attack.
type AttackOptions struct {
	// URL is the lab server's base URL. Required.
	URL string
	// Users is the number of users that log in (default 8).
	Users int
	// Requests bounds the number of requests after the logins (default
	// 2000).
	Requests int
	// Concurrency is the number of clients in parallel (default 8).
	Concurrency int
	// Duration bounds the attack's time (default 30 s).
	Duration time.Duration
	// Seed seeds the clients' choices (default 1).
	Seed uint64
	// Client is the HTTP client (default: one with a 10 s timeout).
	Client *http.Client
}

// Crossing is a response whose session cookie belongs to another user than
// the client's, as seen from the client side.
type Crossing struct {
	Request    int64  `json:"request"`
	Path       string `json:"path"`
	As         string `json:"as"`
	BodyUser   string `json:"body_user,omitempty"`
	CookieFP   string `json:"cookie_fp"`
	CookieUser string `json:"cookie_user"`
}

// AttackResult is what the clients saw.
type AttackResult struct {
	Requests  int        `json:"requests"`
	Crossings int        `json:"crossings"`
	Blocked   int        `json:"blocked"` // 5xx responses: failed closed
	Errors    int        `json:"errors"`
	Elapsed   string     `json:"elapsed"`
	Examples  []Crossing `json:"examples"`
}

type attacker struct {
	o      AttackOptions
	base   *url.URL
	client *http.Client

	mu     sync.Mutex
	owners map[string]string // session fingerprint -> user, as learned by the clients
}

// Attack drives many users against a lab server (vulnerable or hardened)
// and counts the crossings its clients observe: a response whose session
// cookie is another user's than the one the client was, or than the one
// its body shows. Clients learn whose a session is from their own logins,
// and for a session they have never seen by asking the server's /account
// with it.
func Attack(ctx context.Context, o AttackOptions) (AttackResult, error) {
	if o.Users <= 0 {
		o.Users = 8
	}
	if o.Requests <= 0 {
		o.Requests = 2000
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Duration <= 0 {
		o.Duration = 30 * time.Second
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	base, err := url.Parse(o.URL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return AttackResult{}, fmt.Errorf("lab: attack: bad URL %q", o.URL)
	}
	a := &attacker{o: o, base: base, client: o.Client, owners: map[string]string{}}
	if a.client == nil {
		a.client = &http.Client{Timeout: 10 * time.Second}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	start := time.Now()

	users := make([]string, o.Users)
	tokens := make([]string, o.Users)
	for i := range users {
		users[i] = fmt.Sprintf("user%02d", i+1)
		if tokens[i], err = a.login(ctx, users[i]); err != nil {
			return AttackResult{}, err
		}
	}

	var (
		mu   sync.Mutex
		res  AttackResult
		next int
		wg   sync.WaitGroup
	)
	for c := 0; c < o.Concurrency; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(o.Seed, uint64(c)+1))
			for ctx.Err() == nil {
				mu.Lock()
				if next >= o.Requests {
					mu.Unlock()
					return
				}
				next++
				mu.Unlock()
				tok, as := "", ""
				if rng.IntN(10) >= 3 {
					k := rng.IntN(o.Users)
					tok, as = tokens[k], users[k]
				}
				path := "/account"
				if rng.IntN(2) == 0 {
					path = "/page"
				}
				cr, status, err := a.probe(ctx, path, tok, as)
				mu.Lock()
				switch {
				case err != nil:
					if ctx.Err() == nil {
						res.Errors++
					}
				default:
					res.Requests++
					if status >= 500 {
						res.Blocked++
					}
					if cr != nil {
						res.Crossings++
						if len(res.Examples) < 5 {
							res.Examples = append(res.Examples, *cr)
						}
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start).Round(time.Millisecond).String()
	if res.Examples == nil {
		res.Examples = []Crossing{}
	}
	return res, nil
}

func (a *attacker) do(ctx context.Context, method, path, token string, form url.Values) (*http.Response, body, error) {
	var rd io.Reader
	if form != nil {
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base.JoinPath(path).String(), rd)
	if err != nil {
		return nil, body{}, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if token != "" {
		req.AddCookie(&http.Cookie{Name: CookieName, Value: token})
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, body{}, fmt.Errorf("lab: attack: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if err != nil {
		return nil, body{}, fmt.Errorf("lab: attack: %w", err)
	}
	var b body
	_ = json.Unmarshal(raw, &b)
	return resp, b, nil
}

func sessionCookie(resp *http.Response) string {
	return responseCookie(resp, CookieName)
}

// responseCookie returns the value a response's Set-Cookie lines hand its
// client for the cookie name, read as cordon's guards read them (package
// internal/setcookie): in any shape a client might take it, a deletion
// excepted; "" if none does.
func responseCookie(resp *http.Response, name string) string {
	for _, l := range resp.Header.Values("Set-Cookie") {
		kind, v := setcookie.Classify(l, name)
		if kind == setcookie.None || v == "" || kind == setcookie.Primary && setcookie.Deletes(l) {
			continue
		}
		return v
	}
	return ""
}

// login logs user in and checks, with a request of its own, that the
// session it got is user's (on a vulnerable server even a login response
// can carry someone else's cookie); it retries a few times.
func (a *attacker) login(ctx context.Context, user string) (string, error) {
	for range 5 {
		resp, b, err := a.do(ctx, http.MethodPost, "/login", "", url.Values{"user": {user}, "password": {Password}})
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK || b.User != user {
			return "", fmt.Errorf("lab: attack: login as %s: status %d", user, resp.StatusCode)
		}
		tok := sessionCookie(resp)
		if tok == "" {
			continue
		}
		_, who, err := a.do(ctx, http.MethodGet, "/account", tok, nil)
		if err != nil {
			return "", err
		}
		if who.User == user {
			a.mu.Lock()
			a.owners[store.Fingerprint(tok)] = user
			a.mu.Unlock()
			return tok, nil
		}
	}
	return "", fmt.Errorf("lab: attack: could not log in as %s", user)
}

// probe sends one request and returns the crossing it shows, if any.
func (a *attacker) probe(ctx context.Context, path, token, as string) (*Crossing, int, error) {
	resp, b, err := a.do(ctx, http.MethodGet, path, token, nil)
	if err != nil {
		return nil, 0, err
	}
	tok := sessionCookie(resp)
	if tok == "" {
		return nil, resp.StatusCode, nil
	}
	fp := store.Fingerprint(tok)
	a.mu.Lock()
	owner, known := a.owners[fp]
	a.mu.Unlock()
	if !known {
		_, who, err := a.do(ctx, http.MethodGet, "/account", tok, nil)
		if err != nil {
			return nil, resp.StatusCode, err
		}
		owner = who.User
		a.mu.Lock()
		a.owners[fp] = owner
		a.mu.Unlock()
	}
	want := as
	if b.Authed && b.User != "" {
		want = b.User
	}
	if owner == want {
		return nil, resp.StatusCode, nil
	}
	return &Crossing{Request: b.Request, Path: path, As: as, BodyUser: b.User, CookieFP: fp, CookieUser: owner}, resp.StatusCode, nil
}

// ServeOptions configures Serve.
type ServeOptions struct {
	// Addr is the loopback host:port to listen on (port 0 picks one).
	Addr string
	// Mitigations selects the composition: none for the vulnerable one,
	// AllMitigations() for the hardened one.
	Mitigations Mitigations
	// Workers, Latency, RefreshEvery and FailRate are as in Options
	// (defaults here: 1 worker, 1 ms, 2 ms, 0.5).
	Workers      int
	Latency      time.Duration
	RefreshEvery time.Duration
	FailRate     float64
	// Store holds the sessions (default memstore).
	Store store.Store
	// Log, if set, receives the request log.
	Log *reqlog.Writer
	// Ready, if set, is called with the server's URL once it accepts
	// connections.
	Ready func(url string)
}

// Serve serves a composition over HTTP on a loopback address until ctx
// ends.
func Serve(ctx context.Context, o ServeOptions) error {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:8080"
	}
	if err := CheckLoopback(o.Addr); err != nil {
		return err
	}
	if o.Latency == 0 {
		o.Latency = time.Millisecond
	}
	if o.Store == nil {
		o.Store = memstore.New(memstore.Options{})
	}
	srv, err := NewServer(Options{
		Mitigations: o.Mitigations, Store: o.Store, Workers: o.Workers,
		Latency: o.Latency, RefreshEvery: o.RefreshEvery, FailRate: o.FailRate, Log: o.Log,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.Addr)
	if err != nil {
		return fmt.Errorf("lab: serve: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	srv.Start(ctx)
	defer srv.Close()
	story, err := StoryHandler(ctx, o.Mitigations)
	if err != nil {
		return fmt.Errorf("lab: serve: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/lab", story)
	mux.Handle("/lab/", story)
	mux.Handle("/", srv)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	if o.Ready != nil {
		o.Ready("http://" + ln.Addr().String())
	}
	select {
	case err := <-errc:
		return fmt.Errorf("lab: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("lab: serve: shutdown: %w", err)
	}
	return nil
}
