package policies

import (
	"fmt"
	"strings"
)

// IdentifierError reports why a string is not a valid identifier of the
// named kind. Kind is one of "EVSEID", "SECC ID", "EMAID", "PCID",
// "operator ID" or "provider ID".
type IdentifierError struct {
	Kind   string
	Value  string
	Reason string
}

func (e *IdentifierError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.Kind, e.Value, e.Reason)
}

func idErr(kind, value, format string, args ...any) error {
	return &IdentifierError{Kind: kind, Value: value, Reason: fmt.Sprintf(format, args...)}
}

func isUpperAlpha(c byte) bool { return c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool      { return isUpperAlpha(c) || isDigit(c) }

func allAlnum(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) {
			return false
		}
	}
	return true
}

// maxIdentifierInput bounds every identifier parser before any work is done.
const maxIdentifierInput = 128

// NormalizeOperatorID returns the compact form of an EVSE operator ID
// (ISO 15118-2 Annex H, DIN SPEC 91286): two-letter country code followed by
// three alphanumeric characters, upper case, with the optional '*' or '-'
// separator removed. "DE*ABC" and "deabc" both become "DEABC".
func NormalizeOperatorID(s string) (string, error) {
	return normalizePartyID("operator ID", s, '*')
}

// NormalizeProviderID returns the compact form of an eMobility service
// provider ID: country code and three alphanumerics, e.g. "DE-8AA" -> "DE8AA".
func NormalizeProviderID(s string) (string, error) {
	return normalizePartyID("provider ID", s, '-')
}

// stripSeparators removes the separators of party IDs and EMAIDs; one for
// all calls, as a Replacer builds its tables on first use.
var stripSeparators = strings.NewReplacer("*", "", "-", "")

func normalizePartyID(kind, s string, _ byte) (string, error) {
	if len(s) > maxIdentifierInput {
		return "", idErr(kind, s[:16]+"...", "longer than %d characters", maxIdentifierInput)
	}
	u := strings.ToUpper(strings.TrimSpace(s))
	u = stripSeparators.Replace(u)
	if len(u) != 5 {
		return "", idErr(kind, s, "want country code and three characters, e.g. DE*ABC")
	}
	if !isUpperAlpha(u[0]) || !isUpperAlpha(u[1]) {
		return "", idErr(kind, s, "country code must be two letters")
	}
	if !allAlnum(u[2:]) {
		return "", idErr(kind, s, "party code must be three letters or digits")
	}
	return u, nil
}

// EVSEID is a parsed EVSE identifier in the ISO 15118-2 Annex H form
// <country>[*]<operator>[*]E<power outlet ID>.
type EVSEID struct {
	Country  string // ISO 3166-1 alpha-2
	Operator string // three alphanumerics
	Outlet   string // power outlet ID, upper case, inner '*' kept
}

// OperatorID returns the compact operator ID (country and operator code).
func (e EVSEID) OperatorID() string { return e.Country + e.Operator }

// String returns the separated form, e.g. "DE*ABC*E123456*1".
func (e EVSEID) String() string { return e.Country + "*" + e.Operator + "*E" + e.Outlet }

// Compact returns the form without any separator, e.g. "DEABCE1234561".
func (e EVSEID) Compact() string {
	return e.Country + e.Operator + "E" + strings.ReplaceAll(e.Outlet, "*", "")
}

