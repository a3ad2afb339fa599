package demo

import (
	"encoding/json"
	"net/http"
	"sync"

	"github.com/cordon-sec/cordon/internal/jsonstr"
)

// The API's answers are {"user":...} and {"error":...}. They are encoded by
// hand, byte for byte as encoding/json.Marshal encodes userBody and errBody
// (FuzzAppendBody checks that), because whoami answers every request of a
// signed-in API client and Marshal costs several allocations each time.

// jsonCT is the Content-Type of every JSON answer.
const jsonCT = "application/json"

// bodyBufs recycles the buffers whoami's answers are encoded into (a Write must not
// keep its argument, so a buffer is free again once Write returns).
type bodyBufs struct{ pool sync.Pool }

func (p *bodyBufs) get() *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 256)
	return &b
}

func (p *bodyBufs) put(b *[]byte) {
	if cap(*b) <= 4<<10 { // keep the pool's buffers small
		p.pool.Put(b)
	}
}

// writeJSON answers v with code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, ok := appendBody(make([]byte, 0, 64), v)
	if !ok {
		code, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`+"\n")
	}
	w.Header()["Content-Type"] = []string{jsonCT}
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeUser answers 200 with {"user":principal}, or {"user":null} for
// nobody (""), encoded into a buffer from bufs: whoami's answer.
func writeUser(w http.ResponseWriter, bufs *bodyBufs, principal string) {
	bp := bufs.get()
	defer bufs.put(bp)
	var user *string
	if principal != "" {
		user = &principal
	}
	b := appendUser((*bp)[:0], user)
	*bp = b
	w.Header()["Content-Type"] = []string{jsonCT}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// appendBody appends v as JSON and a newline. It reports false if v could
// not be encoded.
func appendBody(dst []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case userBody:
		return appendUser(dst, v.User), true
	case errBody:
		dst = append(dst, `{"error":`...)
		dst = appendJSONString(dst, v.Error)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return dst, false
		}
		return append(append(dst, b...), '\n'), true
	}
	return append(dst, '}', '\n'), true
}

// appendUser appends userBody{User: user} as JSON and a newline.
func appendUser(dst []byte, user *string) []byte {
	dst = append(dst, `{"user":`...)
	if user == nil {
		dst = append(dst, "null"...)
	} else {
		dst = appendJSONString(dst, *user)
	}
	return append(dst, '}', '\n')
}

// appendJSONString appends s quoted as encoding/json.Marshal quotes it
// (safe inside HTML).
func appendJSONString(dst []byte, s string) []byte { return jsonstr.Append(dst, s, jsonstr.Marshal) }
