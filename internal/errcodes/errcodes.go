// Package errcodes finds the stable error codes pncpki answers with
// (policy.denied, route.not_found, ...) in its source, so that the
// README's table of them is made from the code and cannot go stale:
// 'go test ./internal/errcodes -update' rewrites it, and the test fails
// while it differs.
package errcodes

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Code is a stable error code and where it comes from.
type Code struct {
	Code    string
	Meaning string // the constant's comment, or the message beside it
	Package string
}

// codePattern is the shape of a stable code: family.reason.
var codePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$`)

// errorFuncs are the functions that answer with a code as a string
// argument.
var errorFuncs = regexp.MustCompile(`(?i)(error|err|refuse|invalid|fail|reject|deny)`)

// Scan parses the non-test Go files under root (skipping generated API
// code and the testdata) and returns every code: constants named Code...
// and string arguments of error-answering calls.
func Scan(root string) ([]Code, error) {
	found := map[string]*Code{}
	calls := map[string]int{}      // call sites of a code written as a literal
	constants := map[string]bool{} // codes defined as constants
	add := func(code, meaning, pkg string, call bool) {
		if call {
			calls[code]++
		}
		if c := found[code]; c != nil {
			if !call { // the constant defines it
				c.Meaning, c.Package = meaning, pkg
			}
			return
		}
		found[code] = &Code{Code: code, Meaning: meaning, Package: pkg}
	}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "gen" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		// lint.go: the codes of lint violations, which are listed with
		// the profiles rather than as refusals.
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || d.Name() == "lint.go" {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		pkg := filepath.ToSlash(rel)
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if !strings.HasPrefix(name.Name, "Code") || i >= len(n.Values) {
						continue
					}
					if code, ok := stringLit(n.Values[i]); ok && codePattern.MatchString(code) && !constants[code] {
						constants[code] = true
						add(code, strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(comment(n), name.Name+":"), name.Name+" ")), pkg, false)
					}
				}
			case *ast.CallExpr:
				if !errorFuncs.MatchString(funcName(n.Fun)) {
					return true
				}
				for i, arg := range n.Args {
					code, ok := stringLit(arg)
					if !ok || !codePattern.MatchString(code) {
						continue
					}
					meaning := ""
					if i+1 < len(n.Args) {
						if m, ok := stringLit(n.Args[i+1]); ok && !strings.Contains(m, "%") {
							meaning = m
						}
					}
					add(code, meaning, pkg, true)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Code, 0, len(found))
	for _, c := range found {
		if calls[c.Code] > 1 && !constants[c.Code] {
			c.Meaning = "" // a message of one of its uses would mislead about the others
		}
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b Code) int { return strings.Compare(a.Code, b.Code) })
	return out, nil
}

func stringLit(e ast.Expr) (string, bool) {
	bl, ok := e.(*ast.BasicLit)
	if !ok || bl.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(bl.Value)
	return s, err == nil
}

func funcName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}

// comment is a constant's line comment, else its doc comment, on one
// line.
func comment(v *ast.ValueSpec) string {
	g := v.Comment
	if g == nil {
		g = v.Doc
	}
	if g == nil {
		return ""
	}
	return strings.Join(strings.Fields(g.Text()), " ")
}

// Table is the README's table of codes.
func Table(codes []Code) string {
	var b strings.Builder
	b.WriteString("| code | meaning | from |\n| --- | --- | --- |\n")
	for _, c := range codes {
		meaning := strings.ReplaceAll(c.Meaning, "|", "\\|")
		fmt.Fprintf(&b, "| `%s` | %s | `%s` |\n", c.Code, meaning, c.Package)
	}
	return b.String()
}
