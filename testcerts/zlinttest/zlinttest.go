// Package zlinttest runs zlint over certificates in tests. It is imported by tests
// only, so the binaries do not carry zlint.
package zlinttest

import (
	"sort"
	"testing"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// Excluded lists the zlint sources that do not apply to this PKI, with why.
// Every other source (RFC 3279, 5280, 5480, 5891, 6960, 6962, 8813 and the
// Community lints) runs, and any warn, error or fatal finding fails a test.
var Excluded = map[lint.LintSource]string{
	lint.CABFBaselineRequirements:      "CA/Browser Forum TLS BRs govern publicly trusted web server certificates; ISO 15118 and OCPP PKIs are private and follow ISO 15118-2 Annex F (no SAN, DC attributes, 800-byte limit)",
	lint.CABFCSBaselineRequirements:    "code signing BRs: pncpki issues no code signing certificates",
	lint.CABFSMIMEBaselineRequirements: "S/MIME BRs: pncpki issues no e-mail certificates",
	lint.CABFEVGuidelines:              "EV guidelines: extended validation web certificates only",
	lint.MozillaRootStorePolicy:        "Mozilla root store policy: browser trust stores, which ISO 15118 roots are not in",
	lint.AppleRootStorePolicy:          "Apple root store policy: browser trust stores",
	lint.ChromeRootStorePolicy:         "Chrome root store policy: browser trust stores",
	lint.EtsiEsi:                       "ETSI qualified certificates (eIDAS): not a Plug and Charge requirement",
}

var registry = func() lint.Registry {
	var include lint.SourceList
	for _, s := range []lint.LintSource{lint.RFC3279, lint.RFC5280, lint.RFC5480, lint.RFC5891, lint.RFC6960, lint.RFC6962, lint.RFC8813, lint.Community} {
		if _, ok := Excluded[s]; !ok {
			include = append(include, s)
		}
	}
	r, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: include})
	if err != nil {
		panic(err)
	}
	return r
}()

// Findings returns the warn, error and fatal results of a DER certificate,
// as "lint_name: status", sorted.
func Findings(der []byte) ([]string, error) {
	c, err := zx509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	rs := zlint.LintCertificateEx(c, registry)
	var out []string
	for name, r := range rs.Results {
		if r.Status == lint.Warn || r.Status == lint.Error || r.Status == lint.Fatal {
			out = append(out, name+": "+r.Status.String())
		}
	}
	sort.Strings(out)
	return out, nil
}

// Check fails t for any warn, error or fatal finding on der.
func Check(t testing.TB, name string, der []byte) {
	t.Helper()
	fs, err := Findings(der)
	if err != nil {
		t.Errorf("%s: zlint cannot parse: %v", name, err)
		return
	}
	for _, f := range fs {
		t.Errorf("%s: zlint %s", name, f)
	}
}
