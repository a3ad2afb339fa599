package cordonvet

import (
	"go/types"
	"strings"
)

// Import paths of the frameworks whose request types are tracked. They are
// matched by path and type name, so the analyzer needs none of them as a
// dependency.
const (
	pathHTTP     = "net/http"
	pathGin      = "github.com/gin-gonic/gin"
	pathEcho4    = "github.com/labstack/echo/v4"
	pathEcho5    = "github.com/labstack/echo/v5"
	pathFasthttp = "github.com/valyala/fasthttp"
	pathSession  = "github.com/cordon-sec/cordon/session"
	pathScope    = "github.com/cordon-sec/cordon/scope"
	pathErrgroup = "golang.org/x/sync/errgroup"
)

// reqKind names a kind of request-scoped value.
type reqKind int

const (
	kindNone reqKind = iota
	kindRequest
	kindWriter
	kindContext // the request's context.Context
	kindGin
	kindEcho
	kindFasthttp
	kindFastBytes // a []byte borrowed from a *fasthttp.RequestCtx
	kindSession
	kindCustom // a type named by -scoped or //cordonvet:scoped, or inferred
)

func (k reqKind) String() string {
	switch k {
	case kindRequest:
		return "*http.Request"
	case kindWriter:
		return "http.ResponseWriter"
	case kindContext:
		return "request context"
	case kindGin:
		return "*gin.Context"
	case kindEcho:
		return "echo.Context"
	case kindFasthttp:
		return "*fasthttp.RequestCtx"
	case kindFastBytes:
		return "[]byte"
	case kindSession:
		return "*session.Session"
	case kindCustom:
		return "request-scoped value"
	}
	return "value"
}

// fix returns the advice for a value of this kind.
func (k reqKind) fix() string {
	switch k {
	case kindRequest:
		return "copy the fields you need (r.URL.Path, r.Header.Get(...)) into plain variables first"
	case kindWriter:
		return "write the response before the handler returns; never keep the ResponseWriter"
	case kindContext:
		return "use scope.Detach(ctx) (or context.Background()) and pass copied values"
	case kindGin:
		return "take c.Copy() (a detached copy) before the goroutine starts or the value is kept, or copy the plain values you need"
	case kindEcho:
		return "copy the plain values you need (c.Param(...), c.Request().URL.Path) first"
	case kindFasthttp:
		return "copy the plain values you need first; fasthttp reuses RequestCtx for the next request"
	case kindFastBytes:
		return "copy the bytes first (string(b) or bytes.Clone(b)); fasthttp reuses this buffer for the next request"
	case kindSession:
		return "copy the plain values you need (sess.Principal(), ...) first; the handle is sealed when the request ends"
	}
	return "copy the plain values you need first"
}

// kindOf returns the request-scoped kind of t: a built-in kind, or
// kindCustom for a type named by the -scoped flag, by a //cordonvet:scoped
// directive of the package, or inferred (see inferScoped).
func (a *state) kindOf(t types.Type) reqKind {
	if k := kindOfType(t); k != kindNone {
		return k
	}
	if a.scopedType(t) {
		return kindCustom
	}
	return kindNone
}

// namedOf returns the named type behind t or *t, or nil.
func namedOf(t types.Type) *types.Named {
	if t == nil {
		return nil
	}
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		t = p.Elem()
	}
	n, _ := types.Unalias(t).(*types.Named)
	return n
}

// typeKey is "importpath.Name" of a named type.
func typeKey(n *types.Named) string {
	if n == nil || n.Obj().Pkg() == nil {
		return ""
	}
	return n.Obj().Pkg().Path() + "." + n.Obj().Name()
}

// scopedType reports whether t (or *t) is a named type the user declared
// request-scoped, or one inferred so.
func (a *state) scopedType(t types.Type) bool {
	n := namedOf(t)
	if n == nil {
		return false
	}
	k := typeKey(n)
	return k != "" && a.scoped[k]
}

