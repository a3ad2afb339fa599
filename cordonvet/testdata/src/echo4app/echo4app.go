package echo4app

import (
	"log"
	"sync"

	"github.com/labstack/echo/v4"
)

var pending = map[string]echo.Context{}

type Hub struct {
	mu   sync.Mutex
	subs map[string]func(string)
}

func (h *Hub) Subscribe(topic string, f func(string)) func() { return func() {} }

func notify(msg string) {}

func asyncBug(c echo.Context) error {
	go func() { // want `closure capturing echo.Context c \(parameter of asyncBug\) escapes its request: captured by a goroutine`
		_ = c.JSON(200, "late")
	}()
	return nil
}

func mapBug(c echo.Context) error {
	pending[c.Param("id")] = c // want `echo.Context c .* stored in pending\[c.Param\("id"\)\], reachable from package variable pending`
	return nil
}

func subscribeBug(h *Hub) echo.HandlerFunc {
	return func(c echo.Context) error {
		h.Subscribe("news", func(m string) { _ = c.String(200, m) }) // want `closure capturing echo.Context c .* registered via Subscribe with h \(captured from outside the handler\)`
		return nil
	}
}

func requestBug(c echo.Context) error {
	r := c.Request()
	go func() { log.Println(r.URL.Path) }() // want `\*http.Request .* escapes its request: captured by a goroutine`
	return nil
}

// ---- safe ----

func plainCopy(c echo.Context) error {
	id := c.Param("id")
	go notify(id)
	return c.String(200, "ok")
}

func subscribeUnsubscribed(h *Hub) echo.HandlerFunc {
	return func(c echo.Context) error {
		unsub := h.Subscribe("news", func(m string) { _ = c.String(200, m) })
		defer unsub()
		return nil
	}
}

func syncHelper(c echo.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.Set("k", 1) }()
	wg.Wait()
	return nil
}
