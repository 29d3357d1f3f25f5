// Command gen derives the EXI grammars of package exi from the ISO 15118-2,
// ISO 15118-20 and XML Signature schemas. It reads them from the spec
// directory (flag -spec or PNCPKI_SPEC); the schemas themselves are not
// part of pncpki.
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
	schema := flag.String("schema", "iso15118-2", "iso15118-2 or iso15118-20")
	flag.Parse()
	if *spec == "" {
		*spec = "../../../shared/spec"
	}
	gen := map[string]func(string) ([]byte, error){"iso15118-2": xsdgen.ISO2, "iso15118-20": xsdgen.ISO20}[*schema]
	if gen == nil {
		fmt.Fprintln(os.Stderr, "gen: -schema: want iso15118-2 or iso15118-20")
		os.Exit(2)
	}
	src, err := gen(*spec)
	if err == nil {
		err = os.WriteFile(*out, src, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
