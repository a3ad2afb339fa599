// Package fasthttp is a minimal stand-in for github.com/valyala/fasthttp.
package fasthttp

type Args struct{ buf []byte }

func (a *Args) Peek(key string) []byte { return a.buf }
func (a *Args) Has(key string) bool    { return false }

type RequestHeader struct{ buf []byte }

func (h *RequestHeader) Cookie(key string) []byte { return h.buf }
func (h *RequestHeader) Peek(key string) []byte   { return h.buf }
func (h *RequestHeader) UserAgent() []byte        { return h.buf }

type Request struct {
	Header RequestHeader
	body   []byte
}

func (r *Request) Body() []byte { return r.body }

type Response struct{}

func (r *Response) SetBody(b []byte) {}

type RequestCtx struct {
	Request  Request
	Response Response
	args     Args
}

func (c *RequestCtx) PostBody() []byte                  { return c.Request.body }
func (c *RequestCtx) Path() []byte                      { return nil }
func (c *RequestCtx) QueryArgs() *Args                  { return &c.args }
func (c *RequestCtx) UserValue(key any) any             { return nil }
func (c *RequestCtx) SetUserValue(key any, v any)       {}
func (c *RequestCtx) SetBodyString(s string)            {}
func (c *RequestCtx) WriteString(s string) (int, error) { return 0, nil }
func (c *RequestCtx) SetStatusCode(code int)            {}

type RequestHandler func(ctx *RequestCtx)

const StatusServiceUnavailable = 503

func (a *Args) AppendBytes(dst []byte) []byte                   { return append(dst, a.buf...) }
func (c *RequestCtx) TimeoutError(msg string)                   {}
func (c *RequestCtx) TimeoutErrorWithCode(msg string, code int) {}
func (c *RequestCtx) TimeoutErrorWithResponse(resp *Response)   {}
