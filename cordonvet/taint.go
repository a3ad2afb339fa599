package cordonvet

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"path/filepath"
	"strings"
)

// origin says which request-scoped value an expression holds and where it
// came from.
type origin struct {
	kind reqKind
	// param is set when the value came in through a parameter of the
	// function it is found in (directly or inside another value).
	param bool
	// desc names the value and its source, e.g. "*http.Request r (parameter
	// of Handler at h.go:12)".
	desc string
	// valuesOnly marks a context detached with context.WithoutCancel: it
	// is cancelled with nothing of the request, but still carries the
	// request's values. Handing it on is accepted; reading a request-scoped
	// value out of it (session.FromContext(ctx)) is not.
	valuesOnly bool
}

// label names a value of kind k and type t in messages: the kind, or for
// a named or inferred type the type itself.
func label(k reqKind, t types.Type) string {
	if k == kindCustom && t != nil {
		return typeName(t)
	}
	return k.String()
}

// with returns a copy of o with a new description.
func (o *origin) with(desc string) *origin {
	c := *o
	c.desc = desc
	return &c
}

// prefer returns the better of two origins to report: one that is
// request-scoped in itself over a WithoutCancel context.
func prefer(cur, o *origin) *origin {
	if cur == nil || (cur.valuesOnly && o != nil && !o.valuesOnly) {
		return o
	}
	return cur
}

func (a *state) where(pos token.Pos) string {
	p := a.pass.Fset.Position(pos)
	return fmt.Sprintf("%s:%d", filepath.Base(p.Filename), p.Line)
}

// funcName names a FuncDecl or FuncLit for messages.
func (a *state) funcName(n ast.Node) string {
	switch f := n.(type) {
	case *ast.FuncDecl:
		if f.Recv != nil && len(f.Recv.List) > 0 {
			return fmt.Sprintf("(%s).%s", typeName(a.pass.TypesInfo.TypeOf(f.Recv.List[0].Type)), f.Name.Name)
		}
		return f.Name.Name
	case *ast.FuncLit:
		return "func literal at " + a.where(f.Pos())
	}
	return "function"
}