// kindOfType returns the built-in request-scoped kind of t, by package path
// and type name, or kindNone. context.Context and []byte are request-scoped
// only by where they come from, so they are not matched here.
func kindOfType(t types.Type) reqKind {
	if t == nil {
		return kindNone
	}
	ptr := false
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		t = p.Elem()
		ptr = true
	}
	n, ok := types.Unalias(t).(*types.Named)
	if !ok {
		return kindNone
	}
	obj := n.Obj()
	if obj.Pkg() == nil {
		return kindNone
	}
	path, name := obj.Pkg().Path(), obj.Name()
	switch {
	case path == pathHTTP && name == "Request" && ptr:
		return kindRequest
	case path == pathHTTP && name == "ResponseWriter" && !ptr:
		return kindWriter
	case path == pathGin && name == "Context" && ptr:
		return kindGin
	case (path == pathEcho4 || path == pathEcho5) && name == "Context":
		return kindEcho
	case path == pathFasthttp && name == "RequestCtx" && ptr:
		return kindFasthttp
	case path == pathSession && name == "Session":
		return kindSession
	}
	return kindNone
}

func isContextType(t types.Type) bool {
	n, ok := types.Unalias(t).(*types.Named)
	return ok && n.Obj().Pkg() != nil && n.Obj().Pkg().Path() == "context" && n.Obj().Name() == "Context"
}

func isByteSlice(t types.Type) bool {
	if t == nil {
		return false
	}
	s, ok := t.Underlying().(*types.Slice)
	if !ok {
		return false
	}
	b, ok := s.Elem().Underlying().(*types.Basic)
	return ok && b.Kind() == types.Byte
}

// isPlain reports whether values of type t are plain copies that cannot
// reference request memory: booleans, numbers, strings, and arrays and
// structs made only of those.
func isPlain(t types.Type) bool {
	return plain(t, 0)
}

func plain(t types.Type, depth int) bool {
	if t == nil || depth > 8 {
		return false
	}
	switch u := t.Underlying().(type) {
	case *types.Basic:
		return u.Kind() != types.UnsafePointer && u.Kind() != types.UntypedNil
	case *types.Array:
		return plain(u.Elem(), depth+1)
	case *types.Struct:
		for i := 0; i < u.NumFields(); i++ {
			if !plain(u.Field(i).Type(), depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

// inPkg reports whether obj belongs to the package with the given path.
func inPkg(obj types.Object, path string) bool {
	return obj != nil && obj.Pkg() != nil && obj.Pkg().Path() == path
}

// isStdlib reports whether the package path looks like the standard
// library's (no dot in its first element).
func isStdlib(path string) bool {
	first, _, _ := strings.Cut(path, "/")
	return !strings.Contains(first, ".")
}

// typeName returns a short name for t for messages.
func typeName(t types.Type) string {
	return types.TypeString(t, func(p *types.Package) string { return p.Name() })
}

// embedsOrWraps reports whether the struct type behind t embeds a
// request-scoped type, implements http.ResponseWriter, or implements a
// framework's request interface (echo's unexported context struct
// implements echo.Context): such a type is a per-request wrapper, and
// storing into its fields keeps the value inside the request.
func (a *state) embedsOrWraps(t types.Type) bool {
	if a.kindOf(t) != kindNone {
		return true
	}
	base := t
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		base = p.Elem()
	}
	if s, ok := base.Underlying().(*types.Struct); ok {
		for i := 0; i < s.NumFields(); i++ {
			f := s.Field(i)
			if f.Embedded() && a.kindOf(f.Type()) != kindNone {
				return true
			}
		}
	}
	// A type with Header, Write and WriteHeader methods wraps a writer.
	ms := types.NewMethodSet(types.NewPointer(base))
	has := func(name string) bool {
		for i := 0; i < ms.Len(); i++ {
			if ms.At(i).Obj().Name() == name {
				return true
			}
		}
		return false
	}
	if has("Header") && has("Write") && has("WriteHeader") {
		return true
	}
	// echo's context struct: a type of a framework package with the
	// request accessors of its Context interface.
	if n := namedOf(t); n != nil && n.Obj().Pkg() != nil {
		switch n.Obj().Pkg().Path() {
		case pathEcho4, pathEcho5, pathGin, pathFasthttp:
			return has("Request") || has("Response") || has("Param")
		}
	}
	return false
}
