// Package session is a minimal stand-in for cordon's session package.
package session

import (
	"context"
	"net/http"
)

type Session struct{ principal string }

func From(r *http.Request) *Session               { return nil }
func FromContext(ctx context.Context) *Session    { return nil }
func (s *Session) Principal() string              { return s.principal }
func (s *Session) Get(key string) (string, error) { return "", nil }
func (s *Session) Put(key, value string) error    { return nil }
func (s *Session) RenewToken() error              { return nil }
