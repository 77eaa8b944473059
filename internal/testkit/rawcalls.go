package testkit

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// RawCall is a raw system call (RawSyscall, RawSyscall6 of any package)
// in a package's source: where it is and its arguments.
type RawCall struct {
	Pos  token.Position
	Args []ast.Expr
}

// RawSyscalls returns the raw system calls made by the non-test Go files
// of the current directory (the package under test), for the guards that
// check each one cannot block: a goroutine in a raw call keeps its P
// running, so a garbage collection's stop-the-world waits for the call.
// A package without any fails t (the guard would read nothing).
func RawSyscalls(t testing.TB) []RawCall {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var calls []RawCall
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := call.Fun.(*ast.SelectorExpr); ok && strings.HasPrefix(sel.Sel.Name, "RawSyscall") {
				calls = append(calls, RawCall{Pos: fset.Position(call.Pos()), Args: call.Args})
			}
			return true
		})
	}
	if len(calls) == 0 {
		t.Error("no raw system call found: the guard reads no file")
	}
	return calls
}

// Names reports whether e is the identifier name, or a selector of it
// (pkg.name).
func Names(e ast.Expr, name string) bool {
	switch e := e.(type) {
	case *ast.SelectorExpr:
		return e.Sel.Name == name
	case *ast.Ident:
		return e.Name == name
	}
	return false
}
