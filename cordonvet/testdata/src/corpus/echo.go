package corpus

import (
	"log"
	"sync"

	echo4 "github.com/labstack/echo/v4"
	echo5 "github.com/labstack/echo/v5"
)

// BugEchoSubscribeNoUnsub subscribes a closure answering on c and never
// unsubscribes.
func BugEchoSubscribeNoUnsub(c echo4.Context) error {
	bus.Subscribe("price", func(m string) { _ = c.String(200, m) })
	return nil
}

var inspect = make(chan any, 10)

// BugEchoRequestChannel sends the request to an inspector goroutine.
func BugEchoRequestChannel(c echo4.Context) error {
	inspect <- c.Request()
	return c.String(200, "ok")
}

// BugEcho5Goroutine answers from a goroutine after the handler returned.
func BugEcho5Goroutine(c *echo5.Context) error {
	go func() {
		_ = c.JSON(200, map[string]string{"late": "yes"})
	}()
	return nil
}

// SafeEchoParamCopy copies the parameter first.
func SafeEchoParamCopy(c echo4.Context) error {
	id := c.Param("id")
	go notify(id)
	return c.String(202, "queued")
}

// SafeEchoUnsubscribed removes its subscription before returning.
func SafeEchoUnsubscribed(c echo4.Context) error {
	msgs := make(chan string, 1)
	unsub := bus.Subscribe("price", func(m string) { msgs <- m; log.Println(c.Path()) })
	defer unsub()
	return c.String(200, <-msgs)
}

// SafeEcho5WaitGroup waits for its helper goroutine.
func SafeEcho5WaitGroup(c *echo5.Context) error {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.Set("warm", true)
	}()
	wg.Wait()
	return c.String(200, "ok")
}
