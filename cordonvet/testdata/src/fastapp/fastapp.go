package fastapp

import (
	"bytes"
	"log"
	"sync"

	"github.com/valyala/fasthttp"
)

var lastBody []byte

type Tracker struct {
	mu      sync.Mutex
	cookies map[string][]byte
	queue   chan []byte
	ctxs    []*fasthttp.RequestCtx
}

func process(b []byte) {}

func ctxBug(ctx *fasthttp.RequestCtx) {
	go func() { // want `closure capturing \*fasthttp.RequestCtx ctx \(parameter of ctxBug\) escapes its request: captured by a goroutine.*fasthttp reuses RequestCtx`
		ctx.SetStatusCode(200)
	}()
}

func bodyBug(ctx *fasthttp.RequestCtx) {
	body := ctx.PostBody()
	go process(body) // want `\[\]byte body \(from ctx.PostBody\(\) \(borrowed from \*fasthttp.RequestCtx ctx .* captured by a goroutine.*bytes.Clone`
}

func globalBodyBug(ctx *fasthttp.RequestCtx) {
	lastBody = ctx.Request.Body() // want `\[\]byte ctx.Request.Body\(\) \(borrowed .* stored in package variable lastBody`
}

func (t *Tracker) handle(ctx *fasthttp.RequestCtx) {
	sid := ctx.Request.Header.Cookie("sid")
	t.mu.Lock()
	t.cookies[string(sid)] = sid // want `\[\]byte sid .*Cookie.*borrowed.* a field of the receiver t`
	t.mu.Unlock()
	q := ctx.QueryArgs().Peek("q")
	t.queue <- q                 // want `\[\]byte q .*Peek.*borrowed.* sent on channel t.queue`
	t.ctxs = append(t.ctxs, ctx) // want `\*fasthttp.RequestCtx ctx .* a field of the receiver t`
	tail := q[1:]
	go process(tail) // want `borrowed`
}

// ---- safe ----

func (t *Tracker) safeCopies(ctx *fasthttp.RequestCtx) {
	sid := string(ctx.Request.Header.Cookie("sid"))
	body := bytes.Clone(ctx.PostBody())
	q := append([]byte(nil), ctx.QueryArgs().Peek("q")...)
	t.mu.Lock()
	t.cookies[sid] = body
	t.mu.Unlock()
	t.queue <- q
	go process(body)
	ua := string(ctx.Request.Header.UserAgent())
	go log.Println(ua)
}

func safeSameRequest(ctx *fasthttp.RequestCtx) {
	ctx.SetUserValue("body", ctx.PostBody())
	process(ctx.PostBody())
}