// exprString renders e compactly for messages.
func exprString(e ast.Expr) string {
	s := types.ExprString(e)
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

// varOf returns the variable an identifier refers to, or nil.
func (a *state) varOf(id *ast.Ident) *types.Var {
	if id == nil {
		return nil
	}
	v, _ := a.pass.TypesInfo.ObjectOf(id).(*types.Var)
	return v
}

func (a *state) isPkgVar(v *types.Var) bool {
	return v != nil && !v.IsField() && v.Pkg() != nil && v.Parent() == v.Pkg().Scope()
}

// varTaint returns the origin of the request-scoped value v holds, if any.
func (a *state) varTaint(v *types.Var) *origin {
	if v == nil || v.IsField() {
		return nil
	}
	if o := a.tainted[v]; o != nil {
		return o
	}
	if a.detached[v] {
		return nil
	}
	k := a.kindOf(v.Type())
	if k == kindNone || a.isPkgVar(v) {
		return nil
	}
	if fn, ok := a.paramOf[v]; ok {
		if fd, ok := fn.(*ast.FuncDecl); ok && fd.Recv != nil && fd.Name.Name == "RoundTrip" && k == kindRequest {
			return nil // a RoundTripper's request is an outgoing one, owned by its caller
		}
		return &origin{kind: k, param: true, desc: fmt.Sprintf("%s %s (parameter of %s)", label(k, v.Type()), v.Name(), a.funcName(fn))}
	}
	return &origin{kind: k, desc: fmt.Sprintf("%s %s (declared at %s)", label(k, v.Type()), v.Name(), a.where(v.Pos()))}
}

// taintOf returns the origin of the request-scoped value e evaluates to or
// carries, or nil when e holds nothing of a request.
func (a *state) taintOf(e ast.Expr) *origin {
	return a.taintDepth(e, 0)
}

func (a *state) taintDepth(e ast.Expr, depth int) *origin {
	if e == nil || depth > 12 {
		return nil
	}
	info := a.pass.TypesInfo
	t := info.TypeOf(e)
	if t != nil && isPlain(t) {
		return nil
	}
	switch e := e.(type) {
	case *ast.ParenExpr:
		return a.taintDepth(e.X, depth+1)
	case *ast.Ident:
		v := a.varOf(e)
		if a.detachedAt(v, e.Pos()) {
			return nil
		}
		return a.varTaint(v)
	case *ast.SelectorExpr:
		return a.selectorTaint(e, t, depth)
	case *ast.CallExpr:
		return a.callTaint(e, t, depth)
	case *ast.FuncLit:
		return a.closureTaint(e, depth)
	case *ast.CompositeLit:
		var found *origin
		for _, el := range e.Elts {
			if kv, ok := el.(*ast.KeyValueExpr); ok {
				el = kv.Value
			}
			if o := a.taintDepth(el, depth+1); o != nil {
				found = prefer(found, o.with(fmt.Sprintf("%s carried in %s", o.desc, compositeName(e, t))))
				if !found.valuesOnly {
					break
				}
			}
		}
		return found
	case *ast.UnaryExpr:
		if e.Op == token.AND {
			return a.taintDepth(e.X, depth+1)
		}
		return nil
	case *ast.StarExpr:
		return a.taintDepth(e.X, depth+1)
	case *ast.IndexExpr:
		if k := a.kindOf(t); k != kindNone {
			return a.typedOrigin(e, k, depth)
		}
		return a.taintDepth(e.X, depth+1)
	case *ast.SliceExpr:
		return a.taintDepth(e.X, depth+1)
	case *ast.TypeAssertExpr:
		if k := a.kindOf(t); k != kindNone {
			return a.typedOrigin(e, k, depth)
		}
		return a.taintDepth(e.X, depth+1)
	}
	return nil
}

func compositeName(e *ast.CompositeLit, t types.Type) string {
	if e.Type != nil {
		return exprString(e.Type) + "{...}"
	}
	if t != nil {
		return typeName(t) + "{...}"
	}
	return "a composite value"
}

// typedOrigin is the origin of an expression whose static type is
// request-scoped: the origin of its root variable when that is tainted,
// otherwise the expression itself.
func (a *state) typedOrigin(e ast.Expr, k reqKind, depth int) *origin {
	if root := rootIdent(e); root != nil && root != e {
		if o := a.varTaint(a.varOf(root)); o != nil {
			return &origin{kind: k, param: o.param, desc: fmt.Sprintf("%s %s (from %s)", label(k, a.pass.TypesInfo.TypeOf(e)), exprString(e), o.desc)}
		}
	}
	fromParam := false
	if root := rootIdent(e); root != nil {
		if v := a.varOf(root); v != nil {
			_, fromParam = a.paramOf[v]
		}
	}
	return &origin{kind: k, param: fromParam, desc: fmt.Sprintf("%s %s (at %s)", label(k, a.pass.TypesInfo.TypeOf(e)), exprString(e), a.where(e.Pos()))}
}

// inferredOrigin infers that a call returns a request-scoped handle: a
// function outside the standard library that is given the request itself
// (*http.Request, *gin.Context, echo.Context, *fasthttp.RequestCtx or a
// named scoped type) and returns a pointer to a struct that holds a
// request-scoped field (authn.Lookup(r) *Grant, where Grant keeps r or the
// request's context). A pointer to a struct of plain or unrelated fields
// (a user loaded from the database) is not inferred.
func (a *state) inferredOrigin(call *ast.CallExpr, fn *types.Func, t types.Type, depth int) *origin {
	if fn == nil || fn.Pkg() == nil || isStdlib(fn.Pkg().Path()) {
		return nil
	}
	if _, ok := types.Unalias(t).(*types.Pointer); !ok {
		return nil
	}
	n := namedOf(t)
	// Types of this package are followed by the function summaries
	// (carries) instead.
	if n == nil || n.Obj().Pkg() == nil || n.Obj().Pkg() == a.pass.Pkg || isStdlib(n.Obj().Pkg().Path()) || !a.holdsScoped(n, 0) {
		return nil
	}
	for _, arg := range call.Args {
		at := a.pass.TypesInfo.TypeOf(arg)
		if k := a.kindOf(at); k == kindNone || k == kindContext || k == kindFastBytes {
			continue
		}
		if o := a.taintDepth(arg, depth+1); o != nil {
			return &origin{kind: kindCustom, param: o.param, valuesOnly: o.valuesOnly,
				desc: fmt.Sprintf("%s %s (returned for %s, which %s holds)", typeName(t), exprString(call), o.desc, typeName(t))}
		}
	}
	return nil
}

// carriedResult reports whether a variable of type t, given one result of
// rhs, may hold what a same-package constructor (carries) was given: not
// an error, a function or a plain value.
func (a *state) carriedResult(rhs ast.Expr, t types.Type) bool {
	call, ok := ast.Unparen(rhs).(*ast.CallExpr)
	if !ok {
		return false
	}
	fn := a.calleeFunc(call)
	if fn == nil || !a.carries[fn] || isPlain(t) || isFuncType(t) {
		return false
	}
	return !types.Identical(t, types.Universe.Lookup("error").Type())
}

// inferable reports whether t is a pointer to a struct outside the
// standard library that holds a request-scoped field (see inferredOrigin).
func (a *state) inferable(t types.Type) bool {
	if _, ok := types.Unalias(t).(*types.Pointer); !ok {
		return false
	}
	n := namedOf(t)
	return n != nil && n.Obj().Pkg() != nil && !isStdlib(n.Obj().Pkg().Path()) && a.holdsScoped(n, 0)
}

// holdsScoped reports whether the struct behind n has a field that is
// request-scoped, directly or one pointer or embedding down.
func (a *state) holdsScoped(n *types.Named, depth int) bool {
	if v, ok := a.inferCache[n]; ok {
		return v
	}
	a.inferCache[n] = false // cuts cycles
	s, ok := n.Underlying().(*types.Struct)
	if !ok {
		return false
	}
	res := false
	for i := 0; i < s.NumFields() && !res; i++ {
		ft := s.Field(i).Type()
		// A context field does not count: a connection or a worker keeps
		// a context of its own.
		if a.kindOf(ft) != kindNone {
			res = true
		} else if m := namedOf(ft); m != nil && depth < 1 && m.Obj().Pkg() != nil && !isStdlib(m.Obj().Pkg().Path()) {
			res = a.holdsScoped(m, depth+1)
		}
	}
	a.inferCache[n] = res
	return res
}

func (a *state) selectorTaint(e *ast.SelectorExpr, t types.Type, depth int) *origin {
	sel := a.pass.TypesInfo.Selections[e]
	if sel == nil {
		// A qualified identifier: pkg.Var.
		if v, ok := a.pass.TypesInfo.ObjectOf(e.Sel).(*types.Var); ok {
			return a.varTaint(v)
		}
		return nil
	}
	switch sel.Kind() {
	case types.MethodVal:
		// A method value bound to a request-scoped receiver keeps it.
		if o := a.taintDepth(e.X, depth+1); o != nil {
			return o.with(fmt.Sprintf("method value %s bound to %s", exprString(e), o.desc))
		}
		return nil
	case types.FieldVal:
		if k := a.kindOf(t); k != kindNone {
			return a.typedOrigin(e, k, depth)
		}
		recv := a.taintDepth(e.X, depth+1)
		if recv == nil {
			return nil
		}
		if isContextType(t) || isByteSlice(t) || isFuncType(t) || a.isLocalType(t) {
			return recv.with(fmt.Sprintf("%s (field of %s)", exprString(e), recv.desc))
		}
	}
	return nil
}

func isFuncType(t types.Type) bool {
	if t == nil {
		return false
	}
	_, ok := t.Underlying().(*types.Signature)
	return ok
}

// isLocalType reports whether t (or what it points to) is declared in the
// package under analysis, or is an empty interface: such a field of a
// tainted value carries the taint on.
func (a *state) isLocalType(t types.Type) bool {
	if t == nil {
		return false
	}
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		t = p.Elem()
	}
	if n, ok := types.Unalias(t).(*types.Named); ok {
		return n.Obj().Pkg() == a.pass.Pkg
	}
	if i, ok := t.Underlying().(*types.Interface); ok {
		return i.Empty()
	}
	switch t.Underlying().(type) {
	case *types.Slice, *types.Map, *types.Struct:
		return true
	}
	return false
}

