package cordonvet

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"strings"
	"unicode"
)

// retainNames are method and function names that keep what they are given
// beyond the call: caches, registries, subscriptions, error-reporter
// scopes, schedulers and pools.
var retainNames = map[string]bool{
	"Set": true, "SetDefault": true, "SetWithTTL": true, "Add": true, "Store": true,
	"LoadOrStore": true, "Swap": true, "CompareAndSwap": true, "Put": true,
	"Push": true, "PushBack": true, "PushFront": true, "Enqueue": true,
	"Submit": true, "Schedule": true, "AfterFunc": true, "Subscribe": true,
	"SubscribeFunc": true, "On": true, "Once": true, "Register": true,
	"RegisterCallback": true, "AddHook": true, "AddListener": true,
	"AddEventProcessor": true, "AddGlobalEventProcessor": true,
	"AddProcessor": true, "OnError": true, "OnEvent": true, "Watch": true,
	"SetRequest": true, "SetContext": true, "SetExtra": true, "SetUser": true,
	"ConfigureScope": true, "RegisterOnShutdown": true,
}

// subscribeNames are registrations that, given a context first, last
// until that context is done (Go's convention for subscriptions).
var subscribeNames = map[string]bool{
	"Subscribe": true, "SubscribeFunc": true, "Watch": true, "On": true, "Once": true,
	"Register": true, "RegisterCallback": true, "AddListener": true, "OnEvent": true,
}

// removeNames are method names that undo a registration.
var removeNames = map[string]bool{
	"Delete": true, "Del": true, "Remove": true, "Unregister": true,
	"Unsubscribe": true, "Off": true, "Stop": true, "Cancel": true,
	"Close": true, "Evict": true, "RemoveEventProcessor": true,
	"Clear": true, "CompareAndDelete": true, "LoadAndDelete": true,
}

// fnCtx is the function a node sits in.
type fnCtx struct {
	node ast.Node // *ast.FuncDecl or *ast.FuncLit
	body *ast.BlockStmt
}

// checker walks one file keeping the stack of enclosing nodes.
type checker struct {
	a     *state
	stack []ast.Node
}

func (a *state) checkFile(f *ast.File) {
	c := &checker{a: a}
	ast.Inspect(f, func(n ast.Node) bool {
		if n == nil {
			c.stack = c.stack[:len(c.stack)-1]
			return true
		}
		c.stack = append(c.stack, n)
		switch n := n.(type) {
		case *ast.GoStmt:
			c.checkGo(n)
		case *ast.AssignStmt:
			if n.Tok == token.ASSIGN || n.Tok == token.DEFINE {
				for i, l := range n.Lhs {
					c.checkStore(l, rhsFor(n.Rhs, i, len(n.Lhs)))
				}
			}
		case *ast.SendStmt:
			c.checkSend(n)
		case *ast.CallExpr:
			c.checkCall(n)
		}
		return true
	})
}

// fn returns the innermost enclosing function.
func (c *checker) fn() fnCtx {
	for i := len(c.stack) - 1; i >= 0; i-- {
		switch f := c.stack[i].(type) {
		case *ast.FuncDecl:
			return fnCtx{f, f.Body}
		case *ast.FuncLit:
			return fnCtx{f, f.Body}
		}
	}
	return fnCtx{}
}

// handler returns the innermost enclosing function that takes a
// request-scoped parameter, or the outermost function when none does.
func (c *checker) handler() ast.Node {
	var outer ast.Node
	for i := len(c.stack) - 1; i >= 0; i-- {
		var ft *ast.FuncType
		switch f := c.stack[i].(type) {
		case *ast.FuncDecl:
			ft = f.Type
		case *ast.FuncLit:
			ft = f.Type
		default:
			continue
		}
		outer = c.stack[i]
		if c.hasRequestParam(ft) {
			return c.stack[i]
		}
	}
	return outer
}

func (c *checker) hasRequestParam(ft *ast.FuncType) bool { return c.a.hasRequestParam(ft) }

func (c *checker) funcDecl() *ast.FuncDecl {
	for i := len(c.stack) - 1; i >= 0; i-- {
		if f, ok := c.stack[i].(*ast.FuncDecl); ok {
			return f
		}
	}
	return nil
}

func (c *checker) report(pos token.Pos, o *origin, escape, fix string) {
	if c.a.ownFramework(o.kind) {
		return
	}
	if o.kind == kindRequest && c.hijackedBefore(pos) {
		return
	}
	c.a.report(pos, fmt.Sprintf("%s escapes its request: %s; fix: %s", o.describe(), escape, fix))
}

// hijackedBefore reports whether the function around pos took the
// connection over before pos: a websocket upgrade given the
// ResponseWriter (upgrader.Upgrade(w, r, h), websocket.Accept(w, r, o)),
// or a Hijack. net/http then no longer owns the request: a websocket
// session may keep it for the life of the connection (melody's
// Session.Request). The ResponseWriter and the request's context stay
// request-scoped.
func (c *checker) hijackedBefore(pos token.Pos) bool {
	fc := c.fn()
	if fc.body == nil {
		return false
	}
	found := false
	ast.Inspect(fc.body, func(n ast.Node) bool {
		if found || n == nil || n.Pos() >= pos {
			return false
		}
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		se, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
		if !ok {
			return true
		}
		switch se.Sel.Name {
		case "Hijack":
			found = true
		case "Upgrade", "Accept", "UpgradeHTTP":
			for _, arg := range call.Args {
				if kindOfType(c.a.pass.TypesInfo.TypeOf(arg)) == kindWriter {
					found = true
				}
			}
		}
		return true
	})
	return found
}

// ownFramework reports whether the package under analysis belongs to the
// framework that defines values of kind k (fasthttp's server handing its
// RequestCtx to its own hijack goroutine, net/http's server internals):
// the framework owns their lifetime, and its contracts are modelled in
// application code instead.
func (a *state) ownFramework(k reqKind) bool {
	var paths []string
	switch k {
	case kindRequest, kindWriter, kindContext:
		paths = []string{pathHTTP}
	case kindGin:
		paths = []string{pathGin}
	case kindEcho:
		paths = []string{pathEcho4, pathEcho5}
	case kindFasthttp, kindFastBytes:
		paths = []string{pathFasthttp}
	case kindSession:
		paths = []string{pathSession}
	}
	p := a.pass.Pkg.Path()
	for _, fp := range paths {
		if p == fp || strings.HasPrefix(p, fp+"/") {
			return true
		}
	}
	return false
}

