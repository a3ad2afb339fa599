// Package authn looks up who is calling, for the corpus.
package authn

import (
	"context"
	"net/http"
)

// Grant is valid only during the request it was looked up for.
type Grant struct {
	ID  string
	req *http.Request
}

func (g *Grant) Touch() {}

// Lookup returns the request's grant.
func Lookup(r *http.Request) *Grant { return &Grant{req: r} }

// Visit is a per-request record an app names with //cordonvet:scoped.
type Visit struct {
	Path  string
	marks []string
}

func Begin(path string) *Visit { return &Visit{Path: path} }

// User is a row loaded from the database: plain data.
type User struct{ ID, Email string }

func LoadUser(ctx context.Context, id string) *User { return &User{ID: id} }

// Store hands out per-request sessions, like a cookie session library.
type Store struct{}

// Sess is valid for the request it was loaded for.
type Sess struct {
	Values map[string]string
	r      *http.Request
}

func (s *Sess) Save() error { return nil }

// Get loads the request's session.
func (s *Store) Get(r *http.Request, name string) (*Sess, error) { return &Sess{r: r}, nil }

// Sessions is the process-wide store.
var Sessions = &Store{}
