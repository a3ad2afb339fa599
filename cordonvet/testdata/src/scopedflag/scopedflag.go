// Package scopedflag is checked with and without -scoped and
// -strict-withoutcancel.
package scopedflag

import (
	"context"
	"net/http"

	"example.com/authn"
)

func use(u *authn.User)                    {}
func audit(ctx context.Context, id string) {}

// The user row is plain data unless -scoped names its type.
func userGoroutine(w http.ResponseWriter, r *http.Request) {
	u := authn.LoadUser(r.Context(), r.PathValue("id"))
	go use(u)
}

// Accepted unless -strict-withoutcancel.
func detached(w http.ResponseWriter, r *http.Request) {
	go audit(context.WithoutCancel(r.Context()), r.PathValue("id"))
}