// ---- goroutines ----

func (c *checker) checkGo(g *ast.GoStmt) {
	o := c.escaping(c.goTaint(g.Call), g.Call)
	if o == nil {
		return
	}
	fc := c.fn()
	if c.joined(fc, g, g.Call) {
		return
	}
	c.report(g.Pos(), o, "captured by a goroutine that is not joined before "+c.a.funcName(fc.node)+" returns",
		o.kind.fix()+"; or join the goroutine (sync.WaitGroup, errgroup) before returning")
}

// escaping filters the origin of a value handed to a goroutine (run is
// the call it runs, or the function value): a context detached with
// context.WithoutCancel is accepted, unless the goroutine reads a
// request-scoped value out of it or -strict-withoutcancel is set.
func (c *checker) escaping(o *origin, run ast.Node) *origin {
	if o == nil || !o.valuesOnly || flagStrictWithoutCancel {
		return o
	}
	return c.a.readThroughDetached(run)
}

// goTaint returns what request-scoped value the call a goroutine runs
// captures: through its function value (closure, method value) or its
// arguments.
func (c *checker) goTaint(call *ast.CallExpr) *origin {
	o := c.a.taintOf(call.Fun)
	for _, arg := range call.Args {
		if o != nil && !o.valuesOnly {
			break
		}
		o = prefer(o, c.a.taintOf(arg))
	}
	return o
}

// joinSpec describes one goroutine for the search of its join.
type joinSpec struct {
	c    *checker
	used map[types.Object]bool // variables the goroutine uses
	// onlyCtx: every request-scoped value the goroutine holds is a context,
	// so once that context is done it can observe nothing else of the
	// request; <-ctx.Done() of a context it holds then ends the wait.
	onlyCtx bool
	// onlyFast: it holds only fasthttp values, which ctx.TimeoutError*
	// hands over to it (fasthttp's documented contract).
	onlyFast bool
}

// joined reports whether the goroutine started by node (a go statement or a
// Go call) is waited for on every path from its start to each return of
// fc: a Wait() on a WaitGroup/errgroup it uses, a receive from a channel it
// uses, a select whose every case is such a receive or the Done of the
// context handed to it, fasthttp's ctx.TimeoutError* for a goroutine that
// holds only the RequestCtx, or a deferred join.
func (c *checker) joined(fc fnCtx, node ast.Node, goroutine ast.Node) bool {
	if fc.body == nil {
		return false
	}
	j := &joinSpec{c: c, used: map[types.Object]bool{}, onlyCtx: true, onlyFast: true}
	ast.Inspect(goroutine, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok {
			if obj := c.a.pass.TypesInfo.ObjectOf(id); obj != nil {
				j.used[obj] = true
				if v, ok := obj.(*types.Var); ok {
					if o := c.a.varTaint(v); o != nil {
						j.note(o)
					}
				}
			}
		}
		if e, ok := n.(ast.Expr); ok {
			if _, isID := e.(*ast.Ident); !isID {
				if _, isLit := e.(*ast.FuncLit); !isLit {
					if t := c.a.pass.TypesInfo.TypeOf(e); t != nil && c.a.kindOf(t) != kindNone {
						j.note(&origin{kind: c.a.kindOf(t)})
					}
				}
			}
		}
		return true
	})
	if call, ok := goroutine.(*ast.CallExpr); ok {
		// wg.Go(f), g.Go(f): the receiver is the group.
		if se, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr); ok {
			if root := rootIdent(se.X); root != nil {
				if obj := c.a.pass.TypesInfo.ObjectOf(root); obj != nil {
					j.used[obj] = true
				}
			}
		}
	}
	// Walk up from the statement that starts the goroutine: a deferred
	// join before it covers every later return; the statements after it
	// must join on every path that returns.
	var start ast.Node = node
	for i := len(c.stack) - 1; i >= 0; i-- {
		var list []ast.Stmt
		switch p := c.stack[i].(type) {
		case *ast.BlockStmt:
			list = p.List
		case *ast.CaseClause:
			list = p.Body
		case *ast.CommClause:
			list = p.Body
		default:
			if p == fc.node {
				return false // fell off the end: an implicit return
			}
			if i+1 < len(c.stack) {
				start = c.stack[i]
			}
			continue
		}
		idx := -1
		for k, st := range list {
			if st.Pos() <= start.Pos() && start.End() <= st.End() {
				idx = k
				break
			}
		}
		start = c.stack[i]
		if idx < 0 {
			continue
		}
		for _, st := range list[:idx] {
			if d, ok := st.(*ast.DeferStmt); ok && j.deferJoins(d) {
				return true
			}
		}
		leak, falls := j.seq(list[idx+1:])
		if leak {
			return false
		}
		if !falls {
			return true
		}
		if i > 0 && c.stack[i-1] == fc.node {
			return false // the end of the function body
		}
	}
	return false
}

func (j *joinSpec) note(o *origin) {
	if o.kind != kindContext {
		j.onlyCtx = false
	}
	if o.kind != kindFasthttp && o.kind != kindFastBytes {
		j.onlyFast = false
	}
}

// seq evaluates a statement list: leak when some path reaches a return
// without a join; falls when some path runs off its end without one.
func (j *joinSpec) seq(list []ast.Stmt) (leak, falls bool) {
	for _, st := range list {
		l, f := j.stmt(st)
		if l {
			return true, false
		}
		if !f {
			return false, false
		}
	}
	return false, true
}

