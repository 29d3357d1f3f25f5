package policies

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"slices"
	"strings"

	"github.com/cloudflare/circl/sign/ed448"
	"github.com/pncpki/pncpki/internal/ed448x509"
)

// Violation is one way a certificate or CSR breaks its profile. Code is
// stable and machine-readable; Message is for people.
type Violation struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (v Violation) String() string { return v.Code + ": " + v.Message }

// Violations is the list a check returns; empty means clean.
type Violations []Violation

func (vs *Violations) add(code, format string, args ...any) {
	*vs = append(*vs, Violation{Code: code, Message: fmt.Sprintf(format, args...)})
}

// Error joins the violations into one message, or returns "" when clean.
func (vs Violations) Error() string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.String()
	}
	return strings.Join(s, "; ")
}

// Violation codes. They are part of the API: never renumber or reuse one.
const (
	CodeKeyAlgorithm     = "key.algorithm"
	CodeKeySize          = "key.size"
	CodeSigAlgorithm     = "signature.algorithm"
	CodeDERSize          = "der.size"
	CodeVersion          = "version"
	CodeSerial           = "serial"
	CodeBasicConstraints = "basic_constraints"
	CodePathLen          = "basic_constraints.path_len"
	CodeKeyUsage         = "key_usage"
	CodeExtKeyUsage      = "ext_key_usage"
	CodeSubjectCN        = "subject.cn"
	CodeSubjectDC        = "subject.dc"
	CodeSubjectO         = "subject.o"
	CodeValidity         = "validity"
	CodeSKI              = "subject_key_id"
	CodeAKI              = "authority_key_id"
	CodeSAN              = "subject_alt_name"
	CodeSelfSigned       = "self_signed"
	CodeOCSPNoCheck      = "ocsp_nocheck"
	CodeAltKey           = "alt_public_key"
)

// OIDOCSPNoCheck is id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1).
var OIDOCSPNoCheck = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 48, 1, 5}

var (
	oidExtKeyUsage         = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}
	oidCommonName          = asn1.ObjectIdentifier{2, 5, 4, 3}
	oidOrganization        = asn1.ObjectIdentifier{2, 5, 4, 10}
)

// attrs returns the values of one attribute type in a name, in order.
func attrs(rdn pkix.RDNSequence, oid asn1.ObjectIdentifier) []string {
	var out []string
	for _, set := range rdn {
		for _, atv := range set {
			if atv.Type.Equal(oid) {
				if s, ok := atv.Value.(string); ok {
					out = append(out, s)
				} else {
					out = append(out, fmt.Sprint(atv.Value))
				}
			}
		}
	}
	return out
}

// rdnOf returns the subject as encoded, or for a template not yet signed,
// as it will be encoded.
func rdnOf(raw []byte, name pkix.Name) pkix.RDNSequence {
	var rdn pkix.RDNSequence
	if len(raw) > 0 {
		if rest, err := asn1.Unmarshal(raw, &rdn); err == nil && len(rest) == 0 {
			return rdn
		}
	}
	return name.ToRDNSequence()
}

// CheckKey checks a subject public key against the profile's key rule.
func (p *Profile) CheckKey(pub any) Violations {
	var vs Violations
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch {
		case k.Curve == elliptic.P256() && p.Keys != KeyP521:
		case p.Keys == KeyOCPP && k.Curve == elliptic.P384():
		case p.Keys == KeyP521 && k.Curve == elliptic.P521():
		default:
			vs.add(CodeKeyAlgorithm, "ECDSA key on %s; %s requires %s", k.Curve.Params().Name, p.Name, p.Keys)
		}
	case ed448.PublicKey:
		if p.Keys != KeyEd448 {
			vs.add(CodeKeyAlgorithm, "Ed448 key; %s requires %s", p.Name, p.Keys)
		}
	case *rsa.PublicKey:
		if p.Keys != KeyOCPP {
			vs.add(CodeKeyAlgorithm, "RSA key; %s requires %s ([V2G2-006], V2G20-2674)", p.Name, p.Keys)
		} else if k.N.BitLen() < 2048 {
			vs.add(CodeKeySize, "RSA key of %d bits; OCPP requires at least 2048", k.N.BitLen())
		}
	default:
		vs.add(CodeKeyAlgorithm, "%T key; %s requires %s", pub, p.Name, p.Keys)
	}
	return vs
}

