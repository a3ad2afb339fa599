// Command upstream is the app behind the proxy benchmark (bench/proxy/run.sh):
// a small HTTP/1.1 server whose every response renews the session the
// request presents, as many web frameworks do — it writes the request's
// session cookie back in a Set-Cookie — so a guard proxy in front of it
// checks a session binding on the way in and on the way out of every
// request.
package main

import (
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
	body := []byte("<!doctype html><title>bench</title><p>" + strings.Repeat("hello ", 32) + "</p>\n")
	prefix := *cookie + "="
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie(*cookie); err == nil && c.Value != "" {
			w.Header()["Set-Cookie"] = []string{prefix + c.Value + "; Path=/; HttpOnly; SameSite=Lax"}
		}
		w.Header()["Content-Type"] = []string{"text/html; charset=utf-8"}
		w.Write(body)
	})
	if err := http.ListenAndServe(*listen, h); err != nil {
		fmt.Fprintln(os.Stderr, "upstream:", err)
		os.Exit(1)
	}
}
