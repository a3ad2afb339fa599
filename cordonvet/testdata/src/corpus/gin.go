package corpus

import (
	"log"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"golang.org/x/sync/errgroup"
)

// BugGinAsyncEmail is the pattern gin's documentation warns about: the
// goroutine uses the original context.
func BugGinAsyncEmail(c *gin.Context) {
	go func() {
		time.Sleep(time.Second)
		sendWelcome(c.Query("email"))
	}()
	c.JSON(202, gin.H{"queued": true})
}

// BugGinErrgroupNoWait starts errgroup work and never waits.
func BugGinErrgroupNoWait(c *gin.Context) {
	var g errgroup.Group
	g.Go(func() error {
		notify(c.Param("id"))
		return nil
	})
	c.Status(204)
}

// Notifier keeps the last context to answer on later.
type Notifier struct {
	mu   sync.Mutex
	last *gin.Context
}

// BugGinKeepContext stores the gin context in the long-lived handler.
func (n *Notifier) BugGinKeepContext(c *gin.Context) {
	n.mu.Lock()
	n.last = c
	n.mu.Unlock()
}

// BugGinRequestContextWorker hands the request's context to background
// work: it is cancelled as soon as the response is written, and its values
// (the session among them) stay reachable for as long as the work runs.
func BugGinRequestContextWorker(c *gin.Context) {
	ctx := c.Request.Context()
	id := c.Param("id")
	go func() {
		if err := reindex(ctx, id); err != nil {
			log.Println("reindex", id, err)
		}
	}()
	c.Status(202)
}

// SafeGinCopy is gin's documented fix: copy before the goroutine.
func SafeGinCopy(c *gin.Context) {
	cCp := c.Copy()
	go func() {
		time.Sleep(time.Second)
		log.Println("done", cCp.Request.URL.Path)
	}()
}

// SafeGinCopyArg passes the copy as the goroutine's argument.
func SafeGinCopyArg(c *gin.Context) {
	go func(c *gin.Context) {
		sendWelcome(c.Query("email"))
	}(c.Copy())
}

// SafeGinParamCopy copies plain values only.
func SafeGinParamCopy(c *gin.Context) {
	id, ip := c.Param("id"), c.ClientIP()
	go func() { notify(id + " from " + ip) }()
	c.Status(202)
}

// SafeGinSetSameRequest stores request data on the request's own context.
func SafeGinSetSameRequest(c *gin.Context) {
	c.Set("req", c.Request)
	c.Set("started", time.Now())
	c.Next()
}