func (j *joinSpec) stmt(s ast.Stmt) (leak, falls bool) {
	switch s := s.(type) {
	case *ast.ReturnStmt:
		for _, r := range s.Results {
			if j.has(r) {
				return false, false
			}
		}
		return true, false
	case *ast.DeferStmt:
		return false, !j.deferJoins(s)
	case *ast.BlockStmt:
		return j.seq(s.List)
	case *ast.LabeledStmt:
		return j.stmt(s.Stmt)
	case *ast.IfStmt:
		if s.Init != nil {
			if l, f := j.stmt(s.Init); l || !f {
				return l, f
			}
		}
		if j.has(s.Cond) {
			return false, false
		}
		tl, tf := j.seq(s.Body.List)
		el, ef := false, true
		if s.Else != nil {
			el, ef = j.stmt(s.Else)
		}
		return tl || el, tf || ef
	case *ast.SwitchStmt:
		if s.Init != nil {
			if l, f := j.stmt(s.Init); l || !f {
				return l, f
			}
		}
		if s.Tag != nil && j.has(s.Tag) {
			return false, false
		}
		return j.clauses(s.Body)
	case *ast.TypeSwitchStmt:
		if s.Init != nil {
			if l, f := j.stmt(s.Init); l || !f {
				return l, f
			}
		}
		if j.has(s.Assign) {
			return false, false
		}
		return j.clauses(s.Body)
	case *ast.SelectStmt:
		if j.selectJoins(s) {
			return false, false
		}
		leak, falls := false, false
		for _, cl := range s.Body.List {
			cc := cl.(*ast.CommClause)
			if cc.Comm != nil && j.has(cc.Comm) {
				continue
			}
			l, f := j.seq(cc.Body)
			leak, falls = leak || l, falls || f
		}
		return leak, falls
	case *ast.RangeStmt:
		if j.has(s.X) || j.rangeJoins(s) {
			return false, false
		}
		l, f := j.seq(s.Body.List)
		if !l && !f {
			return false, false // a loop whose body always joins
		}
		return l, true
	case *ast.ForStmt:
		if s.Init != nil {
			if l, f := j.stmt(s.Init); l || !f {
				return l, f
			}
		}
		if s.Cond != nil && j.has(s.Cond) {
			return false, false
		}
		l, f := j.seq(s.Body.List)
		if !l && !f {
			return false, false
		}
		if s.Cond == nil && !hasBreak(s.Body) {
			return l, false // for { ... } ends only by return
		}
		return l, true
	case *ast.ExprStmt:
		if call, ok := s.X.(*ast.CallExpr); ok && j.noReturn(call) {
			return false, false
		}
		return false, !j.has(s)
	case *ast.BranchStmt:
		return false, true
	}
	return false, !j.has(s)
}

func (j *joinSpec) clauses(body *ast.BlockStmt) (leak, falls bool) {
	hasDefault := false
	for _, cl := range body.List {
		cc := cl.(*ast.CaseClause)
		if cc.List == nil {
			hasDefault = true
		}
		l, f := j.seq(cc.Body)
		leak, falls = leak || l, falls || f
	}
	return leak, falls || !hasDefault
}

// hasBreak reports whether body has a break that leaves the loop around
// it (an unlabelled break outside nested loops, switches and selects, or
// any labelled one).
func hasBreak(body *ast.BlockStmt) bool {
	found := false
	var walk func(n ast.Node, nested bool)
	walk = func(n ast.Node, nested bool) {
		ast.Inspect(n, func(m ast.Node) bool {
			if found || m == nil {
				return false
			}
			switch m := m.(type) {
			case *ast.FuncLit:
				return false
			case *ast.ForStmt, *ast.RangeStmt, *ast.SwitchStmt, *ast.TypeSwitchStmt, *ast.SelectStmt:
				if m != n {
					walk(m, true)
					return false
				}
			case *ast.BranchStmt:
				if m.Tok == token.BREAK && (!nested || m.Label != nil) {
					found = true
				}
				if m.Tok == token.GOTO {
					found = true
				}
			}
			return true
		})
	}
	walk(body, false)
	return found
}

// noReturn reports whether call never returns to the handler: panic,
// os.Exit, log.Fatal..., runtime.Goexit.
func (j *joinSpec) noReturn(call *ast.CallExpr) bool {
	if id, ok := ast.Unparen(call.Fun).(*ast.Ident); ok {
		if b, ok := j.c.a.pass.TypesInfo.ObjectOf(id).(*types.Builtin); ok && b.Name() == "panic" {
			return true
		}
	}
	fn := j.c.a.calleeFunc(call)
	switch {
	case fn == nil:
		return false
	case inPkg(fn, "os") && fn.Name() == "Exit", inPkg(fn, "runtime") && fn.Name() == "Goexit":
		return true
	case inPkg(fn, "log") && (strings.HasPrefix(fn.Name(), "Fatal") || strings.HasPrefix(fn.Name(), "Panic")):
		return true
	}
	return false
}

func (j *joinSpec) usesRoot(e ast.Expr) bool {
	root := rootIdent(e)
	return root != nil && j.used[j.c.a.pass.TypesInfo.ObjectOf(root)]
}

// isDone reports whether e is X.Done() of a context or a framework's
// request context.
func (j *joinSpec) isDone(e ast.Expr) (recv ast.Expr, ok bool) {
	call, ok := ast.Unparen(e).(*ast.CallExpr)
	if !ok || len(call.Args) != 0 {
		return nil, false
	}
	se, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	if !ok || se.Sel.Name != "Done" {
		return nil, false
	}
	t := j.c.a.pass.TypesInfo.TypeOf(se.X)
	if isContextType(t) || kindOfType(t) != kindNone {
		return se.X, true
	}
	return nil, false
}

// joinChan reports whether a receive from e waits for the goroutine: the
// goroutine uses the channel (a local one, or one held in a per-request
// helper such as w.doneCh); the request's Done channel waits for the
// request instead.
func (j *joinSpec) joinChan(e ast.Expr) bool {
	if _, done := j.isDone(e); done {
		return false
	}
	if !j.usesRoot(e) {
		return false
	}
	t := j.c.a.pass.TypesInfo.TypeOf(e)
	_, isChan := types.Unalias(t).Underlying().(*types.Chan)
	return t != nil && isChan
}

