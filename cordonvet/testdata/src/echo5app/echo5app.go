package echo5app

import (
	"log"
	"time"

	"github.com/labstack/echo/v5"
)

var lastCtx *echo.Context

func notify(msg string) {}

func asyncBug(c *echo.Context) error {
	go func() { // want `closure capturing echo.Context c \(parameter of asyncBug\) escapes its request: captured by a goroutine`
		log.Println(c.Param("id"))
	}()
	return nil
}

func globalBug(c *echo.Context) error {
	lastCtx = c // want `echo.Context c .* stored in package variable lastCtx`
	return nil
}

func afterBug(c *echo.Context) error {
	time.AfterFunc(time.Second, func() { _ = c.String(200, "late") }) // want `registered with time.AfterFunc`
	return nil
}

// ---- safe ----

func plainCopy(c *echo.Context) error {
	id := c.Param("id")
	go notify(id)
	return c.String(200, "ok")
}

func joined(c *echo.Context) error {
	done := make(chan struct{})
	go func() { log.Println(c.Param("id")); close(done) }()
	<-done
	return nil
}
