package corpus

import (
	"net/http"

	"example.com/ws"
)

var upgrader = &ws.Upgrader{}

type wsSession struct {
	Request *http.Request
	conn    *ws.Conn
	out     chan []byte
}

func (s *wsSession) writePump() {
	for b := range s.out {
		_ = s.conn.WriteMessage(b)
	}
}

type wsHub struct{ register, unregister chan *wsSession }

var sockets = &wsHub{register: make(chan *wsSession), unregister: make(chan *wsSession)}

// SafeWebsocketSessionKeepsRequest upgrades the connection, then keeps the
// request in the session for the connection's life: net/http no longer
// owns the request once the connection is hijacked.
func SafeWebsocketSessionKeepsRequest(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s := &wsSession{Request: r, conn: conn, out: make(chan []byte, 8)}
	sockets.register <- s
	go s.writePump()
	for {
		if _, err := conn.ReadMessage(); err != nil {
			break
		}
	}
	sockets.unregister <- s
	close(s.out)
}

// BugSessionKeepsRequestNoUpgrade keeps the request in a long-lived
// session without taking the connection over.
func BugSessionKeepsRequestNoUpgrade(w http.ResponseWriter, r *http.Request) {
	s := &wsSession{Request: r, out: make(chan []byte, 8)}
	sockets.register <- s
	go s.writePump()
}

// BugWebsocketKeepsWriter keeps the ResponseWriter after the upgrade,
// when it can no longer be used.
func BugWebsocketKeepsWriter(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	go func() {
		_ = conn.WriteMessage([]byte("hi"))
		w.WriteHeader(http.StatusOK)
	}()
}

// SafeWebsocketConnGoroutine hands only the hijacked connection to the
// pump goroutine (gorilla's chat example).
func SafeWebsocketConnGoroutine(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	go func() { _ = conn.WriteMessage([]byte("hi")) }()
}