// calleeFunc returns the function or method a call invokes, if static.
func (a *state) calleeFunc(call *ast.CallExpr) *types.Func {
	var id *ast.Ident
	switch f := ast.Unparen(call.Fun).(type) {
	case *ast.Ident:
		id = f
	case *ast.SelectorExpr:
		id = f.Sel
	case *ast.IndexExpr: // generic instantiation
		switch g := f.X.(type) {
		case *ast.Ident:
			id = g
		case *ast.SelectorExpr:
			id = g.Sel
		}
	}
	if id == nil {
		return nil
	}
	fn, _ := a.pass.TypesInfo.ObjectOf(id).(*types.Func)
	return fn
}

// isDetaching reports whether call returns a value detached from its
// request: gin's (*Context).Copy, context.Background/TODO, scope.Detach,
// and the copying helpers bytes.Clone, strings.Clone, slices.Clone.
func (a *state) isDetaching(call *ast.CallExpr) bool {
	fn := a.calleeFunc(call)
	if fn == nil {
		return false
	}
	name := fn.Name()
	sig, _ := fn.Type().(*types.Signature)
	isMethod := sig != nil && sig.Recv() != nil
	switch {
	case inPkg(fn, pathGin) && name == "Copy" && isMethod:
		return true
	case inPkg(fn, "context") && (name == "Background" || name == "TODO"):
		return true
	case inPkg(fn, pathScope) && name == "Detach":
		return true
	case (inPkg(fn, pathHTTP) || inPkg(fn, "net/http/httptest")) && (name == "NewRequest" || name == "NewRequestWithContext") && !isMethod:
		// An outgoing request this code builds is its own, not a request
		// being served.
		return true
	case inPkg(fn, "bytes") && name == "Clone", inPkg(fn, "strings") && name == "Clone", inPkg(fn, "slices") && name == "Clone" && !isMethod:
		if inPkg(fn, "slices") && len(call.Args) == 1 {
			// slices.Clone of []*http.Request still holds the requests.
			if t := a.pass.TypesInfo.TypeOf(call.Args[0]); t != nil {
				if s, ok := t.Underlying().(*types.Slice); ok && !isPlain(s.Elem()) {
					return false
				}
			}
		}
		return true
	}
	return false
}

