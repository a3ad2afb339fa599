// Package ws is a websocket library stand-in, for the corpus.
package ws

import "net/http"

// Conn is a hijacked connection; it outlives the handler by design.
type Conn struct{}

func (c *Conn) WriteMessage(b []byte) error  { return nil }
func (c *Conn) ReadMessage() ([]byte, error) { return nil, nil }

// Upgrader upgrades an HTTP request to a websocket connection.
type Upgrader struct{}

func (u *Upgrader) Upgrade(w http.ResponseWriter, r *http.Request, h http.Header) (*Conn, error) {
	return &Conn{}, nil
}
