// Package gin is a minimal stand-in for github.com/gin-gonic/gin.
package gin

import "net/http"

type ResponseWriter interface {
	http.ResponseWriter
}

type H map[string]any

type Context struct {
	Request *http.Request
	Writer  ResponseWriter
	Keys    map[string]any
}

func (c *Context) Copy() *Context                      { cp := *c; return &cp }
func (c *Context) JSON(code int, obj any)              {}
func (c *Context) String(code int, f string, v ...any) {}
func (c *Context) Param(k string) string               { return "" }
func (c *Context) Query(k string) string               { return "" }
func (c *Context) GetHeader(k string) string           { return "" }
func (c *Context) ClientIP() string                    { return "" }
func (c *Context) Set(k string, v any)                 {}
func (c *Context) Get(k string) (any, bool)            { return nil, false }
func (c *Context) Next()                               {}
func (c *Context) AbortWithStatus(code int)            {}

type HandlerFunc func(*Context)

type Engine struct{}

func New() *Engine                                   { return &Engine{} }
func (e *Engine) GET(path string, h ...HandlerFunc)  {}
func (e *Engine) POST(path string, h ...HandlerFunc) {}
func (e *Engine) Use(h ...HandlerFunc)               {}

func (c *Context) Status(code int) {}