// checkSubject checks CN, O and DC.
func (p *Profile) checkSubject(rdn pkix.RDNSequence, forms SECCForms) Violations {
	var vs Violations
	cns := attrs(rdn, oidCommonName)
	switch {
	case len(cns) != 1:
		vs.add(CodeSubjectCN, "subject has %d common names, want exactly one", len(cns))
	default:
		if err := p.CheckCN(cns[0], forms); err != nil {
			vs.add(CodeSubjectCN, "%v", err)
		}
	}
	dcs := attrs(rdn, OIDDomainComponent)
	switch {
	case p.DC == "" && len(dcs) > 0:
		vs.add(CodeSubjectDC, "domainComponent %q present; %s has none", strings.Join(dcs, ","), p.Name)
	case p.DCOptional && len(dcs) == 0:
	case p.DC != "" && (len(dcs) != 1 || dcs[0] != p.DC):
		vs.add(CodeSubjectDC, "domainComponent is %q, want exactly %q (ISO 15118-2 Annex F)", strings.Join(dcs, ","), p.DC)
	}
	if os := attrs(rdn, oidOrganization); p.RequireO && (len(os) != 1 || os[0] == "") {
		vs.add(CodeSubjectO, "organizationName must be present once (OCPP A00.FR.405: the CPO's organization)")
	}
	return vs
}

// CheckCN checks a common name against the profile's CN rule.
func (p *Profile) CheckCN(cn string, forms SECCForms) error {
	switch p.CN {
	case CNSECC:
		_, err := SECCOperatorID(cn, forms)
		return err
	case CNEMAID:
		e, err := ParseEMAID(cn)
		if err != nil {
			return err
		}
		if len(cn) != 15 || e.String() != cn {
			return fmt.Errorf("contract CN %q must be the normalised EMAID %s ([V2G2-108])", cn, e)
		}
	case CNPCID:
		n, err := NormalizePCID(cn)
		if err != nil {
			return err
		}
		if n != cn {
			return fmt.Errorf("provisioning CN %q must be the upper-case PCID %s", cn, n)
		}
	case CNStationSerial:
		// OCPP serialNumber is string[25], identity string[48]; both are
		// printable identifiers without separators that would break DNs.
		if cn == "" || len(cn) > 64 {
			return fmt.Errorf("station CN must be 1..64 characters, got %d", len(cn))
		}
		for i := 0; i < len(cn); i++ {
			if c := cn[i]; !isAlnum(c) && !(c >= 'a' && c <= 'z') && !strings.ContainsRune("*-_=:+|@.", rune(c)) {
				return fmt.Errorf("station CN %q has invalid character %q", cn, c)
			}
		}
	case CNFQDN:
		if !isFQDN(cn) {
			return fmt.Errorf("CN %q is not a fully qualified DNS name", cn)
		}
	default:
		if strings.TrimSpace(cn) == "" || len(cn) > 64 {
			return fmt.Errorf("CN must be 1..64 characters")
		}
	}
	return nil
}

func isFQDN(s string) bool {
	if len(s) == 0 || len(s) > 253 || !strings.Contains(s, ".") {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if len(label) == 0 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !isDigit(c) && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && c != '-' {
				return false
			}
		}
	}
	return true
}

// CheckCSR checks what a CSR asks for against the profile: key, subject
// (a DC in the CSR must match; the CA sets it anyway) and, for server
// profiles, the names. It does not verify the CSR signature.
func (p *Profile) CheckCSR(csr *x509.CertificateRequest, forms SECCForms) Violations {
	vs := p.CheckKey(csr.PublicKey)
	rdn := rdnOf(csr.RawSubject, csr.Subject)
	for _, v := range p.checkSubject(rdn, forms) {
		if v.Code == CodeSubjectDC && len(attrs(rdn, OIDDomainComponent)) == 0 {
			continue // absent DC is filled in by the CA
		}
		if v.Code == CodeSubjectO && p.RequireO {
			continue // O can come from the tenant
		}
		vs = append(vs, v)
	}
	return vs
}

