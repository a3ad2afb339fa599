// Command bare answers GET /api/whoami as `cordon demo` does, with the
// same JSON body, from a plain net/http handler with no sessions: the
// baseline BenchmarkWhoami compares the demo with. It prints the URL it
// serves on as the demo does.
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
)

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/whoami", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			User *string `json:"user"`
		}
		if c, err := r.Cookie("session"); err == nil && c.Value != "" {
			u := "bench"
			body.User = &u
		}
		b, _ := json.Marshal(body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(append(b, '\n'))
	})
	fmt.Printf("cordon demo: serving on http://%s/\n", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
