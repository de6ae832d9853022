package api_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fluxstudio/fluxauth/api"
	"github.com/fluxstudio/fluxauth/internal/testenv"
)

// probed are the methods the "nothing else" half of the route test tries on every path.
var probed = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// concrete is a path the pattern matches: each wildcard becomes a fresh UUID.
func concrete(pattern string) string {
	segs := strings.Split(pattern, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			segs[i] = uuid.NewString()
		}
	}
	return strings.Join(segs, "/")
}

// matches reports whether a ServeMux path pattern (wildcards, and a trailing slash for a subtree)
// matches path.
func matches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if strings.HasSuffix(pattern, "/") && len(xs) >= len(ps) {
		xs = xs[:len(ps)]
		xs[len(ps)-1] = ""
	}
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if ps[i] != xs[i] && !(strings.HasPrefix(ps[i], "{") && xs[i] != "") {
			return false
		}
	}
	return true
}

// allowed is what the table answers on path, on the public server or the internal listener: its
// methods (HEAD with GET), or nil when a route of every method takes it.
func allowed(internal bool, path string) (methods []string, any bool) {
	for _, rt := range api.Routes() {
		if (rt.Auth == api.Internal) != internal || !matches(rt.Pattern, path) {
			continue
		}
		if rt.Method == "" {
			return nil, true
		}
		methods = append(methods, rt.Method)
		if rt.Method == "GET" {
			methods = append(methods, "HEAD")
		}
	}
	return methods, false
}

// send makes one request to base+path, with an empty JSON object as the body of a POST.
func send(t *testing.T, method, base, path string, headers ...string) *response {
	t.Helper()
	var body string
	if method == "POST" {
		body = "{}"
	}
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	// Bounded: a stream served to whom it should not be would never end.
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: data}
}

