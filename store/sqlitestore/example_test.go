package sqlitestore_test

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/cordon-sec/cordon/reqlog"
	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store/sqlitestore"
)

// An app with sessions in SQLite, a request log, and the standard
// library's CSRF protection: log in (with "remember me"), see who you are,
// log out. This is the README's example.
func Example() {
	dir, err := os.MkdirTemp("", "cordon-example") // your app's data directory
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	st, err := sqlitestore.Open(filepath.Join(dir, "sessions.db"), sqlitestore.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	m := session.New(st, session.Options{})
	defer m.Close()
	requests, err := reqlog.Open(filepath.Join(dir, "requests.log"), reqlog.WriterOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer requests.Close()

	// Your own password check (cordon's demo uses argon2id).
	passwordOK := func(user, password string) bool { return user == "alice" && password == "correct horse" }

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		user := r.FormValue("user")
		if !passwordOK(user, r.FormValue("password")) {
			http.Error(w, "wrong user name or password", http.StatusUnauthorized)
			return
		}
		opt := session.LoginOptions{Remember: r.FormValue("remember") == "on"}
		if err := session.From(r).LoginWith(user, opt); err != nil {
			http.Error(w, "could not log in, try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "logged in as", user)
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		user, err := session.From(r).Principal()
		if err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		if user == "" {
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, "hello,", user)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := session.From(r).Logout(); err != nil {
			http.Error(w, "could not log out, try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "logged out")
	})

	// Cross-origin POSTs are refused before they reach the session (CSRF);
	// the request log sees every request, refused ones too.
	var h http.Handler = m.Middleware(mux)
	h = http.NewCrossOriginProtection().Handler(h)
	h = reqlog.Middleware(requests, reqlog.Options{})(h)

	// A real program serves h over TLS: http.ListenAndServeTLS(addr, cert, key, h).
	srv := httptest.NewTLSServer(h)
	defer srv.Close()
	browser := *srv.Client()
	browser.Jar, _ = cookiejar.New(nil)
	do := func(method, path, form, fetchSite string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", fetchSite) // as a browser sends it
		resp, err := browser.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		say := http.StatusText(resp.StatusCode)
		if resp.StatusCode == http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			say = strings.TrimSpace(string(body))
		}
		fmt.Printf("%s %s: %d %s\n", method, path, resp.StatusCode, say)
	}
	login := url.Values{"user": {"alice"}, "password": {"correct horse"}, "remember": {"on"}}.Encode()
	do("POST", "/login", login, "cross-site") // a form on another site
	do("POST", "/login", login, "same-origin")
	do("GET", "/me", "", "same-origin")
	do("POST", "/logout", "", "same-origin")
	do("GET", "/me", "", "same-origin")
	// Output:
	// POST /login: 403 Forbidden
	// POST /login: 200 logged in as alice
	// GET /me: 200 hello, alice
	// POST /logout: 200 logged out
	// GET /me: 401 Unauthorized
}
