package repocheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"testing"
)

// keyArgsFrom is, for each slog.Logger method, the index of its first
// key/value argument (before it: context, level, message).
var keyArgsFrom = map[string]int{
	"Debug": 1, "Info": 1, "Warn": 1, "Error": 1,
	"DebugContext": 2, "InfoContext": 2, "WarnContext": 2, "ErrorContext": 2,
	"Log": 3, "LogAttrs": 3, "With": 0,
	// slog.String("error", …), slog.Any("error", …): the key comes first.
	"Any": 0, "String": 0,
}

// TestOneErrorKey: every log line carries its error under "err", so
// `jq 'select(.err)'` or `grep err=` finds every failure. A string literal
// "error" in a key position of a log/slog-shaped call fails.
func TestOneErrorKey(t *testing.T) {
	root := repoRoot(t)
	fset := token.NewFileSet()
	files := trackedFiles(t, root, ".go")
	for _, file := range files {
		f, err := parser.ParseFile(fset, filepath.Join(root, file), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			from, ok := keyArgsFrom[sel.Sel.Name]
			if !ok {
				return true
			}
			if pkg, ok := sel.X.(*ast.Ident); (sel.Sel.Name == "Any" || sel.Sel.Name == "String") && (!ok || pkg.Name != "slog") {
				return true
			}
			for i := from; i < len(call.Args); i++ {
				if (i-from)%2 != 0 && sel.Sel.Name != "Any" && sel.Sel.Name != "String" {
					continue // a value, not a key
				}
				lit, ok := call.Args[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				if v, _ := strconv.Unquote(lit.Value); v == "error" && i+1 < len(call.Args) {
					t.Errorf("%s: log key \"error\"; op25b logs errors under \"err\"", fset.Position(lit.Pos()))
				}
				if sel.Sel.Name == "Any" || sel.Sel.Name == "String" {
					break
				}
			}
			return true
		})
	}
	if len(files) < 50 {
		t.Errorf("only %d Go files checked", len(files))
	}
}
