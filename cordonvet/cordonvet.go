// Package cordonvet is a go/analysis analyzer that finds request-scoped
// values which escape their request.
//
// A request-scoped value is one that belongs to a single HTTP request and
// must not be reachable once that request has ended: *http.Request,
// http.ResponseWriter, the request's context (r.Context() and contexts
// derived from it), *gin.Context, echo.Context (v4 and v5),
// *fasthttp.RequestCtx and the byte slices borrowed from it
// (ctx.PostBody(), ctx.QueryArgs().Peek(...), ...), and cordon's session
// handle *session.Session.
//
// The analyzer reports such a value when it escapes its request:
//
//   - captured by a goroutine (a go statement, errgroup's or WaitGroup's Go)
//     that is not joined before the function returns;
//   - stored in a package variable, in a field of a longer-lived object (the
//     handler's receiver, a variable captured from outside the handler) or
//     in a map or slice reachable from one;
//   - sent on a channel;
//   - registered as a callback or entry with something that outlives the
//     request (error-reporter processors and scopes, time.AfterFunc,
//     subscriptions, caches), unless a defer removes it before return;
//   - or carried to any of those inside a closure or a composite value.
//
// It stays quiet on copies of plain values (strings, numbers, structs of
// them; string(b) and bytes.Clone(b) of borrowed bytes), gin's c.Copy(),
// contexts from context.Background, context.TODO and cordon's
// scope.Detach, a context.WithoutCancel context handed on with copied
// values (unless a request-scoped value is read through it), goroutines
// joined on every path (sync.WaitGroup, errgroup, a receive of their
// result, a select on their result or the handed context's Done,
// fasthttp's TimeoutError*), the request's context as a call's first
// argument, closures handed to synchronous helpers, stores and
// registrations undone by a defer, and a framework's own handling of its
// own request types.
//
// More request-scoped types are named with the -scoped flag or a
// //cordonvet:scoped directive; handles returned for the request by other
// packages are inferred when they hold a request-scoped field.
//
// A finding is suppressed by a comment at the end of its line or alone on
// the line above:
//
//	//cordonvet:ignore <reason>
//
// The reason is required; an ignore comment without one suppresses nothing
// and is itself reported.
//
// The analysis is mostly intraprocedural and flow-insensitive within a
// function, with a path-sensitive search for joins; docs/cordonvet.md lists
// what it does not see.
package cordonvet

import (
	"go/ast"
	"go/token"
	"go/types"
	"strings"

	"golang.org/x/tools/go/analysis"
)

// Analyzer reports request-scoped values that escape their request.
var Analyzer = &analysis.Analyzer{
	Name: "cordonvet",
	Doc: "report request-scoped values (*http.Request, http.ResponseWriter, the request context, " +
		"*gin.Context, echo.Context, *fasthttp.RequestCtx and its borrowed bytes, *session.Session) " +
		"that escape their request through goroutines, package variables, long-lived fields, " +
		"channels or registered callbacks",
	URL: "https://github.com/cordon-sec/cordon/blob/main/docs/cordonvet.md",
	Run: run,
}

// Flags of the analyzer (also settings of the golangci-lint plugin).
var (
	flagScoped string
	// flagStrictWithoutCancel reports every context.WithoutCancel context
	// handed to a goroutine or kept, even with only copied values beside it.
	flagStrictWithoutCancel bool
)

func init() {
	Analyzer.Flags.StringVar(&flagScoped, "scoped", "",
		"comma-separated list of more request-scoped types, as importpath.Name (example: github.com/gorilla/sessions.Session)")
	Analyzer.Flags.BoolVar(&flagStrictWithoutCancel, "strict-withoutcancel", false,
		"also report a context.WithoutCancel context handed to a goroutine or kept with only copied values beside it")
}

// ScopedDirective names more request-scoped types for one package:
//
//	//cordonvet:scoped github.com/acme/authn.Grant example.com/app.Visit
//	//cordonvet:scoped Visit          (a type of this package)
//
// Alone in the doc comment of a type declaration, it names that type.
const ScopedDirective = "//cordonvet:scoped"

// parseScoped adds the type names of a -scoped value or a directive to m;
// a bare name is a type of the package pkgPath.
func parseScoped(m map[string]bool, list, pkgPath string) {
	for _, f := range strings.FieldsFunc(list, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		f = strings.TrimPrefix(f, "*")
		if f == "" {
			continue
		}
		if !strings.Contains(f, ".") || strings.LastIndex(f, "/") > strings.LastIndex(f, ".") {
			f = pkgPath + "." + f
		}
		m[f] = true
	}
}

// IgnoreDirective is the comment prefix that suppresses one finding.
const IgnoreDirective = "//cordonvet:ignore"

func run(pass *analysis.Pass) (any, error) {
	a := newAnalysis(pass)
	a.collectIgnores()
	a.propagate()
	a.summarizeReads()
	for _, f := range pass.Files {
		a.checkFile(f)
	}
	return nil, nil
}

// ignore is one //cordonvet:ignore comment.
type ignore struct {
	pos    token.Pos
	reason string
}

