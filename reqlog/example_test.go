package reqlog_test

import (
	"fmt"
	"log"
	"net/http"
	"net/netip"
	"strings"

	"github.com/cordon-sec/cordon/reqlog"
)

// Log every request of an application behind a load balancer in 10.0.0.0/8.
func ExampleMiddleware() {
	w, err := reqlog.Open("requests.log", reqlog.WriterOptions{}) // "-" for stdout
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close() // after the server has stopped: writes out every line

	opt := reqlog.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	app := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		// The session layer annotates the request's record.
		reqlog.FromContext(r.Context()).View("u_1842")
		fmt.Fprintln(rw, "hello")
	})
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: reqlog.Middleware(w, opt)(app)}
	_ = srv // srv.ListenAndServe(), then srv.Shutdown(ctx) before w.Close()
}

// The session manager and the proxy resolve the client address exactly as
// the log does.
func ExampleOptions_ClientIP() {
	opt := reqlog.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
	r, _ := http.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.2:40000" // the load balancer
	r.Header.Set("X-Forwarded-For", "6.6.6.6, 203.0.113.9")
	fmt.Println(opt.ClientIP(r))

	r.RemoteAddr = "198.51.100.7:40000" // not a trusted proxy: the header is ignored
	fmt.Println(opt.ClientIP(r))
	// Output:
	// 203.0.113.9
	// 198.51.100.7
}

// Read a log back, for tests and small tools.
func ExampleReadLines() {
	log := `{"v":1,"ts":"2021-03-02T17:04:05.123456Z","dur_ms":12.5,"req":"9f0c","host":"web-7","pid":4121,"seq":88123,"ip":"203.0.113.9","method":"GET","path":"/notifications","status":200,"uid_view":"u_1842","sid_out":"a91c","uid_out":"u_77"}
`
	lines, err := reqlog.ReadLines(strings.NewReader(log))
	if err != nil {
		panic(err)
	}
	for _, l := range lines {
		if l.UidOut != "" && l.UidOut != l.UidView {
			fmt.Printf("seq %d: body for %s, cookie for %s\n", l.Seq, l.UidView, l.UidOut)
		}
	}
	// Output: seq 88123: body for u_1842, cookie for u_77
}