func (a *state) callTaint(call *ast.CallExpr, t types.Type, depth int) *origin {
	info := a.pass.TypesInfo
	// Conversions: T(x).
	if tv, ok := info.Types[call.Fun]; ok && tv.IsType() {
		if len(call.Args) == 1 {
			return a.taintDepth(call.Args[0], depth+1)
		}
		return nil
	}
	// Builtins.
	if id, ok := ast.Unparen(call.Fun).(*ast.Ident); ok {
		if b, ok := info.ObjectOf(id).(*types.Builtin); ok {
			if b.Name() != "append" {
				return nil
			}
			for i, arg := range call.Args {
				if i == len(call.Args)-1 && call.Ellipsis.IsValid() && i > 0 {
					// append(dst, src...) copies src's elements.
					if at := info.TypeOf(arg); at != nil {
						if s, ok := at.Underlying().(*types.Slice); ok && isPlain(s.Elem()) {
							continue
						}
					}
				}
				if o := a.taintDepth(arg, depth+1); o != nil {
					return o
				}
			}
			return nil
		}
	}
	if a.isDetaching(call) {
		return nil
	}
	fn := a.calleeFunc(call)
	var recv ast.Expr
	if se, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr); ok {
		if sel := info.Selections[se]; sel != nil && sel.Kind() == types.MethodVal {
			recv = se.X
		}
	}
	// A request-scoped result type: session.From(r), c.Request(), ...
	if k := a.kindOf(t); k != kindNone {
		return a.typedOrigin(call, k, depth)
	}
	if o := a.inferredOrigin(call, fn, t, depth); o != nil {
		return o
	}
	if tup, ok := t.(*types.Tuple); ok {
		// Multi-value calls: tainted when they produce a context from a
		// request-scoped one (context.WithTimeout(r.Context(), d)).
		for i := 0; i < tup.Len(); i++ {
			if isContextType(tup.At(i).Type()) {
				return a.contextFromArgs(call, recv, depth)
			}
		}
		// sess, err := newSession(w, r): a same-package constructor.
		if fn != nil && a.carries[fn] {
			for _, arg := range call.Args {
				if o := a.taintDepth(arg, depth+1); o != nil {
					return o.with(fmt.Sprintf("%s carried in the result of %s", o.desc, exprString(call)))
				}
			}
		}
		// g, err := authn.LookupErr(r): an inferred handle among them.
		for i := 0; i < tup.Len(); i++ {
			if o := a.inferredOrigin(call, fn, tup.At(i).Type(), depth); o != nil {
				return o
			}
		}
		return nil
	}
	if fn != nil && a.carries[fn] {
		for _, arg := range call.Args {
			if o := a.taintDepth(arg, depth+1); o != nil {
				return o.with(fmt.Sprintf("%s carried in the result of %s", o.desc, exprString(call)))
			}
		}
	}
	switch {
	case isContextType(t):
		return a.contextFromArgs(call, recv, depth)
	case isByteSlice(t):
		// Bytes borrowed from fasthttp: ctx.PostBody(),
		// ctx.QueryArgs().Peek("q"), ctx.Request.Header.Cookie("s").
		if fn != nil && inPkg(fn, pathFasthttp) && recv != nil && strings.HasPrefix(fn.Name(), "Append") {
			// args.AppendBytes(dst), h.AppendBytes(dst): a copy appended
			// to the caller's own buffer.
			if len(call.Args) > 0 {
				return a.taintDepth(call.Args[0], depth+1)
			}
			return nil
		}
		if fn != nil && inPkg(fn, pathFasthttp) && recv != nil {
			if o := a.taintDepth(recv, depth+1); o != nil || a.rootTainted(recv) != nil {
				if o == nil {
					o = a.rootTainted(recv)
				}
				return &origin{kind: kindFastBytes, param: o.param, desc: fmt.Sprintf("%s %s (borrowed from %s)", kindFastBytes, exprString(call), o.desc)}
			}
		}
	case isFuncType(t):
		// A function returned by a method of a request-scoped value.
		if recv != nil {
			if o := a.taintDepth(recv, depth+1); o != nil {
				return o.with(fmt.Sprintf("function %s from %s", exprString(call), o.desc))
			}
		}
	}
	return nil
}