// ctxDone reports whether e is the Done channel of a context the goroutine
// holds, when contexts are all it holds of the request.
func (j *joinSpec) ctxDone(e ast.Expr) bool {
	recv, ok := j.isDone(e)
	if !ok || !j.onlyCtx || !isContextType(j.c.a.pass.TypesInfo.TypeOf(recv)) {
		return false
	}
	if j.usesRoot(recv) {
		return true
	}
	// The request's own context (or one derived from it): once it is
	// done, so is every context derived from it that the goroutine holds.
	o := j.c.a.taintOf(recv)
	return o != nil && o.kind == kindContext && !o.valuesOnly
}

func (j *joinSpec) rangeJoins(s *ast.RangeStmt) bool {
	t := j.c.a.pass.TypesInfo.TypeOf(s.X)
	if t == nil {
		return false
	}
	_, isChan := t.Underlying().(*types.Chan)
	return isChan && j.joinChan(s.X)
}

// selectJoins reports whether a select can only end by the goroutine's
// result or by the Done of the context handed to it.
func (j *joinSpec) selectJoins(s *ast.SelectStmt) bool {
	if len(s.Body.List) == 0 {
		return false
	}
	result := false
	for _, cl := range s.Body.List {
		cc := cl.(*ast.CommClause)
		var x ast.Expr
		switch comm := cc.Comm.(type) {
		case *ast.ExprStmt:
			x = comm.X
		case *ast.AssignStmt:
			if len(comm.Rhs) == 1 {
				x = comm.Rhs[0]
			}
		}
		u, ok := ast.Unparen(x).(*ast.UnaryExpr)
		if !ok || u.Op != token.ARROW {
			return false // default, a send, or no receive
		}
		switch {
		case j.joinChan(u.X):
			result = true
		case j.ctxDone(u.X):
		default:
			return false
		}
	}
	return result || j.onlyCtx
}

// deferJoins reports whether a defer joins the goroutine when it runs.
func (j *joinSpec) deferJoins(d *ast.DeferStmt) bool {
	if j.has(d.Call) {
		return true
	}
	if lit, ok := ast.Unparen(d.Call.Fun).(*ast.FuncLit); ok {
		l, f := j.seq(lit.Body.List)
		return !l && !f
	}
	return false
}

