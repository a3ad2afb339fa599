package session_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/cordon-sec/cordon/session"
	"github.com/cordon-sec/cordon/store/memstore"
)

// serve starts h over TLS, wrapped as every cordon app should be: the
// standard library's CSRF protection outside the session middleware.
func serve(m *session.Manager, mux *http.ServeMux) *httptest.Server {
	return httptest.NewTLSServer(http.NewCrossOriginProtection().Handler(m.Middleware(mux)))
}

// browser returns a client of srv that keeps cookies, as a browser does.
func browser(srv *httptest.Server) *http.Client {
	c := *srv.Client() // a copy: srv.Client() is shared
	c.Jar, _ = cookiejar.New(nil)
	return &c
}

// send makes a request and returns the body, trimmed.
func send(c *http.Client, method, u string, form url.Values) string {
	req, err := http.NewRequest(method, u, strings.NewReader(form.Encode()))
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

// Log in, read and write values, log out.
func Example() {
	m := session.New(memstore.New(memstore.Options{}), session.Options{})
	defer m.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// Check the password first; then:
		if err := session.From(r).Login(r.FormValue("user")); err != nil {
			http.Error(w, "could not log in", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "logged in")
	})
	mux.HandleFunc("POST /theme", func(w http.ResponseWriter, r *http.Request) {
		if err := session.From(r).Put("theme", r.FormValue("theme")); err != nil {
			http.Error(w, "could not save", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "saved")
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		user, err := s.Principal()
		if err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		theme, err := s.GetString("theme")
		if err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "user=%q theme=%q\n", user, theme)
	})
	mux.HandleFunc("POST /logout", func(w http.ResponseWriter, r *http.Request) {
		if err := session.From(r).Logout(); err != nil {
			http.Error(w, "could not log out", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "logged out")
	})
	srv := serve(m, mux)
	defer srv.Close()

	c := browser(srv)
	fmt.Println(send(c, "POST", srv.URL+"/login", url.Values{"user": {"alice"}}))
	fmt.Println(send(c, "POST", srv.URL+"/theme", url.Values{"theme": {"dark"}}))
	fmt.Println(send(c, "GET", srv.URL+"/me", nil))
	fmt.Println(send(c, "POST", srv.URL+"/logout", nil))
	fmt.Println(send(c, "GET", srv.URL+"/me", nil))
	// Output:
	// logged in
	// saved
	// user="alice" theme="dark"
	// logged out
	// user="" theme=""
}

// A flash message: put before a redirect, popped (read and removed) by the
// page it leads to, so it shows once.
func ExampleSession_Pop() {
	m := session.New(memstore.New(memstore.Options{}), session.Options{})
	defer m.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /settings", func(w http.ResponseWriter, r *http.Request) {
		// ... save the settings ...
		if err := session.From(r).Put("flash", "Settings saved."); err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		http.Redirect(w, r, "/settings", http.StatusSeeOther)
	})
	mux.HandleFunc("GET /settings", func(w http.ResponseWriter, r *http.Request) {
		msg, err := session.From(r).PopString("flash")
		if err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "settings page; flash=%q\n", msg)
	})
	srv := serve(m, mux)
	defer srv.Close()

	c := browser(srv)
	fmt.Println(send(c, "POST", srv.URL+"/settings", nil)) // follows the redirect
	fmt.Println(send(c, "GET", srv.URL+"/settings", nil))  // reloaded: gone
	// Output:
	// settings page; flash="Settings saved."
	// settings page; flash=""
}

// "Remember me": the user's choice at login gives that session a
// persistent cookie and its own lifetime (Options.RememberLifetime, 14 days
// by default, 30 at most).
func ExampleSession_LoginWith() {
	m := session.New(memstore.New(memstore.Options{}), session.Options{})
	defer m.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// Check the password first; then:
		opt := session.LoginOptions{Remember: r.FormValue("remember") == "on"}
		if err := session.From(r).LoginWith(r.FormValue("user"), opt); err != nil {
			http.Error(w, "could not log in", http.StatusServiceUnavailable)
			return
		}
	})
	srv := serve(m, mux)
	defer srv.Close()

	for _, remember := range []string{"on", ""} {
		resp, err := srv.Client().PostForm(srv.URL+"/login", url.Values{"user": {"alice"}, "remember": {remember}})
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		for _, ck := range resp.Cookies() {
			fmt.Printf("remember=%q: %s Max-Age=%d (days: %d)\n", remember, ck.Name, ck.MaxAge, ck.MaxAge/86400)
		}
	}
	// Output:
	// remember="on": __Host-session Max-Age=1209600 (days: 14)
	// remember="": __Host-session Max-Age=0 (days: 0)
}