// detachedAt reports whether the last plain assignment to v before pos
// gave it a detached value: c = c.Copy() before the goroutine starts.
func (a *state) detachedAt(v *types.Var, pos token.Pos) bool {
	var last *assignAt
	for i, as := range a.assigns[v] {
		if as.pos < pos && (last == nil || as.pos > last.pos) {
			last = &a.assigns[v][i]
		}
	}
	return last != nil && last.detached
}

// rootTainted returns the taint of the variable at the root of a selector
// or call chain such as ctx.Request.Header.
func (a *state) rootTainted(e ast.Expr) *origin {
	if id := rootIdent(e); id != nil {
		return a.varTaint(a.varOf(id))
	}
	return nil
}

// contextFromArgs returns the origin of a context a call derives from a
// request-scoped value: r.Context(), c.Request.Context(),
// context.WithValue(ctx, k, v), errgroup.WithContext(ctx).
func (a *state) contextFromArgs(call *ast.CallExpr, recv ast.Expr, depth int) *origin {
	if recv != nil {
		if o := a.taintDepth(recv, depth+1); o != nil {
			if o.kind == kindContext {
				return o
			}
			return &origin{kind: kindContext, param: o.param, desc: fmt.Sprintf("request context %s (from %s)", exprString(call), o.desc)}
		}
	}
	var found *origin
	for _, arg := range call.Args {
		if !isContextType(a.pass.TypesInfo.TypeOf(arg)) && a.kindOf(a.pass.TypesInfo.TypeOf(arg)) == kindNone {
			continue
		}
		if o := a.taintDepth(arg, depth+1); o != nil {
			if o.kind != kindContext {
				o = &origin{kind: kindContext, param: o.param, desc: fmt.Sprintf("request context %s (from %s)", exprString(call), o.desc)}
			}
			found = prefer(found, o)
		}
	}
	if found != nil && !found.valuesOnly {
		if fn := a.calleeFunc(call); fn != nil && inPkg(fn, "context") && fn.Name() == "WithoutCancel" {
			found = found.with(fmt.Sprintf("request context %s (detached with context.WithoutCancel from %s, keeping its values)", exprString(call), found.desc))
			found.valuesOnly = true
		}
	}
	return found
}

// closureTaint returns the origin of the first request-scoped variable a
// function literal captures from outside itself.
func (a *state) closureTaint(lit *ast.FuncLit, depth int) *origin {
	var found *origin
	// Variables the literal only assigns (last = r in a handler) are
	// reported at the store; the literal does not carry them.
	written := map[*ast.Ident]bool{}
	ast.Inspect(lit.Body, func(n ast.Node) bool {
		if as, ok := n.(*ast.AssignStmt); ok && as.Tok == token.ASSIGN {
			for _, l := range as.Lhs {
				if id, ok := l.(*ast.Ident); ok {
					written[id] = true
				}
			}
		}
		return true
	})
	ast.Inspect(lit.Body, func(n ast.Node) bool {
		if found != nil && !found.valuesOnly {
			return false
		}
		id, ok := n.(*ast.Ident)
		if !ok || written[id] {
			return true
		}
		v := a.varOf(id)
		if v == nil || v.IsField() || a.isPkgVar(v) {
			return true
		}
		if v.Pos() >= lit.Pos() && v.Pos() < lit.End() {
			return true // declared inside the literal
		}
		if a.detachedAt(v, lit.Pos()) {
			return true
		}
		if o := a.varTaint(v); o != nil {
			if !strings.HasPrefix(o.desc, "closure capturing ") {
				o = o.with(fmt.Sprintf("closure capturing %s", o.desc))
			}
			found = prefer(found, o)
		}
		return true
	})
	return found
}

// rootIdent returns the identifier at the root of a selector, index, call
// or dereference chain (h in h.cache[k].m), or nil.
func rootIdent(e ast.Expr) *ast.Ident {
	for {
		switch x := e.(type) {
		case *ast.Ident:
			return x
		case *ast.SelectorExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.StarExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.CallExpr:
			e = x.Fun
		case *ast.SliceExpr:
			e = x.X
		case *ast.TypeAssertExpr:
			e = x.X
		case *ast.UnaryExpr:
			e = x.X
		default:
			return nil
		}
	}
}