// has reports whether evaluating n (a simple statement or expression)
// joins the goroutine.
func (j *joinSpec) has(n ast.Node) bool {
	if n == nil {
		return false
	}
	found := false
	ast.Inspect(n, func(m ast.Node) bool {
		if found || m == nil {
			return false
		}
		switch m := m.(type) {
		case *ast.FuncLit:
			return false // runs later, if ever
		case *ast.CallExpr:
			se, ok := ast.Unparen(m.Fun).(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if se.Sel.Name == "Wait" && len(m.Args) == 0 && j.usesRoot(se.X) {
				found = true
			}
			// fasthttp: after ctx.TimeoutError* the server does not
			// reuse ctx, and the goroutine may keep using it.
			if j.onlyFast && kindOfType(j.c.a.pass.TypesInfo.TypeOf(se.X)) == kindFasthttp &&
				strings.HasPrefix(se.Sel.Name, "TimeoutError") {
				found = true
			}
		case *ast.UnaryExpr:
			if m.Op == token.ARROW && (j.joinChan(m.X) || j.ctxDone(m.X)) {
				found = true
			}
		}
		return true
	})
	return found
}

// ---- stores ----

// checkStore reports rhs when it is request-scoped and l outlives the
// request.
func (c *checker) checkStore(l, rhs ast.Expr) {
	if rhs == nil {
		return
	}
	where := c.longLived(l)
	if where == "" {
		return
	}
	o := c.kept(c.a.taintOf(rhs))
	if o == nil {
		return
	}
	if c.storeUndone(l) {
		return
	}
	c.report(l.Pos(), o, "stored in "+where, o.kind.fix())
}

// kept filters the origin of a value kept somewhere long-lived: a context
// detached with context.WithoutCancel is accepted unless
// -strict-withoutcancel is set.
func (c *checker) kept(o *origin) *origin {
	if o != nil && o.valuesOnly && !flagStrictWithoutCancel {
		return nil
	}
	return o
}

// rootVar returns the variable at the root of a selector, index, call or
// dereference chain, also when it is another package's variable
// (audit.Sink.hooks), and whether e is that variable itself.
func (a *state) rootVar(e ast.Expr) (*types.Var, bool) {
	bare := true
	for {
		switch x := e.(type) {
		case *ast.Ident:
			return a.varOf(x), bare
		case *ast.SelectorExpr:
			if id, ok := x.X.(*ast.Ident); ok {
				if _, isPkg := a.pass.TypesInfo.ObjectOf(id).(*types.PkgName); isPkg {
					v, _ := a.pass.TypesInfo.ObjectOf(x.Sel).(*types.Var)
					return v, bare
				}
			}
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.StarExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
			continue
		case *ast.CallExpr:
			e = x.Fun
		case *ast.SliceExpr:
			e = x.X
		case *ast.TypeAssertExpr:
			e = x.X
		case *ast.UnaryExpr:
			e = x.X
		default:
			return nil, false
		}
		bare = false
	}
}

// throughScoped reports whether the place l is reached through a
// request-scoped value (t.ctx.Response().Writer, where t.ctx is an
// echo.Context): such a place lives in the request.
func (c *checker) throughScoped(l ast.Expr) bool {
	e := ast.Unparen(l)
	for {
		var next ast.Expr
		switch x := e.(type) {
		case *ast.SelectorExpr:
			next = x.X
		case *ast.IndexExpr:
			next = x.X
		case *ast.StarExpr:
			next = x.X
		case *ast.CallExpr:
			next = x.Fun
		case *ast.ParenExpr:
			next = x.X
		default:
			return false
		}
		if next != l {
			if _, isPkg := c.a.pass.TypesInfo.ObjectOf(identOf(next)).(*types.PkgName); !isPkg {
				if t := c.a.pass.TypesInfo.TypeOf(next); t != nil && c.a.kindOf(t) != kindNone {
					return true
				}
			}
		}
		e = next
	}
}

func identOf(e ast.Expr) *ast.Ident {
	id, _ := e.(*ast.Ident)
	return id
}

// longLived returns a description of why the place l outlives the request,
// or "" if it does not (or cannot be told).
func (c *checker) longLived(l ast.Expr) string {
	v, bare := c.a.rootVar(l)
	if v == nil {
		return c.callRooted(l)
	}
	if !bare && c.throughScoped(l) {
		return "" // a field of a request-scoped value stays in the request
	}
	if c.a.isPkgVar(v) {
		name := v.Name()
		if v.Pkg() != c.a.pass.Pkg {
			name = v.Pkg().Name() + "." + name
		}
		if bare {
			return "package variable " + name
		}
		return fmt.Sprintf("%s, reachable from package variable %s", exprString(l), name)
	}
	if !bare && c.a.varTaint(v) != nil {
		return "" // a field of a request-scoped value stays in the request
	}
	if fd := c.a.recvOf[v]; fd != nil && !bare {
		if c.longLivedRecv(fd, v) {
			return fmt.Sprintf("%s, a field of the receiver %s (%s), which outlives the request", exprString(l), v.Name(), typeName(v.Type()))
		}
		return ""
	}
	if h := c.handler(); h != nil && (v.Pos() < h.Pos() || v.Pos() >= h.End()) {
		if _, isDecl := h.(*ast.FuncDecl); !isDecl || c.a.recvOf[v] == nil {
			if c.a.paramOf[v] == nil || !inNode(c.a.paramOf[v], h) {
				return fmt.Sprintf("%s, captured from outside the handler %s and so shared by every request", exprString(l), c.a.funcName(h))
			}
		}
	}
	return ""
}

// callRooted describes a place reached from what a package-level function
// returns without being given anything of the request (registry.Default()
// .last, audit.Current().hooks[k]): process-wide state.
func (c *checker) callRooted(l ast.Expr) string {
	e := ast.Unparen(l)
	for {
		switch x := e.(type) {
		case *ast.SelectorExpr:
			e = x.X
			continue
		case *ast.IndexExpr:
			e = x.X
			continue
		case *ast.StarExpr:
			e = x.X
			continue
		case *ast.ParenExpr:
			e = x.X
			continue
		case *ast.CallExpr:
			if e == ast.Unparen(l) || c.throughScoped(l) || c.callChainUsesRequest(x) {
				return ""
			}
			fn := c.a.calleeFunc(x)
			if fn == nil || fn.Pkg() == nil || isStdlib(fn.Pkg().Path()) {
				return ""
			}
			if sig, _ := fn.Type().(*types.Signature); sig == nil || sig.Recv() != nil {
				return ""
			}
			if n := fn.Name(); strings.HasPrefix(n, "New") || strings.HasPrefix(n, "new") || strings.HasPrefix(n, "Make") || strings.HasPrefix(n, "make") {
				return ""
			}
			return fmt.Sprintf("%s, reachable from %s, process-wide state", exprString(l), exprString(x))
		}
		return ""
	}
}

func inNode(n, outer ast.Node) bool {
	return n != nil && outer != nil && n.Pos() >= outer.Pos() && n.End() <= outer.End()
}

// setterName reports whether a method name says it sets its receiver up
// for one request (SetRequest, Reset, WithContext, init): the receiver is
// then per-request, and an escape, if any, is at the caller.
func setterName(n string) bool {
	for _, p := range []string{"Set", "set", "Reset", "reset", "With", "with", "Init", "init", "Bind", "bind"} {
		if strings.HasPrefix(n, p) && (len(n) == len(p) || !unicode.IsLower(rune(n[len(p)]))) {
			return true
		}
	}
	return false
}

// handlerShaped reports whether fd has a handler's signature: (w, r),
// or a single gin, echo or fasthttp context.
func (c *checker) handlerShaped(fd *ast.FuncDecl) bool {
	sig, _ := c.a.pass.TypesInfo.TypeOf(fd.Name).(*types.Signature)
	if fn, ok := c.a.pass.TypesInfo.Defs[fd.Name].(*types.Func); ok {
		sig, _ = fn.Type().(*types.Signature)
	}
	if sig == nil {
		return false
	}
	var w, r, fw bool
	for i := 0; i < sig.Params().Len(); i++ {
		switch kindOfType(sig.Params().At(i).Type()) {
		case kindWriter:
			w = true
		case kindRequest:
			r = true
		case kindGin, kindEcho, kindFasthttp:
			fw = true
		}
	}
	return (w && r) || (fw && sig.Params().Len() == 1)
}

// holdsScopedField reports whether the struct behind t has a named field
// of a request-scoped type: a per-request holder (sentry's Scope with its
// request, a per-request state struct).
func (c *checker) holdsScopedField(t types.Type) bool {
	n := namedOf(t)
	if n == nil {
		return false
	}
	s, ok := n.Underlying().(*types.Struct)
	if !ok {
		return false
	}
	for i := 0; i < s.NumFields(); i++ {
		if k := c.a.kindOf(s.Field(i).Type()); k != kindNone {
			return true
		}
	}
	return false
}

// longLivedRecv reports whether the receiver of method fd outlives the
// requests it handles. It does when the method is ServeHTTP; otherwise
// only when the method takes a request-scoped parameter, its name is not a
// setter's (SetRequest, Reset, ...), its type is not a per-request wrapper
// (embeds a request-scoped type, implements ResponseWriter, is a
// framework's context), and, when the type holds a request-scoped field,
// the method is shaped as a handler.
func (c *checker) longLivedRecv(fd *ast.FuncDecl, v *types.Var) bool {
	if fd.Name.Name == "ServeHTTP" {
		return !c.a.embedsOrWraps(v.Type())
	}
	if c.a.embedsOrWraps(v.Type()) || !c.hasRequestParam(fd.Type) || setterName(fd.Name.Name) {
		return false
	}
	if c.holdsScopedField(v.Type()) && !c.handlerShaped(fd) {
		return false
	}
	return true
}

// storeUndone reports whether a defer of the enclosing function undoes the
// store into l before the function returns: delete(m, k) or l = nil in a
// deferred call or closure, or in a same-package function or method that a
// defer calls (defer forget(id)).
func (c *checker) storeUndone(l ast.Expr) bool {
	key := c.placeKey(l)
	if key == nil {
		return false
	}
	return c.deferDoes(func(n ast.Node) bool {
		switch m := n.(type) {
		case *ast.CallExpr:
			if id, ok := ast.Unparen(m.Fun).(*ast.Ident); ok && id.Name == "delete" && len(m.Args) == 2 {
				if _, ok := c.a.pass.TypesInfo.ObjectOf(id).(*types.Builtin); ok && c.placeKey(m.Args[0]) == key {
					return true
				}
			}
		case *ast.AssignStmt:
			// subs = remove(subs, w), cur = nil, m[k] = nil: the deferred
			// code rewrites the container.
			for _, lhs := range m.Lhs {
				if c.placeKey(lhs) == key {
					return true
				}
			}
		}
		return false
	})
}

// placeKey names the container a store writes: the map, or the variable or
// field, whose object identifies it across functions (watchers in
// watchers[id], the field hub in s.hub[k]).
func (c *checker) placeKey(l ast.Expr) types.Object {
	e := ast.Unparen(l)
	if ix, ok := e.(*ast.IndexExpr); ok {
		e = ast.Unparen(ix.X)
	}
	switch x := e.(type) {
	case *ast.Ident:
		return c.a.pass.TypesInfo.ObjectOf(x)
	case *ast.SelectorExpr:
		return c.a.pass.TypesInfo.ObjectOf(x.Sel)
	}
	return nil
}

// deferDoes reports whether some defer of the enclosing function runs code
// for which undo is true: in the deferred call, a deferred closure, or one
// level into a same-package function or method it calls.
func (c *checker) deferDoes(undo func(ast.Node) bool) bool {
	fc := c.fn()
	if fc.body == nil {
		return false
	}
	bodies := c.a.funcBodies()
	found := false
	look := func(n ast.Node, deep bool) {}
	look = func(n ast.Node, deep bool) {
		ast.Inspect(n, func(m ast.Node) bool {
			if found || m == nil {
				return false
			}
			if undo(m) {
				found = true
				return false
			}
			if call, ok := m.(*ast.CallExpr); ok && deep {
				if fn := c.a.calleeFunc(call); fn != nil {
					if body := bodies[fn]; body != nil {
						look(body, false)
					}
				}
			}
			return true
		})
	}
	ast.Inspect(fc.body, func(n ast.Node) bool {
		if found {
			return false
		}
		if _, ok := n.(*ast.FuncLit); ok {
			return false
		}
		if d, ok := n.(*ast.DeferStmt); ok {
			look(d.Call, true)
			return false
		}
		return true
	})
	return found
}

// funcBodies maps the package's functions and methods to their bodies.
func (a *state) funcBodies() map[*types.Func]*ast.BlockStmt {
	if a.bodies == nil {
		a.bodies = map[*types.Func]*ast.BlockStmt{}
		for _, f := range a.pass.Files {
			for _, d := range f.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
					if fn, ok := a.pass.TypesInfo.Defs[fd.Name].(*types.Func); ok {
						a.bodies[fn] = fd.Body
					}
				}
			}
		}
	}
	return a.bodies
}

