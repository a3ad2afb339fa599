// Package echo is a minimal stand-in for github.com/labstack/echo/v5, whose
// Context is a struct.
package echo

import "net/http"

type Context struct {
	request *http.Request
}

func (c *Context) Request() *http.Request          { return c.request }
func (c *Context) Param(name string) string        { return "" }
func (c *Context) QueryParam(name string) string   { return "" }
func (c *Context) JSON(code int, i any) error      { return nil }
func (c *Context) String(code int, s string) error { return nil }
func (c *Context) Set(key string, val any)         {}
func (c *Context) Get(key string) any              { return nil }

type HandlerFunc func(c *Context) error

type Echo struct{}

func New() *Echo                               { return &Echo{} }
func (e *Echo) GET(path string, h HandlerFunc) {}
