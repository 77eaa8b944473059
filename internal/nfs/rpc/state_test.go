package rpc

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strings"
	"testing"
)

// TestNoPackageState: the package keeps no state of its own (STYLE.md:
// no package-level mutable globals): its package-level variables are
// error sentinels only. What its connections share (the free list of
// reply buffers, Buffers) belongs to their owner. batchBufs, a free list
// every server of the process shared, failed this.
func TestNoPackageState(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.VAR {
				continue
			}
			for _, sp := range g.Specs {
				vs := sp.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if id.Name == "_" {
						continue // an interface assertion
					}
					if !strings.HasPrefix(strings.ToLower(id.Name), "err") || i >= len(vs.Values) || !isErrorCall(vs.Values[i]) {
						t.Errorf("%s: package-level variable %s is not an error sentinel", fset.Position(id.Pos()), id.Name)
					}
				}
			}
		}
	}
}

// isErrorCall says whether x is errors.New(…) or fmt.Errorf(…).
func isErrorCall(x ast.Expr) bool {
	c, ok := x.(*ast.CallExpr)
	if !ok {
		return false
	}
	sel, ok := c.Fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && (pkg.Name == "errors" && sel.Sel.Name == "New" || pkg.Name == "fmt" && sel.Sel.Name == "Errorf")
}
