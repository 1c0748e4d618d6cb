package config

import (
	"go/ast"
	goparser "go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// Every field of the config's struct types says what it is: a doc
// comment above it or a comment at the end of its line.
func TestEveryFieldDocumented(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := goparser.ParseFile(fset, name, nil, goparser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			ts, ok := n.(*ast.TypeSpec)
			if !ok || !ts.Name.IsExported() {
				return true
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				return true
			}
			for _, fl := range st.Fields.List {
				if fl.Doc == nil && fl.Comment == nil {
					for _, id := range fl.Names {
						t.Errorf("%s: %s.%s has no doc comment", fset.Position(fl.Pos()), ts.Name.Name, id.Name)
					}
				}
			}
			return true
		})
	}
}
