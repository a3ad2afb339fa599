// Package ctxvalue is a context carrying one value, as context.WithValue
// makes one, as a type that a middleware can keep in the memory it
// allocates for a request anyway: one allocation fewer per request.
//
// The package imports nothing outside the standard library.
package ctxvalue

import "context"

// Context carries V under the key type K (an unexported struct type of the
// package that owns the value) over its parent, the embedded Context, as
// context.WithValue(parent, K{}, V) would. Set both fields before handing
// it on, and not after.
type Context[K comparable, V any] struct {
	context.Context
	V V
}

// Value returns c.V for a key of type K and asks the parent for any other.
func (c *Context[K, V]) Value(key any) any {
	if _, ok := key.(K); ok {
		return c.V
	}
	return c.Context.Value(key)
}