// propagate computes, to a fixed point, which local variables hold
// request-scoped values, and records parameters, receivers and first
// definitions.
func (a *state) propagate() {
	info := a.pass.TypesInfo
	for _, f := range a.pass.Files {
		ast.Inspect(f, func(n ast.Node) bool {
			switch fn := n.(type) {
			case *ast.FuncDecl:
				a.recordParams(fn, fn.Type)
				if fn.Recv != nil {
					for _, fld := range fn.Recv.List {
						for _, name := range fld.Names {
							if v := a.varOf(name); v != nil {
								a.recvOf[v] = fn
							}
						}
					}
				}
			case *ast.FuncLit:
				a.recordParams(fn, fn.Type)
			case *ast.AssignStmt:
				if fn.Tok == token.ASSIGN && len(fn.Lhs) == len(fn.Rhs) {
					for i, l := range fn.Lhs {
						if id, ok := l.(*ast.Ident); ok {
							if v := a.varOf(id); v != nil && a.kindOf(v.Type()) != kindNone {
								call, isCall := ast.Unparen(fn.Rhs[i]).(*ast.CallExpr)
								a.assigns[v] = append(a.assigns[v], assignAt{pos: fn.Pos(), detached: isCall && a.isDetaching(call)})
							}
						}
					}
				}
				if fn.Tok == token.DEFINE {
					for i, l := range fn.Lhs {
						if id, ok := l.(*ast.Ident); ok {
							if v := a.varOf(id); v != nil && info.Defs[id] != nil {
								a.defs[v] = rhsFor(fn.Rhs, i, len(fn.Lhs))
							}
						}
					}
				}
			case *ast.ValueSpec:
				for i, id := range fn.Names {
					if v := a.varOf(id); v != nil {
						a.defs[v] = rhsFor(fn.Values, i, len(fn.Names))
					}
				}
			}
			return true
		})
	}
	for range 6 {
		changed := a.summarize()
		for _, f := range a.pass.Files {
			var stack []ast.Node
			ast.Inspect(f, func(n ast.Node) bool {
				if n == nil {
					stack = stack[:len(stack)-1]
					return true
				}
				stack = append(stack, n)
				switch s := n.(type) {
				case *ast.AssignStmt:
					if s.Tok != token.ASSIGN && s.Tok != token.DEFINE {
						return true
					}
					for i, l := range s.Lhs {
						rhs := rhsFor(s.Rhs, i, len(s.Lhs))
						if a.outerFromHandler(stack, l) {
							// x = r inside a handler literal, x declared
							// outside: reported as a store by the checker;
							// x does not make the enclosing function's
							// other uses request-scoped.
							continue
						}
						if a.flow(l, rhs, len(s.Rhs) == 1 && len(s.Lhs) > 1, s.Tok == token.DEFINE) {
							changed = true
						}
					}
				case *ast.ValueSpec:
					for i, id := range s.Names {
						rhs := rhsFor(s.Values, i, len(s.Names))
						if a.flow(id, rhs, len(s.Values) == 1 && len(s.Names) > 1, true) {
							changed = true
						}
					}
				case *ast.RangeStmt:
					if o := a.taintOf(s.X); o != nil {
						for _, l := range []ast.Expr{s.Key, s.Value} {
							if id, ok := l.(*ast.Ident); ok {
								if v := a.varOf(id); v != nil && !isPlain(v.Type()) && a.tainted[v] == nil {
									a.tainted[v] = o
									changed = true
								}
							}
						}
					}
				case *ast.CallExpr:
					// func(p T){...}(arg): p holds what arg holds.
					if lit, ok := ast.Unparen(s.Fun).(*ast.FuncLit); ok {
						if a.bindParams(lit, s.Args) {
							changed = true
						}
					}
				case *ast.GoStmt:
					if lit, ok := ast.Unparen(s.Call.Fun).(*ast.FuncLit); ok {
						if a.bindParams(lit, s.Call.Args) {
							changed = true
						}
					}
				}
				return true
			})
		}
		if !changed {
			break
		}
	}
}