// Check lints a certificate against the profile. It accepts a parsed
// certificate or a template about to be signed (Raw empty): then the
// encoding-level checks (version, signature, DER size, criticality) are
// left to the signer, which marks basicConstraints and keyUsage critical
// and signs with the template's SignatureAlgorithm.
func (p *Profile) Check(c *x509.Certificate, forms SECCForms) Violations {
	pub := c.PublicKey
	if pub == nil {
		pub = ed448x509.PublicKey(c) // crypto/x509 does not parse Ed448 keys
	}
	vs := p.CheckKey(pub)
	signed := len(c.Raw) > 0
	if signed {
		if c.Version != 3 {
			vs.add(CodeVersion, "X.509 version %d, want 3", c.Version)
		}
		if p.MaxDER > 0 && len(c.Raw) > p.MaxDER {
			vs.add(CodeDERSize, "DER is %d bytes, limit %d (%s)", len(c.Raw), p.MaxDER, map[bool]string{true: "ISO 15118-20 XSD certificateType", false: "[V2G2-010]"}[p.Keys == KeyP521 || p.Keys == KeyEd448])
		}
	}
	if signed || c.SignatureAlgorithm != x509.UnknownSignatureAlgorithm {
		switch sa := c.SignatureAlgorithm; {
		case p.Keys == KeyP256 && sa != x509.ECDSAWithSHA256:
			vs.add(CodeSigAlgorithm, "signed with %v, want ECDSA with SHA-256 ([V2G2-007])", sa)
		case p.Keys == KeyP521 && sa != x509.ECDSAWithSHA512:
			vs.add(CodeSigAlgorithm, "signed with %v, want ECDSA with SHA-512 (V2G20-2674)", sa)
		case p.Keys == KeyEd448 && signed && !ed448x509.SignedWithEd448(c):
			vs.add(CodeSigAlgorithm, "signed with %v, want Ed448 (V2G20-2319)", sa)
		case p.Name == OCSPResponder && signed && ed448x509.SignedWithEd448(c):
			// the responder of an Ed448 CA
		case p.Keys == KeyOCPP && !slices.Contains([]x509.SignatureAlgorithm{
			x509.ECDSAWithSHA256, x509.ECDSAWithSHA384, x509.ECDSAWithSHA512,
			x509.SHA256WithRSA, x509.SHA384WithRSA, x509.SHA512WithRSA,
			x509.SHA256WithRSAPSS, x509.SHA384WithRSAPSS, x509.SHA512WithRSAPSS}, sa):
			vs.add(CodeSigAlgorithm, "signed with %v, want SHA-256 or stronger with RSA or ECDSA", sa)
		}
	}
	if c.SerialNumber == nil || c.SerialNumber.Sign() <= 0 {
		vs.add(CodeSerial, "serial number must be positive")
	} else if n := len(c.SerialNumber.Bytes()); n > 20 {
		vs.add(CodeSerial, "serial number is %d octets, RFC 5280 allows 20", n)
	}

	// basicConstraints
	if !c.BasicConstraintsValid {
		vs.add(CodeBasicConstraints, "basicConstraints missing")
	} else {
		if c.IsCA != p.IsCA() {
			vs.add(CodeBasicConstraints, "cA is %v, want %v", c.IsCA, p.IsCA())
		}
		if p.IsCA() {
			set := c.MaxPathLen > 0 || (c.MaxPathLen == 0 && c.MaxPathLenZero)
			switch {
			case !set && p.Role == RoleRoot:
				// a root without pathLen is common in foreign PKIs: the
				// sub-CAs below it carry the limit
			case !set:
				vs.add(CodePathLen, "pathLenConstraint missing, want %d ([V2G2-009])", p.PathLen)
			case c.MaxPathLen > p.PathLen:
				vs.add(CodePathLen, "pathLenConstraint %d, at most %d ([V2G2-009])", c.MaxPathLen, p.PathLen)
			case p.Role == RoleSubCA && c.MaxPathLen != p.PathLen:
				// Sub-CA 1 has pathLen 1 and Sub-CA 2 pathLen 0: the
				// value says which of the two a certificate is.
				vs.add(CodePathLen, "pathLenConstraint %d, want %d for a %s", c.MaxPathLen, p.PathLen, p.Title)
			}
		}
	}
	// keyUsage
	switch {
	case c.KeyUsage == 0:
		vs.add(CodeKeyUsage, "keyUsage missing, want %s", KeyUsageString(p.KeyUsage))
	case c.KeyUsage != p.KeyUsage:
		vs.add(CodeKeyUsage, "keyUsage is %s, want %s", KeyUsageString(c.KeyUsage), KeyUsageString(p.KeyUsage))
	}
	if signed {
		for _, e := range c.Extensions {
			if (e.Id.Equal(oidExtKeyUsage) || e.Id.Equal(oidExtBasicConstraints)) && !e.Critical {
				vs.add(CodeBasicConstraints, "extension %v must be critical", e.Id)
			}
		}
	}
	if !slices.Equal(c.ExtKeyUsage, p.ExtKeyUsage) || len(c.UnknownExtKeyUsage) > 0 {
		if len(p.ExtKeyUsage) == 0 {
			vs.add(CodeExtKeyUsage, "extendedKeyUsage present; %s has none", p.Name)
		} else {
			vs.add(CodeExtKeyUsage, "extendedKeyUsage is %v, want %v", c.ExtKeyUsage, p.ExtKeyUsage)
		}
	}

	rdn := rdnOf(c.RawSubject, c.Subject)
	vs = append(vs, p.checkSubject(rdn, forms)...)
	if cns := attrs(rdn, oidCommonName); p.CN == CNFQDN && len(cns) == 1 && !slices.Contains(c.DNSNames, cns[0]) {
		vs.add(CodeSAN, "CN %q must be repeated as a dNSName in subjectAltName", cns[0])
	}

	// validity
	switch {
	case !c.NotAfter.After(c.NotBefore):
		vs.add(CodeValidity, "notAfter %s is not after notBefore %s", c.NotAfter, c.NotBefore)
	case !p.MaxValidity.IsZero() && c.NotAfter.After(p.MaxValidity.AddTo(c.NotBefore).Add(dayOfSlack)):
		vs.add(CodeValidity, "valid %s, longer than %s allows (%s)", span(c), p.Name, p.MaxValidity)
	case !p.MinValidity.IsZero() && c.NotAfter.Before(p.MinValidity.AddTo(c.NotBefore)):
		vs.add(CodeValidity, "valid %s, shorter than %s requires (%s)", span(c), p.Name, p.MinValidity)
	}

	if alt, err := ed448x509.AltX448Key(c); p.AltX448Key && err != nil {
		vs.add(CodeAltKey, "%v (V2G20-2534)", err)
	} else if !p.AltX448Key && alt != nil {
		vs.add(CodeAltKey, "subjectAltPublicKeyInfo present; %s has none", p.Name)
	}
	if p.OCSPNoCheck && !hasExtension(c, OIDOCSPNoCheck) {
		vs.add(CodeOCSPNoCheck, "delegated OCSP responder without id-pkix-ocsp-nocheck")
	}
	if len(c.SubjectKeyId) == 0 {
		vs.add(CodeSKI, "subjectKeyIdentifier missing (ISO 15118-2 Annex F, RFC 5280 4.2.1.2)")
	}
	selfSigned := signed && bytes.Equal(c.RawSubject, c.RawIssuer)
	if p.Role == RoleRoot && signed && !selfSigned {
		vs.add(CodeSelfSigned, "a %s must be self-signed", p.Title)
	}
	if p.Role != RoleRoot && signed && selfSigned {
		vs.add(CodeSelfSigned, "a %s must not be self-signed", p.Title)
	}
	if p.Role != RoleRoot && len(c.AuthorityKeyId) == 0 {
		vs.add(CodeAKI, "authorityKeyIdentifier missing (RFC 5280 4.2.1.1)")
	}
	return vs
}

