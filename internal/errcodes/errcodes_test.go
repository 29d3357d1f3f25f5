package errcodes

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the README's table of error codes")

const (
	begin = "<!-- error codes: go test ./internal/errcodes -update -->\n"
	end   = "<!-- end of error codes -->\n"
)

// TestREADMETable: the README lists exactly the codes the source answers
// with, in the table Table makes.
func TestREADMETable(t *testing.T) {
	codes, err := Scan("../..")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"policy.denied", "route.not_found", "ca.offline", "request.too_large", "csr.profile"} {
		if !strings.Contains(Table(codes), "`"+want+"`") {
			t.Errorf("Scan missed %s", want)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md has no table of error codes between %q and %q", begin, end)
	}
	want := Table(codes)
	if got := s[i+len(begin) : j]; got != want {
		if *update {
			if err := os.WriteFile("../../README.md", []byte(s[:i+len(begin)]+want+s[j:]), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Errorf("README.md's table of error codes is stale: go test ./internal/errcodes -update")
	}
}