// ---- channels ----

func (c *checker) checkSend(s *ast.SendStmt) {
	o := c.kept(c.a.taintOf(s.Value))
	if o == nil {
		return
	}
	if c.sendUndone(s) || removalChan(s.Chan) {
		return
	}
	c.report(s.Arrow, o, fmt.Sprintf("sent on channel %s, whose receiver may use it after the request ends", exprString(s.Chan)),
		o.kind.fix())
}

// removalChan reports whether a channel is named for taking back what was
// registered (hub.unregister, h.leave, s.remove): a send on it undoes a
// registration rather than making one.
func removalChan(ch ast.Expr) bool {
	name := strings.ToLower(exprString(ch))
	if i := strings.LastIndexAny(name, ".)"); i >= 0 {
		name = name[i+1:]
	}
	for _, w := range []string{"unreg", "leave", "remove", "unsub", "delete", "drop", "quit", "detach", "disconnect"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// sendUndone reports whether a defer takes back what s registered by
// sending it to a hub: it sends the same value on another channel of the
// same hub (defer func() { hub.unregister <- c }()), or calls a method of
// the hub with it (defer hub.Leave(c)).
func (c *checker) sendUndone(s *ast.SendStmt) bool {
	val := c.valueObj(s.Value)
	hub, _ := c.a.rootVar(s.Chan)
	chanKey := c.placeKey(s.Chan)
	if val == nil || hub == nil {
		return false
	}
	return c.deferDoes(func(n ast.Node) bool {
		switch m := n.(type) {
		case *ast.SendStmt:
			if r, _ := c.a.rootVar(m.Chan); r == hub && c.placeKey(m.Chan) != chanKey && c.valueObj(m.Value) == val {
				return true
			}
		case *ast.CallExpr:
			if se, ok := ast.Unparen(m.Fun).(*ast.SelectorExpr); ok {
				if r, _ := c.a.rootVar(se.X); r == hub {
					for _, arg := range m.Args {
						if c.valueObj(arg) == val {
							return true
						}
					}
				}
			}
		}
		return false
	})
}

// valueObj is the variable an expression names (c, &c, client), or nil.
func (c *checker) valueObj(e ast.Expr) types.Object {
	e = ast.Unparen(e)
	if u, ok := e.(*ast.UnaryExpr); ok && u.Op == token.AND {
		e = ast.Unparen(u.X)
	}
	if id, ok := e.(*ast.Ident); ok {
		return c.a.pass.TypesInfo.ObjectOf(id)
	}
	return nil
}

// ---- registrations and asynchronous calls ----

func (c *checker) checkCall(call *ast.CallExpr) {
	a := c.a
	fn := a.calleeFunc(call)
	name := ""
	var recv ast.Expr
	if se, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr); ok {
		name = se.Sel.Name
		if sel := a.pass.TypesInfo.Selections[se]; sel != nil && sel.Kind() == types.MethodVal {
			recv = se.X
		}
	} else if id, ok := ast.Unparen(call.Fun).(*ast.Ident); ok {
		name = id.Name
	}
	if name == "" {
		return
	}
	// Goroutine starters: wg.Go(f), g.Go(f), g.TryGo(f).
	if (name == "Go" || name == "TryGo") && recv != nil && len(call.Args) == 1 {
		o := a.taintOf(call.Args[0])
		if o == nil {
			return
		}
		fc := c.fn()
		if c.joined(fc, call, call) {
			return
		}
		c.report(call.Pos(), o, fmt.Sprintf("captured by a goroutine started with %s that is not waited for before %s returns", exprString(call.Fun), a.funcName(fc.node)),
			o.kind.fix()+"; or call Wait before returning")
		return
	}
	if fn != nil && inPkg(fn, "time") && name == "AfterFunc" && recv == nil {
		if len(call.Args) == 2 {
			if o := a.taintOf(call.Args[1]); o != nil && !c.removedByDefer(call, nil) {
				c.report(call.Pos(), o, "registered with time.AfterFunc, which runs it after the request may have ended",
					o.kind.fix()+"; or stop the timer with defer t.Stop() before returning")
			}
		}
		return
	}
	if fn != nil && inPkg(fn, "context") && name == "AfterFunc" && recv == nil {
		// context.AfterFunc(r.Context(), f) runs f when the request ends:
		// by construction after the handler has returned.
		if len(call.Args) == 2 {
			if o := a.taintOf(call.Args[1]); o != nil && !c.removedByDefer(call, nil) {
				c.report(call.Pos(), o, "registered with context.AfterFunc, which runs it once the context is done, after the request may have ended",
					o.kind.fix()+"; or call the returned stop function with defer before returning")
			}
		}
		return
	}
	if !retainNames[name] {
		return
	}
	var where string
	if recv != nil {
		where = c.retainingReceiver(recv)
		if where == "" {
			return
		}
	} else {
		// A package-level registration function keeps global state.
		if fn == nil {
			return
		}
		sig, _ := fn.Type().(*types.Signature)
		if sig == nil || sig.Recv() != nil || fn.Pkg() == nil || isStdlib(fn.Pkg().Path()) {
			return
		}
		where = fmt.Sprintf("the package-level state of %s", fn.Pkg().Name())
	}
	var sig *types.Signature
	if fn != nil {
		sig, _ = fn.Type().(*types.Signature)
	}
	for i, arg := range call.Args {
		if i == 0 && sig != nil && sig.Params().Len() > 0 && isContextType(sig.Params().At(0).Type()) {
			// cache.Set(r.Context(), k, v): by Go's convention the first
			// context argument bounds the call, it is not kept.
			if subscribeNames[name] {
				if o := a.taintOf(arg); o != nil && o.kind == kindContext && !o.valuesOnly {
					// bus.Subscribe(r.Context(), sub): the subscription
					// lasts until the request's context is done.
					return
				}
			}
			continue
		}
		o := c.kept(a.taintOf(arg))
		if o == nil {
			continue
		}
		if name == "Put" && recv != nil && c.ownPoolPut(recv, arg) {
			return
		}
		if c.removedByDefer(call, recv) {
			return
		}
		c.report(call.Pos(), o, fmt.Sprintf("registered via %[2]s with %[1]s, which outlives the request", where, name),
			o.kind.fix()+"; or remove the registration with defer before returning")
		return
	}
}

// retainingReceiver describes the receiver of a retaining call when it
// outlives the request, or returns "".
func (c *checker) retainingReceiver(recv ast.Expr) string {
	a := c.a
	if a.taintOf(recv) != nil {
		return "" // c.Set(...) on the request's own context stays in the request
	}
	if c.throughScoped(recv) {
		return "" // c.Request().Context()..., reached through the request
	}
	if rootIdent(recv) == nil {
		return ""
	}
	v, _ := a.rootVar(recv)
	if _, isCall := ast.Unparen(recv).(*ast.CallExpr); isCall || c.rootIsCall(recv) {
		// sentry.CurrentHub().Scope(): global unless derived from the
		// request (sentry.GetHubFromContext(r.Context())).
		if c.callChainUsesRequest(recv) {
			return ""
		}
		if v != nil && !a.isPkgVar(v) {
			return c.varRetains(v, recv)
		}
		return exprString(recv)
	}
	if v == nil {
		return ""
	}
	return c.varRetains(v, recv)
}

// ownPoolPut reports whether recv.Put(arg) gives a sync.Pool back a value
// of a type of this package: a framework (or an app) recycling its own
// per-request objects (gin's engine.pool.Put(c), chi's mx.pool.Put(rctx)).
func (c *checker) ownPoolPut(recv, arg ast.Expr) bool {
	n := namedOf(c.a.pass.TypesInfo.TypeOf(recv))
	if n == nil || typeKey(n) != "sync.Pool" {
		return false
	}
	an := namedOf(c.a.pass.TypesInfo.TypeOf(arg))
	if an == nil {
		if ce, ok := ast.Unparen(arg).(*ast.CallExpr); ok && len(ce.Args) == 1 {
			an = namedOf(c.a.pass.TypesInfo.TypeOf(ce.Args[0])) // pool.Put(any(c))
		}
	}
	return an != nil && an.Obj().Pkg() == c.a.pass.Pkg
}

func (c *checker) rootIsCall(e ast.Expr) bool {
	for {
		switch x := e.(type) {
		case *ast.CallExpr:
			return true
		case *ast.SelectorExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		default:
			return false
		}
	}
}

func (c *checker) callChainUsesRequest(e ast.Expr) bool {
	uses := false
	ast.Inspect(e, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok {
			for _, arg := range call.Args {
				if c.a.taintOf(arg) != nil {
					uses = true
				}
			}
		}
		return !uses
	})
	return uses
}