// hasExtension looks in the parsed extensions and, for a template, in the
// extra ones it will carry.
func hasExtension(c *x509.Certificate, oid asn1.ObjectIdentifier) bool {
	for _, list := range [][]pkix.Extension{c.Extensions, c.ExtraExtensions} {
		for _, e := range list {
			if e.Id.Equal(oid) {
				return true
			}
		}
	}
	return false
}

// dayOfSlack absorbs time zone and leap-day rounding of issuers that count
// validity in days.
const dayOfSlack = 24 * 60 * 60 * 1e9

func span(c *x509.Certificate) string {
	d := c.NotAfter.Sub(c.NotBefore)
	return fmt.Sprintf("%.1f days", d.Hours()/24)
}

var kuNames = []struct {
	ku   x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature"},
	{x509.KeyUsageContentCommitment, "nonRepudiation"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
	{x509.KeyUsageDataEncipherment, "dataEncipherment"},
	{x509.KeyUsageKeyAgreement, "keyAgreement"},
	{x509.KeyUsageCertSign, "keyCertSign"},
	{x509.KeyUsageCRLSign, "cRLSign"},
	{x509.KeyUsageEncipherOnly, "encipherOnly"},
	{x509.KeyUsageDecipherOnly, "decipherOnly"},
}

// KeyUsageString names the bits of a keyUsage, joined by "+".
func KeyUsageString(ku x509.KeyUsage) string {
	var names []string
	for _, k := range kuNames {
		if ku&k.ku != 0 {
			names = append(names, k.name)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "+")
}

// Matching returns every profile of the certificate's role that it fits
// without a violation. Some profiles share all rules (CPO and CPS sub-CAs
// both carry DC=V2G), so more than one can match.
func Matching(c *x509.Certificate, forms SECCForms) []*Profile {
	var out []*Profile
	role := roleOf(c)
	for _, p := range profiles {
		if p.Role == role && len(p.Check(c, forms)) == 0 {
			out = append(out, p)
		}
	}
	return out
}

func roleOf(c *x509.Certificate) Role {
	switch {
	case c.IsCA && bytes.Equal(c.RawSubject, c.RawIssuer):
		return RoleRoot
	case c.IsCA:
		return RoleSubCA
	}
	return RoleLeaf
}

// Detect finds the profile a certificate was made for: among the profiles of
// its role (root, sub-CA or leaf), the one it breaks least, in table order
// on ties. It returns that profile's violations too.
func Detect(c *x509.Certificate, forms SECCForms) (*Profile, Violations) {
	role := roleOf(c)
	var best *Profile
	var bestVs Violations
	for _, p := range profiles {
		if p.Role != role {
			continue
		}
		vs := p.Check(c, forms)
		if best == nil || len(vs) < len(bestVs) {
			best, bestVs = p, vs
		}
		if len(vs) == 0 {
			break
		}
	}
	return best, bestVs
}
