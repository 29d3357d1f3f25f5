// Command gen derives the EXI grammars of package exi from the ISO 15118-2
// and XML Signature schemas. It reads them from the spec directory (flag
// -spec or PNCPKI_SPEC); the schemas themselves are not part of pncpki.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/pncpki/pncpki/contract/exi/internal/xsdgen"
)

func main() {
	spec := flag.String("spec", os.Getenv("PNCPKI_SPEC"), "directory of the specification data (../shared/spec)")
	out := flag.String("o", "iso2_grammar.go", "output file")
	flag.Parse()
	if *spec == "" {
		*spec = "../../../shared/spec"
	}
	src, err := xsdgen.ISO2(*spec)
	if err == nil {
		err = os.WriteFile(*out, src, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
