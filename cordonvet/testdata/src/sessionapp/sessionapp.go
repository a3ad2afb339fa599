package sessionapp

import (
	"context"
	"net/http"
	"time"

	"github.com/cordon-sec/cordon/scope"
	"github.com/cordon-sec/cordon/session"
)

type Cache struct{}

func (c *Cache) Set(key string, v any, ttl time.Duration) {}
func (c *Cache) Delete(key string)                        {}

var sessions = &Cache{}

func audit(ctx context.Context, who string) {}

func refreshBug(w http.ResponseWriter, r *http.Request) {
	sess := session.From(r)
	go func() { // want `closure capturing \*session.Session sess .* escapes its request: captured by a goroutine.*sealed`
		time.Sleep(time.Minute)
		_ = sess.RenewToken()
	}()
}

func cacheBug(w http.ResponseWriter, r *http.Request) {
	sess := session.FromContext(r.Context())
	sessions.Set(sess.Principal(), sess, time.Hour) // want `\*session.Session sess .* registered via Set with sessions \(package variable sessions\)`
}

// ---- safe ----

func auditCopy(w http.ResponseWriter, r *http.Request) {
	sess := session.From(r)
	user := sess.Principal()
	go func(ctx context.Context) { audit(ctx, user) }(scope.Detach(r.Context()))
	sessions.Set(user, user, time.Hour)
}

func cacheRemoved(w http.ResponseWriter, r *http.Request) {
	sess := session.From(r)
	sessions.Set("current", sess, time.Hour)
	defer sessions.Delete("current")
}