// Every route of the table is served, behind the check its Auth names, and only by the listener its
// Auth names; on any other path or method the answer is 404 not_found, or 405 method_not_allowed
// with exactly the table's methods in Allow.
func TestEveryRouteInTheTableIsServedAndNothingElse(t *testing.T) {
	clock := testenv.NewClock(time.Now())
	e := newEnv(t, withInternalListener, withClock(clock), withLegacy(clock)) // the legacy exchange is a route only while on
	internal := e.App.InternalURL()

	seen := map[string]bool{}
	for _, rt := range api.Routes() {
		if seen[rt.String()] {
			t.Errorf("route %s is in the table twice", rt)
		}
		seen[rt.String()] = true
		method, path := rt.Method, concrete(rt.Pattern)
		if method == "" {
			method = "GET"
		}
		if strings.HasPrefix(rt.Pattern, "/debug/pprof/") {
			path += "?seconds=1" // the CPU profile and the trace would take 30 s and 1 s
		}
		// The mux answers what no route takes 404 not_found or 405; a handler's own 404 has a code
		// of its own (provider_disabled).
		served := func(res *response) bool {
			return res.Status != http.StatusMethodNotAllowed && (res.Status != http.StatusNotFound || res.errorCode(t) != "not_found")
		}
		switch rt.Auth {
		case api.Internal:
			if res := send(t, method, internal, path); res.Status == http.StatusNotFound || res.Status == http.StatusMethodNotAllowed {
				t.Errorf("%s on the internal listener: %d, want it served", rt, res.Status)
			}
			if res := send(t, method, e.URL, path); res.Status != http.StatusNotFound {
				t.Errorf("%s on the public listener: %d, want 404", rt, res.Status)
			}
		case api.Public:
			if res := send(t, method, e.URL, path); !served(res) || res.Status == http.StatusUnauthorized && res.errorCode(t) == "invalid_token" {
				t.Errorf("%s without a token: %d %s, want it served to anyone", rt, res.Status, res.Body)
			}
		case api.Bearer, api.Admin:
			if res := send(t, method, e.URL, path); res.Status != http.StatusUnauthorized || res.errorCode(t) != "invalid_token" {
				t.Errorf("%s without a token: %d %s, want 401 invalid_token", rt, res.Status, res.Body)
			}
			// A user of its own each: a route may end the session (logout) or change the password.
			user := e.signup(t, "routes-"+uuid.NewString()+"@example.com")
			res := send(t, method, e.URL, path, bearer(user.AccessToken)...)
			if rt.Auth == api.Admin && (res.Status != http.StatusForbidden || res.errorCode(t) != "forbidden") {
				t.Errorf("%s with a user's token: %d %s, want 403 forbidden", rt, res.Status, res.Body)
			}
			if rt.Auth == api.Bearer && (res.Status == http.StatusUnauthorized || res.Status == http.StatusForbidden) {
				t.Errorf("%s with a user's token: %d %s, want it let through", rt, res.Status, res.Body)
			}
		default:
			t.Errorf("%s has auth %v", rt, rt.Auth)
		}
	}

	// Nothing outside the table: the other methods of every path in it, and paths that are not.
	paths := []string{"/", "/api", "/api/auth", "/api/auth/", "/api/auth/nope", "/api/admin", "/api/admin/users/x/y",
		"/healthz/more", "/.well-known/openid-configuration", "/metrics", "/debug/pprof/", "/admin/js"}
	for _, rt := range api.Routes() {
		paths = append(paths, concrete(rt.Pattern))
	}
	for _, listener := range []struct {
		name     string
		base     string
		internal bool
	}{{"public", e.URL, false}, {"internal", internal, true}} {
		for _, path := range paths {
			want, anyMethod := allowed(listener.internal, path)
			if anyMethod {
				continue
			}
			for _, m := range probed {
				if slices.Contains(want, m) {
					continue
				}
				res := send(t, m, listener.base, path)
				if len(want) == 0 {
					if res.Status != http.StatusNotFound {
						t.Errorf("%s %s %s, in no route: %d, want 404", listener.name, m, path, res.Status)
					}
					continue
				}
				got := strings.Split(res.Header.Get("Allow"), ", ")
				wantAllow := slices.DeleteFunc(slices.Clone(want), func(x string) bool { return x == m })
				slices.Sort(got)
				slices.Sort(wantAllow)
				if res.Status != http.StatusMethodNotAllowed || !slices.Equal(got, wantAllow) {
					t.Errorf("%s %s %s: %d Allow %q, want 405 with Allow %v", listener.name, m, path, res.Status, res.Header.Get("Allow"), wantAllow)
				}
			}
		}
	}
}

// Routes are registered from the table only: in package api, the one ServeMux registration outside
// register is the catch-all that answers what no route takes.
func TestRoutesAreRegisteredFromTheTableOnly(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok {
				continue
			}
			ast.Inspect(fn, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				// A registration on a ServeMux: Handle or HandleFunc on a mux, or given a pattern.
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") || len(call.Args) != 2 {
					return true
				}
				if !onMux(sel.X) && !isPattern(call.Args[0]) {
					return true
				}
				catchAll := fn.Name.Name == "Handler" && len(call.Args) == 2 && isString(call.Args[0], `"/"`)
				if fn.Name.Name != "register" && !catchAll {
					t.Errorf("%s: %s registers a route outside the table", fset.Position(call.Pos()), fn.Name.Name)
				}
				return true
			})
		}
	}
}

// onMux reports whether x names a mux (mux, s.mux).
func onMux(x ast.Expr) bool {
	switch x := x.(type) {
	case *ast.Ident:
		return strings.Contains(strings.ToLower(x.Name), "mux")
	case *ast.SelectorExpr:
		return strings.Contains(strings.ToLower(x.Sel.Name), "mux")
	}
	return false
}

// isPattern reports whether e is a string literal that reads as a ServeMux pattern.
func isPattern(e ast.Expr) bool {
	b, ok := e.(*ast.BasicLit)
	return ok && b.Kind == token.STRING && (strings.HasPrefix(b.Value, `"/`) || strings.Contains(b.Value, " /"))
}

func isString(e ast.Expr, lit string) bool {
	b, ok := e.(*ast.BasicLit)
	return ok && b.Value == lit
}