// Structs are stored through an explicit codec: PutJSON keeps their JSON,
// and GetJSON decodes a new value on every call, so changing what you got
// never changes the session.
func ExampleGetJSON() {
	type Cart struct {
		Items []string
	}
	m := session.New(memstore.New(memstore.Options{}), session.Options{})
	defer m.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /cart", func(w http.ResponseWriter, r *http.Request) {
		s := session.From(r)
		cart, _, err := session.GetJSON[Cart](s, "cart")
		if err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		cart.Items = append(cart.Items, r.FormValue("item"))
		if err := session.PutJSON(s, "cart", cart); err != nil {
			http.Error(w, "session unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, strings.Join(cart.Items, ", "))
	})
	srv := serve(m, mux)
	defer srv.Close()

	c := browser(srv)
	send(c, "POST", srv.URL+"/cart", url.Values{"item": {"tea"}})
	fmt.Println(send(c, "POST", srv.URL+"/cart", url.Values{"item": {"milk"}}))
	// Output:
	// tea, milk
}

// A "your devices" page: list the user's sessions (by fingerprint, never
// the token) and revoke one of them.
func ExampleManager_Sessions() {
	m := session.New(memstore.New(memstore.Options{}), session.Options{})
	defer m.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := session.From(r).Login(r.FormValue("user")); err != nil {
			http.Error(w, "could not log in", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		user, _ := session.From(r).Principal()
		fmt.Fprintf(w, "%q\n", user)
	})
	srv := serve(m, mux)
	defer srv.Close()

	laptop, phone := browser(srv), browser(srv)
	send(laptop, "POST", srv.URL+"/login", url.Values{"user": {"alice"}})
	send(phone, "POST", srv.URL+"/login", url.Values{"user": {"alice"}})

	ctx := context.Background()
	list, err := m.Sessions(ctx, "alice", 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice has", len(list), "sessions")
	// Revoke the most recently seen one: the phone.
	if _, err := m.RevokeFingerprints(ctx, list[0].Fingerprint); err != nil {
		log.Fatal(err)
	}
	fmt.Println("phone:", send(phone, "GET", srv.URL+"/me", nil))
	fmt.Println("laptop:", send(laptop, "GET", srv.URL+"/me", nil))
	// Output:
	// alice has 2 sessions
	// phone: ""
	// laptop: "alice"
}

// "Log out my other sessions": every session of the user but this one
// ends.
func ExampleSession_LogoutOthers() {
	m := session.New(memstore.New(memstore.Options{}), session.Options{})
	defer m.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := session.From(r).Login(r.FormValue("user")); err != nil {
			http.Error(w, "could not log in", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("POST /logout-others", func(w http.ResponseWriter, r *http.Request) {
		if err := session.From(r).LogoutOthers(); err != nil {
			http.Error(w, "could not log out the other sessions", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		user, _ := session.From(r).Principal()
		fmt.Fprintf(w, "%q\n", user)
	})
	srv := serve(m, mux)
	defer srv.Close()

	laptop, phone := browser(srv), browser(srv)
	send(laptop, "POST", srv.URL+"/login", url.Values{"user": {"alice"}})
	send(phone, "POST", srv.URL+"/login", url.Values{"user": {"alice"}})
	send(laptop, "POST", srv.URL+"/logout-others", nil)
	fmt.Println("laptop:", send(laptop, "GET", srv.URL+"/me", nil))
	fmt.Println("phone:", send(phone, "GET", srv.URL+"/me", nil))
	// Output:
	// laptop: "alice"
	// phone: ""
}

// Revoke a user everywhere, for example after a password reset or when an
// account is suspended: O(1) in the store, whatever the number of
// sessions.
func ExampleManager_RevokePrincipal() {
	m := session.New(memstore.New(memstore.Options{}), session.Options{})
	defer m.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := session.From(r).Login(r.FormValue("user")); err != nil {
			http.Error(w, "could not log in", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /me", func(w http.ResponseWriter, r *http.Request) {
		user, _ := session.From(r).Principal()
		fmt.Fprintf(w, "%q\n", user)
	})
	srv := serve(m, mux)
	defer srv.Close()

	alice, bob := browser(srv), browser(srv)
	send(alice, "POST", srv.URL+"/login", url.Values{"user": {"alice"}})
	send(bob, "POST", srv.URL+"/login", url.Values{"user": {"bob"}})
	if err := m.RevokePrincipal(context.Background(), "alice"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("alice:", send(alice, "GET", srv.URL+"/me", nil))
	fmt.Println("bob:", send(bob, "GET", srv.URL+"/me", nil))
	// Output:
	// alice: ""
	// bob: "bob"
}

// A cross-origin form post (another site submitting to yours) is refused
// by http.CrossOriginProtection before it reaches the session.
func Example_crossOriginProtection() {
	m := session.New(memstore.New(memstore.Options{}), session.Options{})
	defer m.Close()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		if err := session.From(r).Login(r.FormValue("user")); err != nil {
			http.Error(w, "could not log in", http.StatusServiceUnavailable)
		}
	})
	srv := serve(m, mux)
	defer srv.Close()

	for _, site := range []string{"same-origin", "cross-site"} {
		req, _ := http.NewRequest("POST", srv.URL+"/login", strings.NewReader("user=alice"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Site", site) // as a browser sends it
		resp, err := srv.Client().Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Printf("%s: %d, session cookie set: %t\n", site, resp.StatusCode, len(resp.Cookies()) > 0)
	}
	// Output:
	// same-origin: 200, session cookie set: true
	// cross-site: 403, session cookie set: false
}