// outerFromHandler reports whether l is rooted at a variable declared
// outside the innermost enclosing function literal that takes a
// request-scoped parameter (a handler literal).
func (a *state) outerFromHandler(stack []ast.Node, l ast.Expr) bool {
	root := rootIdent(l)
	if root == nil {
		return false
	}
	v := a.varOf(root)
	if v == nil {
		return false
	}
	for i := len(stack) - 1; i >= 0; i-- {
		lit, ok := stack[i].(*ast.FuncLit)
		if !ok || !a.hasRequestParam(lit.Type) {
			continue
		}
		return v.Pos() < lit.Pos() || v.Pos() >= lit.End()
	}
	return false
}

func (a *state) hasRequestParam(ft *ast.FuncType) bool {
	if ft.Params == nil {
		return false
	}
	for _, fld := range ft.Params.List {
		if a.kindOf(a.pass.TypesInfo.TypeOf(fld.Type)) != kindNone {
			return true
		}
	}
	return false
}

// summarize marks the package's functions that return request-scoped
// data taken from their parameters, and reports whether it marked any new
// one.
func (a *state) summarize() bool {
	changed := false
	for _, f := range a.pass.Files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil || fd.Type.Results == nil {
				continue
			}
			fn, _ := a.pass.TypesInfo.Defs[fd.Name].(*types.Func)
			if fn == nil || a.carries[fn] {
				continue
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				if a.carries[fn] {
					return false
				}
				switch n := n.(type) {
				case *ast.FuncLit:
					return false
				case *ast.ReturnStmt:
					for _, res := range n.Results {
						t := a.pass.TypesInfo.TypeOf(res)
						// Only values that carry the request inside
						// another value: a request-typed result is
						// tainted by its type already.
						if a.kindOf(t) != kindNone || isContextType(t) {
							continue
						}
						if o := a.taintOf(res); o != nil && o.param {
							a.carries[fn] = true
							changed = true
						}
					}
				}
				return true
			})
		}
	}
	return changed
}

func rhsFor(rhs []ast.Expr, i, nlhs int) ast.Expr {
	if len(rhs) == nlhs {
		return rhs[i]
	}
	if len(rhs) == 1 {
		return rhs[0]
	}
	return nil
}

func (a *state) recordParams(fn ast.Node, ft *ast.FuncType) {
	if ft.Params == nil {
		return
	}
	for _, fld := range ft.Params.List {
		for _, name := range fld.Names {
			if v := a.varOf(name); v != nil {
				a.paramOf[v] = fn
			}
		}
	}
}

// bindParams marks the request-typed parameters of an immediately called
// literal detached when their argument is not request-scoped, and tainted
// when it is.
func (a *state) bindParams(lit *ast.FuncLit, args []ast.Expr) bool {
	changed := false
	i := 0
	for _, fld := range lit.Type.Params.List {
		for _, name := range fld.Names {
			if i >= len(args) {
				return changed
			}
			v := a.varOf(name)
			arg := args[i]
			i++
			if v == nil {
				continue
			}
			if o := a.taintOf(arg); o != nil {
				if a.tainted[v] == nil {
					a.tainted[v] = o
					changed = true
				}
			} else if a.kindOf(v.Type()) != kindNone && !a.detached[v] && a.tainted[v] == nil {
				a.detached[v] = true
				changed = true
			}
		}
	}
	return changed
}

// flow records that l receives rhs. tuple is set when rhs is a multi-value
// call; define when l is being declared.
func (a *state) flow(l, rhs ast.Expr, tuple, define bool) bool {
	if rhs == nil {
		return false
	}
	target := rootIdent(l)
	if target == nil {
		return false
	}
	v := a.varOf(target)
	if v == nil || a.isPkgVar(v) || v.IsField() {
		return false
	}
	_, isIdent := ast.Unparen(l).(*ast.Ident)
	if tuple {
		// Only the context or []byte results of a multi-value call carry
		// the request: ctx, cancel := context.WithTimeout(r.Context(), d).
		if !isIdent || !(isContextType(v.Type()) || a.kindOf(v.Type()) != kindNone || a.inferable(v.Type()) || a.carriedResult(rhs, v.Type())) {
			return false
		}
	}
	if isIdent && define && a.kindOf(v.Type()) != kindNone {
		if call, ok := ast.Unparen(rhs).(*ast.CallExpr); ok && a.isDetaching(call) {
			if !a.detached[v] {
				a.detached[v] = true
				return true
			}
			return false
		}
	}
	if a.tainted[v] != nil {
		return false
	}
	if !isIdent {
		// job.Req = r: the local job now carries the request. Stores into
		// long-lived roots are reported by the checker instead.
		if a.paramOf[v] != nil || a.recvOf[v] != nil {
			return false
		}
	}
	o := a.taintOf(rhs)
	if o == nil {
		return false
	}
	if !isIdent {
		o = o.with(fmt.Sprintf("%s stored in %s", o.desc, exprString(l)))
	} else if k := o.kind.String() + " "; strings.HasPrefix(o.desc, k) && !strings.HasPrefix(o.desc, k+v.Name()+" ") {
		// sess := session.From(r): name the variable, keep the source.
		o = o.with(fmt.Sprintf("%s%s (from %s)", k, v.Name(), strings.TrimPrefix(o.desc, k)))
	}
	a.tainted[v] = o
	return true
}

