// Command upstream is the app behind the proxy benchmark (bench/proxy/run.sh):
// a small Go JSON app, the kind of upstream a user puts cordon proxy in
// front of.
//
//	GET /        a small JSON answer (about 60 bytes), no cookie
//	GET /login   a small JSON answer and a fresh session in a Set-Cookie,
//	             on every response (a login, or a framework that issues
//	             a session to every anonymous visitor)
//	GET /renew   a small JSON answer that renews the session the request
//	             presents (writes it back in a Set-Cookie), as many
//	             frameworks do on every response
//	GET /big     a 64 KiB JSON body
package main

import (
	"crypto/rand"
	"encoding/base64"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	cookie := flag.String("session-cookie", "sid", "name of the app's session cookie")
	flag.Parse()
	small := []byte(`{"ok":true,"user":null,"items":[1,2,3],"msg":"hello, world"}` + "\n")
	big := []byte(`{"data":"` + strings.Repeat("x", 64<<10-12) + `"}` + "\n")
	prefix := *cookie + "="
	ctype := []string{"application/json"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = ctype
		w.Write(small)
	})
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) {
		var b [32]byte
		rand.Read(b[:])
		w.Header()["Set-Cookie"] = []string{prefix + base64.RawURLEncoding.EncodeToString(b[:]) + "; Path=/; HttpOnly; SameSite=Lax"}
		w.Header()["Content-Type"] = ctype
		w.Write(small)
	})
	mux.HandleFunc("GET /renew", func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(*cookie); err == nil && c.Value != "" {
			w.Header()["Set-Cookie"] = []string{prefix + c.Value + "; Path=/; HttpOnly; SameSite=Lax"}
		}
		w.Header()["Content-Type"] = ctype
		w.Write(small)
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = ctype
		w.Write(big)
	})
	if err := http.ListenAndServe(*listen, mux); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}
