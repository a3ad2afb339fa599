package ginapp

import (
	"log"
	"sync"
	"time"

	"github.com/cordon-sec/cordon/scope"
	"github.com/gin-gonic/gin"
	"golang.org/x/sync/errgroup"
)

var recent []*gin.Context

type API struct {
	mu   sync.Mutex
	last *gin.Context
	jobs chan func()
}

func sendMail(to string) {}

func asyncBug(c *gin.Context) {
	go func() { // want `closure capturing \*gin.Context c \(parameter of asyncBug\) escapes its request: captured by a goroutine.*fix: take c.Copy\(\)`
		time.Sleep(time.Second)
		log.Println("done", c.Request.URL.Path)
	}()
	c.JSON(200, gin.H{"ok": true})
}

func copyAfterGoroutineStartsBug(c *gin.Context) {
	go func() { // want `captured by a goroutine`
		cp := c.Copy()
		log.Println(cp.Request.URL.Path)
	}()
}

func requestOfGinBug(c *gin.Context) {
	req := c.Request
	go func() { log.Println(req.URL.Path) }() // want `\*http.Request req \(from c.Request \(from \*gin.Context c`
}

func ginContextAsContextBug(c *gin.Context) {
	ctx := c.Request.Context()
	go func() { <-ctx.Done() }() // want `request context`
}

func globalSliceBug(c *gin.Context) {
	recent = append(recent, c) // want `stored in package variable recent`
}

func (a *API) handle(c *gin.Context) {
	a.mu.Lock()
	a.last = c // want `a field of the receiver a`
	a.mu.Unlock()
	a.jobs <- func() { c.String(200, "late") } // want `closure capturing \*gin.Context c .* sent on channel a.jobs`
}

// ---- safe ----

func asyncCopy(c *gin.Context) {
	cCp := c.Copy()
	go func() {
		time.Sleep(time.Second)
		log.Println("done", cCp.Request.URL.Path)
	}()
	go func(c *gin.Context) { log.Println(c.Param("id")) }(c.Copy())
}

func plainValues(c *gin.Context) {
	id, ip := c.Param("id"), c.ClientIP()
	go func() { sendMail(id + ip) }()
}

func joinedErrgroup(c *gin.Context) {
	var g errgroup.Group
	g.Go(func() error { c.Set("a", 1); return nil })
	g.Go(func() error { log.Println(c.Query("q")); return nil })
	if err := g.Wait(); err != nil {
		c.AbortWithStatus(500)
	}
}

func setOnContext(c *gin.Context) {
	c.Set("request", c.Request)
	ctx := scope.Detach(c.Request.Context())
	go func() { <-ctx.Done() }()
}

func reassignedCopy(c *gin.Context) {
	c = c.Copy()
	go func() { log.Println(c.Param("id")) }()
}

func reassignedBack(c *gin.Context, orig *gin.Context) {
	c = c.Copy()
	c = orig
	go func() { log.Println(c.Param("id")) }() // want `captured by a goroutine`
}