// varRetains says whether the object rooted at variable v outlives the
// request.
func (c *checker) varRetains(v *types.Var, recv ast.Expr) string {
	a := c.a
	if a.isPkgVar(v) {
		return fmt.Sprintf("%s (package variable %s)", exprString(recv), v.Name())
	}
	if fd := a.recvOf[v]; fd != nil {
		if c.a.embedsOrWraps(v.Type()) {
			return ""
		}
		return fmt.Sprintf("%s (reached from the receiver %s, which outlives the request)", exprString(recv), v.Name())
	}
	if h := c.handler(); h != nil && (v.Pos() < h.Pos() || v.Pos() >= h.End()) {
		return fmt.Sprintf("%s (captured from outside the handler)", exprString(recv))
	}
	if fnNode, ok := a.paramOf[v]; ok {
		if lit, ok := fnNode.(*ast.FuncLit); ok && c.litPassedToScoped(lit) {
			return "" // sentry.WithScope(func(s *Scope){...}): a temporary scope
		}
		return fmt.Sprintf("%s (parameter %s, owned by the caller)", exprString(recv), v.Name())
	}
	def, ok := a.defs[v]
	if !ok || def == nil {
		return "" // a zero value declared here: local
	}
	switch d := ast.Unparen(def).(type) {
	case *ast.CompositeLit:
		return ""
	case *ast.UnaryExpr:
		if _, ok := d.X.(*ast.CompositeLit); ok {
			return ""
		}
	case *ast.CallExpr:
		if id, ok := ast.Unparen(d.Fun).(*ast.Ident); ok && (id.Name == "make" || id.Name == "new") {
			return ""
		}
		if fn := a.calleeFunc(d); fn != nil {
			n := fn.Name()
			if n == "Clone" || n == "Copy" || strings.HasPrefix(n, "New") || n == "WithContext" {
				return "" // a fresh object per request
			}
		}
		if c.callChainUsesRequest(d) {
			return ""
		}
	}
	return fmt.Sprintf("%s (%s, from %s)", exprString(recv), v.Name(), exprString(def))
}

