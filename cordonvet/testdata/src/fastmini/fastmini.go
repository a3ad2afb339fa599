// Package fastmini imports nothing but the fasthttp stand-in, so that
// analysistest.Run, which type-checks every dependency from source, stays
// fast.
package fastmini

import "github.com/valyala/fasthttp"

var kept []byte

var queue = make(chan *fasthttp.RequestCtx, 1)

func bodyBug(ctx *fasthttp.RequestCtx) {
	kept = ctx.PostBody() // want `\[\]byte ctx.PostBody\(\) \(borrowed from \*fasthttp.RequestCtx ctx .* stored in package variable kept`
	queue <- ctx          // want `\*fasthttp.RequestCtx ctx .* sent on channel queue`
	go func() {           // want `closure capturing \*fasthttp.RequestCtx ctx .* captured by a goroutine`
		ctx.SetStatusCode(500)
	}()
}

func safeCopy(ctx *fasthttp.RequestCtx) {
	kept = append([]byte(nil), ctx.PostBody()...)
	s := string(ctx.QueryArgs().Peek("q"))
	go func() { _ = s }()
	done := make(chan struct{})
	go func() { ctx.SetStatusCode(200); close(done) }()
	<-done
}
