// Package echo is a minimal stand-in for github.com/labstack/echo/v4.
package echo

import "net/http"

type Response struct {
	Writer http.ResponseWriter
}

type Context interface {
	Request() *http.Request
	Response() *Response
	Path() string
	Param(name string) string
	QueryParam(name string) string
	JSON(code int, i any) error
	String(code int, s string) error
	Set(key string, val any)
	Get(key string) any
}

type HandlerFunc func(c Context) error

type Echo struct{}

func New() *Echo                               { return &Echo{} }
func (e *Echo) GET(path string, h HandlerFunc) {}