// ParseEVSEID parses and normalises an EVSEID. Separators '*' after the
// country code and the operator ID are optional; the power outlet ID is
// 1..31 alphanumerics and may contain further '*' separators. Without its
// separators an EVSEID is 7..37 characters (the ISO 15118-2 XSD bounds);
// with them at most 48. Lower case is accepted and upper-cased.
//
// The DIN SPEC 91286 telephone-number form (+49*810*...) is recognised and
// refused with its own message: it carries no alphanumeric operator ID, so no
// tenant policy can place it.
func ParseEVSEID(s string) (EVSEID, error) {
	const kind = "EVSEID"
	if len(s) > maxIdentifierInput {
		return EVSEID{}, idErr(kind, s[:16]+"...", "longer than %d characters", maxIdentifierInput)
	}
	if n := len(s) - strings.Count(s, "*"); n < 7 || n > 37 || len(s) > 48 {
		return EVSEID{}, idErr(kind, s, "length %d without separators outside 7..37", n)
	}
	if s[0] == '+' || (isDigit(s[0]) && len(s) > 1 && isDigit(s[1])) {
		return EVSEID{}, idErr(kind, s, "telephone-number (DIN SPEC 91286) form has no operator ID; use the ISO form CC*OOO*E...")
	}
	u := strings.ToUpper(s)
	var e EVSEID
	if !isUpperAlpha(u[0]) || !isUpperAlpha(u[1]) {
		return EVSEID{}, idErr(kind, s, "must start with a two-letter country code")
	}
	e.Country, u = u[:2], u[2:]
	u = strings.TrimPrefix(u, "*")
	if len(u) < 3 || !allAlnum(u[:3]) {
		return EVSEID{}, idErr(kind, s, "operator ID must be three letters or digits after the country code")
	}
	e.Operator, u = u[:3], u[3:]
	u = strings.TrimPrefix(u, "*")
	if len(u) == 0 || u[0] != 'E' {
		return EVSEID{}, idErr(kind, s, "ID type after the operator ID must be 'E'")
	}
	u = u[1:]
	if len(u) == 0 {
		return EVSEID{}, idErr(kind, s, "power outlet ID is empty")
	}
	if u[0] == '*' || u[len(u)-1] == '*' || strings.Contains(u, "**") {
		return EVSEID{}, idErr(kind, s, "power outlet ID has a misplaced '*' separator")
	}
	n := 0
	for i := 0; i < len(u); i++ {
		switch c := u[i]; {
		case isAlnum(c):
			n++
		case c == '*':
		default:
			return EVSEID{}, idErr(kind, s, "power outlet ID has invalid character %q", c)
		}
	}
	if n > 31 {
		return EVSEID{}, idErr(kind, s, "power outlet ID longer than 31 characters")
	}
	e.Outlet = u
	return e, nil
}

// SECCID is a parsed ISO 15118-20 style SECC identifier:
// <country><operator>S<controller ID><check digit>, 39..64 characters.
type SECCID struct {
	Country    string
	Operator   string
	Controller string // controller ID, 32..57 alphanumerics
	Check      byte   // trailing check character
}

// OperatorID returns the compact operator ID.
func (s SECCID) OperatorID() string { return s.Country + s.Operator }

// String returns the compact form.
func (s SECCID) String() string {
	return s.Country + s.Operator + "S" + s.Controller + string(s.Check)
}

// ParseSECCID parses a SECC ID in the syntax that the ecosystem certificate
// policies (Hubject V2G CP, following ISO 15118-20) require in the SECC leaf
// CN: country code (2), operator ID (3), 'S', controller ID (at least 32
// alphanumerics) and one check character, 39 to 64 characters in all,
// optionally with '*' after the country code and operator ID.
//
// The check character is validated for form only (one alphanumeric): the
// algorithm that computes it is not in any public source we could verify, so
// checking it would reject valid identifiers.
func ParseSECCID(s string) (SECCID, error) {
	const kind = "SECC ID"
	if len(s) > maxIdentifierInput {
		return SECCID{}, idErr(kind, s[:16]+"...", "longer than %d characters", maxIdentifierInput)
	}
	u := strings.ToUpper(s)
	var id SECCID
	if len(u) < 2 || !isUpperAlpha(u[0]) || !isUpperAlpha(u[1]) {
		return SECCID{}, idErr(kind, s, "must start with a two-letter country code")
	}
	id.Country, u = u[:2], strings.TrimPrefix(u[2:], "*")
	if len(u) < 3 || !allAlnum(u[:3]) {
		return SECCID{}, idErr(kind, s, "operator ID must be three letters or digits")
	}
	id.Operator, u = u[:3], strings.TrimPrefix(u[3:], "*")
	if len(u) == 0 || u[0] != 'S' {
		return SECCID{}, idErr(kind, s, "ID type after the operator ID must be 'S'")
	}
	u = u[1:]
	if !allAlnum(u) {
		return SECCID{}, idErr(kind, s, "controller ID and check digit must be letters or digits")
	}
	if total := 6 + len(u); total < 39 || total > 64 {
		return SECCID{}, idErr(kind, s, "length %d (without separators) outside 39..64", total)
	}
	id.Controller, id.Check = u[:len(u)-1], u[len(u)-1]
	return id, nil
}

// EMAID is a parsed e-mobility account identifier (ISO 15118-2 Annex H,
// DIN SPEC 91286): country (2), provider ID (3), instance (9) and the check
// character.
type EMAID struct {
	Country  string
	Provider string
	Instance string
	Check    byte
}

// ProviderID returns the compact provider ID, e.g. "DE8AA".
func (e EMAID) ProviderID() string { return e.Country + e.Provider }

// String returns the normalised 15-character form without separators.
func (e EMAID) String() string { return e.Country + e.Provider + e.Instance + string(e.Check) }