// collectIgnores records every ignore directive and reports those without a
// reason.
func (a *state) collectIgnores() {
	for _, f := range a.pass.Files {
		// //cordonvet:scoped alone in a type's doc comment names that type.
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, sp := range gd.Specs {
				ts := sp.(*ast.TypeSpec)
				for _, doc := range []*ast.CommentGroup{gd.Doc, ts.Doc} {
					if doc == nil || (doc == gd.Doc && len(gd.Specs) != 1) {
						continue
					}
					for _, c := range doc.List {
						if strings.TrimSpace(c.Text) == ScopedDirective {
							a.scoped[a.pass.Pkg.Path()+"."+ts.Name.Name] = true
						}
					}
				}
			}
		}
		// codeBefore maps a line to the position of the first syntax node
		// that starts on it.
		codeBefore := map[lineKey]token.Pos{}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n.(type) {
			case nil, *ast.Comment, *ast.CommentGroup, *ast.File:
				return n != nil
			}
			p := a.pass.Fset.Position(n.Pos())
			k := lineKey{p.Filename, p.Line}
			if old, ok := codeBefore[k]; !ok || n.Pos() < old {
				codeBefore[k] = n.Pos()
			}
			return true
		})
		for _, cg := range f.Comments {
			for _, c := range cg.List {
				if rest, ok := strings.CutPrefix(c.Text, ScopedDirective); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
					rest, _, _ = strings.Cut(rest, "//")
					parseScoped(a.scoped, rest, a.pass.Pkg.Path())
					continue
				}
				if !strings.HasPrefix(c.Text, IgnoreDirective) {
					continue
				}
				rest := strings.TrimPrefix(c.Text, IgnoreDirective)
				if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
					continue // some other directive sharing the prefix
				}
				// A reason ends where another // comment starts.
				reason, _, _ := strings.Cut(rest, "//")
				reason = strings.TrimSpace(reason)
				p := a.pass.Fset.Position(c.Pos())
				if reason == "" {
					a.pass.Report(analysis.Diagnostic{
						Pos:     c.Pos(),
						End:     c.End(),
						Message: "cordonvet:ignore needs a reason: write //cordonvet:ignore <why this value cannot outlive its request>; without one it suppresses nothing",
					})
					continue
				}
				// A comment after code on its line covers that line; a
				// comment on a line of its own covers the next line.
				line := p.Line
				if !codeBefore[lineKey{p.Filename, p.Line}].IsValid() || codeBefore[lineKey{p.Filename, p.Line}] > c.Pos() {
					line++
				}
				a.ignores[lineKey{p.Filename, line}] = ignore{pos: c.Pos(), reason: reason}
			}
		}
	}
}

type lineKey struct {
	file string
	line int
}

// report emits one finding unless an ignore directive with a reason covers
// its line: one after code on the same line, or one alone on the line
// above.
func (a *state) report(pos token.Pos, msg string) {
	p := a.pass.Fset.Position(pos)
	if _, ok := a.ignores[lineKey{p.Filename, p.Line}]; ok {
		return
	}
	k := posKey{pos, msg}
	if a.reported[k] {
		return
	}
	a.reported[k] = true
	a.pass.Report(analysis.Diagnostic{Pos: pos, Message: msg})
}

// assignAt is one assignment to a variable.
type assignAt struct {
	pos      token.Pos
	detached bool
}

type posKey struct {
	pos token.Pos
	msg string
}

// state holds the state of one run over one package.
type state struct {
	pass     *analysis.Pass
	ignores  map[lineKey]ignore
	reported map[posKey]bool
	// tainted maps a variable to where its request-scoped value came from.
	tainted map[*types.Var]*origin
	// detached marks variables of a request-scoped type whose value is a
	// detached copy (gin's c.Copy()) or a parameter bound to an untainted
	// argument.
	detached map[*types.Var]bool
	// assigns lists, per variable, the plain assignments (=) to it and
	// whether each assigned a detached value (c = c.Copy()).
	assigns map[*types.Var][]assignAt
	// carries marks functions of this package that return what a
	// request-scoped argument gave them (func newJob(r) *Job { return
	// &Job{req: r} }).
	carries map[*types.Func]bool
	// defs maps a local variable to the expression it was first defined
	// with (nil for a zero-value declaration).
	defs map[*types.Var]ast.Expr
	// funcOf maps a parameter or receiver to its function's node.
	paramOf map[*types.Var]ast.Node
	recvOf  map[*types.Var]*ast.FuncDecl
	// scoped holds the extra request-scoped types ("importpath.Name") of
	// the -scoped flag and the package's //cordonvet:scoped directives.
	scoped map[string]bool
	// inferCache remembers inferScoped per struct type.
	inferCache map[types.Type]bool
	// readsValues marks functions of this package that read a
	// request-scoped value out of a context parameter (session.FromContext
	// (ctx), ctx.Value(k).(*T) of a request-scoped T).
	readsValues map[*types.Func]bool
	// bodies maps the package's functions to their bodies (funcBodies).
	bodies map[*types.Func]*ast.BlockStmt
}

func newAnalysis(pass *analysis.Pass) *state {
	a := &state{
		pass:        pass,
		ignores:     map[lineKey]ignore{},
		reported:    map[posKey]bool{},
		tainted:     map[*types.Var]*origin{},
		detached:    map[*types.Var]bool{},
		defs:        map[*types.Var]ast.Expr{},
		assigns:     map[*types.Var][]assignAt{},
		carries:     map[*types.Func]bool{},
		paramOf:     map[*types.Var]ast.Node{},
		recvOf:      map[*types.Var]*ast.FuncDecl{},
		scoped:      map[string]bool{},
		inferCache:  map[types.Type]bool{},
		readsValues: map[*types.Func]bool{},
	}
	parseScoped(a.scoped, flagScoped, pass.Pkg.Path())
	return a
}