// litPassedToScoped reports whether lit is an argument of a call that runs
// it with a temporary scope (WithScope, WithNewScope, Do), so registrations
// on its parameter end with the call.
func (c *checker) litPassedToScoped(lit *ast.FuncLit) bool {
	for i := len(c.stack) - 1; i >= 0; i-- {
		call, ok := c.stack[i].(*ast.CallExpr)
		if !ok {
			continue
		}
		for _, arg := range call.Args {
			if arg == lit {
				name := ""
				switch f := ast.Unparen(call.Fun).(type) {
				case *ast.SelectorExpr:
					name = f.Sel.Name
				case *ast.Ident:
					name = f.Name
				}
				return name == "WithScope" || name == "WithNewScope" || name == "WithLocalScope"
			}
		}
	}
	return false
}

// removedByDefer reports whether a defer in the enclosing function undoes
// the registration made by call: it uses the variable the call's result was
// assigned to (defer unsubscribe(), defer t.Stop(), defer bus.Off(id)), or
// calls a removing method (Delete, Remove, Unsubscribe, ...) on the same
// receiver.
func (c *checker) removedByDefer(call *ast.CallExpr, recv ast.Expr) bool {
	fc := c.fn()
	if fc.body == nil {
		return false
	}
	info := c.a.pass.TypesInfo
	results := map[types.Object]bool{}
	// The call's parent: x := call / x, err := call / x = call.
	for i := len(c.stack) - 1; i >= 0; i-- {
		if as, ok := c.stack[i].(*ast.AssignStmt); ok {
			for _, r := range as.Rhs {
				if ast.Unparen(r) == call {
					for _, l := range as.Lhs {
						if id, ok := l.(*ast.Ident); ok && id.Name != "_" {
							if obj := info.ObjectOf(id); obj != nil {
								results[obj] = true
							}
						}
					}
				}
			}
			break
		}
		if _, ok := c.stack[i].(ast.Stmt); ok && c.stack[i] != call {
			break
		}
	}
	var recvObj types.Object
	if recv != nil {
		if v, _ := c.a.rootVar(recv); v != nil {
			recvObj = v
		}
	}
	found := false
	ast.Inspect(fc.body, func(n ast.Node) bool {
		if found {
			return false
		}
		if lit, ok := n.(*ast.FuncLit); ok && !inDefer(fc.body, lit) {
			return false
		}
		d, ok := n.(*ast.DeferStmt)
		if !ok {
			return true
		}
		ast.Inspect(d.Call, func(m ast.Node) bool {
			switch m := m.(type) {
			case *ast.Ident:
				if results[info.ObjectOf(m)] {
					found = true
				}
			case *ast.CallExpr:
				if se, ok := ast.Unparen(m.Fun).(*ast.SelectorExpr); ok && removeNames[se.Sel.Name] && recvObj != nil {
					// The same receiver: defer s.cache.Delete(k) undoes
					// s.cache.Store(k, r); defer s.conn.Close() does not.
					if root, _ := c.a.rootVar(se.X); root != nil && root == recvObj &&
						types.ExprString(se.X) == types.ExprString(recv) {
						found = true
					}
				}
			}
			return !found
		})
		return false
	})
	if found || recv == nil {
		return found
	}
	// defer forget(id), where forget removes from the same registry; or
	// defer reg.Leave(c) with the value that was registered.
	key := c.placeKey(recv)
	var vals []types.Object
	for _, arg := range call.Args {
		if o := c.valueObj(arg); o != nil {
			vals = append(vals, o)
		}
	}
	return c.deferDoes(func(n ast.Node) bool {
		m, ok := n.(*ast.CallExpr)
		if !ok {
			return false
		}
		se, ok := ast.Unparen(m.Fun).(*ast.SelectorExpr)
		if !ok {
			return false
		}
		same := (recvObj != nil && c.a.isPkgVar(recvObj.(*types.Var)) && func() bool { r, _ := c.a.rootVar(se.X); return r == recvObj }()) ||
			(key != nil && c.placeKey(se.X) == key)
		if !same {
			return false
		}
		if removeNames[se.Sel.Name] || strings.HasPrefix(se.Sel.Name, "Remove") || strings.HasPrefix(se.Sel.Name, "Unregister") || strings.HasPrefix(se.Sel.Name, "Delete") {
			return true
		}
		for _, arg := range m.Args {
			for _, v := range vals {
				if c.valueObj(arg) == v {
					return true
				}
			}
		}
		return false
	})
}

// inDefer reports whether lit is the function of a defer statement in body.
func inDefer(body *ast.BlockStmt, lit *ast.FuncLit) bool {
	in := false
	ast.Inspect(body, func(n ast.Node) bool {
		if d, ok := n.(*ast.DeferStmt); ok && ast.Unparen(d.Call.Fun) == lit {
			in = true
		}
		return !in
	})
	return in
}