// ParseEMAID parses and normalises an EMAID. Separators '-' (or '*') between
// the parts are accepted and removed, lower case is upper-cased. A 14
// character EMAID gets its check digit computed; a 15 character one must
// carry the right one.
func ParseEMAID(s string) (EMAID, error) {
	const kind = "EMAID"
	if len(s) > maxIdentifierInput {
		return EMAID{}, idErr(kind, s[:16]+"...", "longer than %d characters", maxIdentifierInput)
	}
	u := strings.ToUpper(stripSeparators.Replace(s))
	if len(u) != 14 && len(u) != 15 {
		return EMAID{}, idErr(kind, s, "want 14 or 15 characters without separators, got %d", len(u))
	}
	if !isUpperAlpha(u[0]) || !isUpperAlpha(u[1]) {
		return EMAID{}, idErr(kind, s, "must start with a two-letter country code")
	}
	if !allAlnum(u[2:]) {
		return EMAID{}, idErr(kind, s, "provider ID and instance must be letters or digits")
	}
	check, err := EMAIDCheckDigit(u[:14])
	if err != nil {
		return EMAID{}, err
	}
	if len(u) == 15 && u[14] != check {
		return EMAID{}, idErr(kind, s, "check digit %q is wrong, want %q", u[14], check)
	}
	return EMAID{Country: u[:2], Provider: u[2:5], Instance: u[5:14], Check: check}, nil
}

// EMAIDCheckDigit computes the check character of a 14-character EMAID
// (without separators) with the matrix method of DIN SPEC 91286 / eMI3
// "Check digit calculation for Contract-IDs".
//
// Each character c (value v in 0..35 for 0-9A-Z) is read as a 2x2 matrix
// whose first row (q1 q2) lies in Z2 and second row (r1 r2) in Z3, with
// v = 18*q1 + 9*q2 + 3*r1 + r2. The check matrix is
//
//	(q1 q2)_15 = sum_i (q1 q2)_i * P1^i            (mod 2)
//	(r1 r2)_15 = sum_i (r1 r2)_i * P2^i * -P2^-15  (mod 3)
//
// with P1 = [[0 1][1 1]] over Z2 and P2 = [[0 1][1 2]] over Z3, i = 1..14,
// and is read back as a character the same way.
func EMAIDCheckDigit(s string) (byte, error) {
	if len(s) != 14 {
		return 0, idErr("EMAID", s, "check digit needs 14 characters, got %d", len(s))
	}
	p1 := mat2{0, 1, 1, 1}
	p2 := mat2{0, 1, 1, 2}
	pow1, pow2 := p1, p2
	var q [2]int
	var r [2]int
	for i := 0; i < 14; i++ {
		c := s[i]
		var v int
		switch {
		case isDigit(c):
			v = int(c - '0')
		case isUpperAlpha(c):
			v = int(c-'A') + 10
		default:
			return 0, idErr("EMAID", s, "invalid character %q", c)
		}
		q1, q2, r1, r2 := v/18, (v/9)%2, (v/3)%3, v%3
		q[0] += q1*pow1.a + q2*pow1.c
		q[1] += q1*pow1.b + q2*pow1.d
		r[0] += r1*pow2.a + r2*pow2.c
		r[1] += r1*pow2.b + r2*pow2.d
		pow1 = pow1.mul(p1, 2)
		pow2 = pow2.mul(p2, 3)
	}
	// -P2^-15 over Z3 is [[0 2][2 1]].
	neg := mat2{0, 2, 2, 1}
	r1 := (r[0]*neg.a + r[1]*neg.c) % 3
	r2 := (r[0]*neg.b + r[1]*neg.d) % 3
	v := 18*(q[0]%2) + 9*(q[1]%2) + 3*r1 + r2
	if v < 10 {
		return byte('0' + v), nil
	}
	return byte('A' + v - 10), nil
}

type mat2 struct{ a, b, c, d int }

func (m mat2) mul(n mat2, mod int) mat2 {
	return mat2{
		(m.a*n.a + m.b*n.c) % mod, (m.a*n.b + m.b*n.d) % mod,
		(m.c*n.a + m.d*n.c) % mod, (m.c*n.b + m.d*n.d) % mod,
	}
}

// NormalizePCID validates a provisioning certificate ID (ISO 15118-2: 17 or
// 18 alphanumerics, the vehicle maker's WMI first and an optional check
// character last) and returns it upper-cased.
func NormalizePCID(s string) (string, error) {
	const kind = "PCID"
	if len(s) > maxIdentifierInput {
		return "", idErr(kind, s[:16]+"...", "longer than %d characters", maxIdentifierInput)
	}
	u := strings.ToUpper(s)
	if len(u) != 17 && len(u) != 18 {
		return "", idErr(kind, s, "want 17 or 18 characters, got %d", len(u))
	}
	if !allAlnum(u) {
		return "", idErr(kind, s, "must be letters and digits only")
	}
	return u, nil
}