// describe is the one-line name of a tainted value for messages.
func (o *origin) describe() string {
	return strings.TrimSpace(o.desc)
}

// readThroughDetached returns the origin of a request-scoped value that the
// code a goroutine runs (run: its call, or its function value) reads out of
// a context detached with context.WithoutCancel: session.FromContext(ctx),
// ctx.Value(k).(*session.Session), or a same-package function that does
// so given that context. It returns nil when the detached context is only
// handed on.
func (a *state) readThroughDetached(run ast.Node) *origin {
	var found *origin
	detachedIdent := func(n ast.Node) *origin {
		var o *origin
		ast.Inspect(n, func(m ast.Node) bool {
			if id, ok := m.(*ast.Ident); ok && o == nil {
				if t := a.varTaint(a.varOf(id)); t != nil && t.valuesOnly {
					o = t
				}
			}
			return o == nil
		})
		return o
	}
	ast.Inspect(run, func(n ast.Node) bool {
		if found != nil {
			return false
		}
		var through *origin
		var what ast.Expr
		switch e := n.(type) {
		case *ast.CallExpr:
			t := a.pass.TypesInfo.TypeOf(e)
			fn := a.calleeFunc(e)
			if a.kindOf(t) == kindNone && (fn == nil || !a.readsValues[fn]) {
				return true
			}
			for _, arg := range e.Args {
				if o := a.taintOf(arg); o != nil && o.valuesOnly {
					through, what = o, e
				} else if o := detachedIdent(arg); o != nil {
					through, what = o, e
				}
			}
			if se, ok := ast.Unparen(e.Fun).(*ast.SelectorExpr); ok && through == nil && a.kindOf(t) != kindNone {
				if o := detachedIdent(se.X); o != nil {
					through, what = o, e
				}
			}
		case *ast.TypeAssertExpr:
			if a.kindOf(a.pass.TypesInfo.TypeOf(e)) != kindNone {
				if o := detachedIdent(e.X); o != nil {
					through, what = o, e
				}
			}
		}
		if through != nil {
			k := a.kindOf(a.pass.TypesInfo.TypeOf(what))
			if k == kindNone {
				k = kindContext
			}
			found = &origin{kind: k, param: through.param,
				desc: fmt.Sprintf("%s %s, read through %s", k, exprString(what), through.desc)}
		}
		return true
	})
	return found
}

// summarizeReads marks the package's functions that read a request-scoped
// value out of one of their context parameters (see readsValues).
func (a *state) summarizeReads() {
	for range 3 {
		changed := false
		for _, f := range a.pass.Files {
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil || fd.Type.Params == nil {
					continue
				}
				fn, _ := a.pass.TypesInfo.Defs[fd.Name].(*types.Func)
				if fn == nil || a.readsValues[fn] {
					continue
				}
				params := map[*types.Var]bool{}
				for _, fld := range fd.Type.Params.List {
					if isContextType(a.pass.TypesInfo.TypeOf(fld.Type)) {
						for _, name := range fld.Names {
							if v := a.varOf(name); v != nil {
								params[v] = true
							}
						}
					}
				}
				if len(params) == 0 {
					continue
				}
				mentions := func(n ast.Node) bool {
					hit := false
					ast.Inspect(n, func(m ast.Node) bool {
						if id, ok := m.(*ast.Ident); ok && params[a.varOf(id)] {
							hit = true
						}
						return !hit
					})
					return hit
				}
				ast.Inspect(fd.Body, func(n ast.Node) bool {
					if a.readsValues[fn] {
						return false
					}
					switch e := n.(type) {
					case *ast.CallExpr:
						callee := a.calleeFunc(e)
						if a.kindOf(a.pass.TypesInfo.TypeOf(e)) != kindNone || (callee != nil && a.readsValues[callee]) {
							for _, arg := range e.Args {
								if mentions(arg) {
									a.readsValues[fn], changed = true, true
								}
							}
						}
					case *ast.TypeAssertExpr:
						if a.kindOf(a.pass.TypesInfo.TypeOf(e)) != kindNone && mentions(e.X) {
							a.readsValues[fn], changed = true, true
						}
					}
					return true
				})
			}
		}
		if !changed {
			return
		}
	}
}
