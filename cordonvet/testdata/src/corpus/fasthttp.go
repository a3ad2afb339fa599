package corpus

import (
	"bytes"

	"github.com/valyala/fasthttp"
)

// BugFastUploadBody processes the body after the handler returned; fasthttp
// reuses the buffer for the next request.
func BugFastUploadBody(ctx *fasthttp.RequestCtx) {
	body := ctx.PostBody()
	go process(body)
	ctx.SetStatusCode(202)
}

var fastSessions = map[string][]byte{}

// BugFastCookieMap keeps the borrowed cookie bytes in a global map.
func BugFastCookieMap(ctx *fasthttp.RequestCtx) {
	sid := ctx.Request.Header.Cookie("sid")
	mu.Lock()
	fastSessions[string(sid)] = sid
	mu.Unlock()
}

// BugFastCtxGoroutine writes to the RequestCtx from a goroutine.
func BugFastCtxGoroutine(ctx *fasthttp.RequestCtx) {
	go func() {
		ctx.SetBodyString("late")
	}()
}

// SafeFastCopyBody copies the body before handing it off.
func SafeFastCopyBody(ctx *fasthttp.RequestCtx) {
	body := append([]byte(nil), ctx.PostBody()...)
	go process(body)
	ctx.SetStatusCode(202)
}

// SafeFastStringCookie keeps a string copy of the cookie.
func SafeFastStringCookie(ctx *fasthttp.RequestCtx) {
	sid := string(ctx.Request.Header.Cookie("sid"))
	mu.Lock()
	fastSessions[sid] = []byte("seen")
	mu.Unlock()
}

// SafeFastBytesClone clones the query value for the goroutine.
func SafeFastBytesClone(ctx *fasthttp.RequestCtx) {
	q := bytes.Clone(ctx.QueryArgs().Peek("q"))
	go process(q)
}
