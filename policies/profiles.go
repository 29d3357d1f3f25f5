package policies

import (
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Role says where a profile stands in its hierarchy.
type Role int

const (
	RoleRoot  Role = iota // self-signed trust anchor
	RoleSubCA             // intermediate CA
	RoleLeaf              // end entity
)

func (r Role) String() string {
	switch r {
	case RoleRoot:
		return "root"
	case RoleSubCA:
		return "sub-ca"
	default:
		return "leaf"
	}
}

// KeyRule says which subject public keys a profile accepts.
type KeyRule int

const (
	// KeyP256 is ECDSA on secp256r1 only ([V2G2-006], [V2G2-007]).
	KeyP256 KeyRule = iota
	// KeyOCPP is what OCPP 2.0.1 (A00.FR.306..) and the 1.6 security
	// whitepaper allow for station and CSMS certificates: RSA of at least
	// 2048 bits, or ECDSA on P-256 or P-384.
	KeyOCPP
	// KeyP521 is ECDSA on secp521r1 signed with ecdsa-with-SHA512, the
	// first of ISO 15118-20's two security variants (V2G20-2674).
	KeyP521
	// KeyEd448 is Ed448 (RFC 8032, RFC 8410), the second of ISO
	// 15118-20's security variants (V2G20-2319).
	KeyEd448
)

func (k KeyRule) String() string {
	switch k {
	case KeyP256:
		return "ECDSA P-256"
	case KeyP521:
		return "ECDSA P-521"
	case KeyEd448:
		return "Ed448"
	}
	return "RSA>=2048 or ECDSA P-256/P-384"
}

// SignatureAlgorithm is the one signature algorithm certificates under
// this rule are signed with, or UnknownSignatureAlgorithm where several
// are allowed (KeyOCPP) or crypto/x509 has none (KeyEd448).
func (k KeyRule) SignatureAlgorithm() x509.SignatureAlgorithm {
	switch k {
	case KeyP256:
		return x509.ECDSAWithSHA256
	case KeyP521:
		return x509.ECDSAWithSHA512
	}
	return x509.UnknownSignatureAlgorithm
}

// CNRule says what the subject common name of a profile must be.
type CNRule int

const (
	CNAny           CNRule = iota // any non-empty name (CAs)
	CNSECC                        // SECC ID or EVSEID, as the profile's SECCForms allow
	CNEMAID                       // EMAID with a valid check digit
	CNPCID                        // provisioning certificate ID
	CNStationSerial               // charging station serial number or identity (OCPP A00.FR.405)
	CNFQDN                        // DNS name, repeated as a dNSName SAN
)

func (c CNRule) String() string {
	return [...]string{"any", "SECC ID or EVSEID", "EMAID", "PCID", "station serial/identity", "FQDN"}[c]
}

// SECCForms chooses which CN forms an SECC leaf may carry.
type SECCForms int

const (
	SECCBoth       SECCForms = iota // SECC ID or EVSEID (default)
	SECCOnlyID                      // SECC ID only (ecosystem CPs that follow -20 syntax)
	SECCOnlyEVSEID                  // EVSEID only (older deployments, test PKIs)
)

// Period is a calendar length: certificates are valid for years and months,
// not for multiples of 24 hours.
type Period struct{ Years, Months, Days int }

// AddTo returns t advanced by the period.
func (p Period) AddTo(t time.Time) time.Time { return t.AddDate(p.Years, p.Months, p.Days) }

// IsZero reports whether the period is empty (no limit).
func (p Period) IsZero() bool { return p == Period{} }

func (p Period) String() string {
	var parts []string
	if p.Years != 0 {
		parts = append(parts, fmt.Sprintf("%dy", p.Years))
	}
	if p.Months != 0 {
		parts = append(parts, fmt.Sprintf("%dmo", p.Months))
	}
	if p.Days != 0 {
		parts = append(parts, fmt.Sprintf("%dd", p.Days))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "")
}

// OIDDomainComponent is the domainComponent attribute (RFC 4519) that
// ISO 15118-2 Annex F uses to mark the PKI domain of each certificate.
var OIDDomainComponent = asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}

// Profile is one certificate profile: everything the CA needs to build a
// certificate of this kind and everything the linter checks it against.
type Profile struct {
	Name     string // stable identifier, e.g. "iso15118-2/secc"
	Title    string
	Standard string

	Role Role
	// PathLen is the basicConstraints pathLenConstraint of a CA; -1 means
	// unlimited (not allowed by any ISO 15118-2 profile).
	PathLen int
	// Issuers lists the profiles whose CAs may sign this profile. Empty for
	// roots.
	Issuers []string

	KeyUsage    x509.KeyUsage
	ExtKeyUsage []x509.ExtKeyUsage
	Keys        KeyRule
	// DC is the required domainComponent value ("" for none).
	DC string
	// DCOptional allows DC to be left out (ISO 15118-20: C, OU and DC
	// are optional); when present it must be DC.
	DCOptional bool
	// RequireO requires a non-empty organizationName.
	RequireO bool
	CN       CNRule
	// MaxDER is the largest DER encoding allowed (0: no limit).
	MaxDER int

	MinValidity, MaxValidity, DefaultValidity Period

	// TenantKinds lists who may request this profile from a CA besides admins.
	TenantKinds []TenantKind
	// AdminOnly profiles are issued by administrators only, to a tenant
	// as their owner (a credential that acts for the tenant): no tenant
	// requests one itself.
	AdminOnly bool

	// OCSPNoCheck marks delegated OCSP responder certificates: they carry
	// id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1) and neither AIA nor CRL
	// distribution point.
	OCSPNoCheck bool
	// OCSPOnly leaves the CRL distribution point out: the certificate's
	// status is learned by OCSP (its AIA). The MO chain and the contract
	// certificate of an ISO 15118-2 installation answer use it, as six
	// certificates and the signature must fit OCPP 2.0.1's 5,600 base64
	// characters; a station checks them with OCSP (Authorize with
	// iso15118CertificateHashData, GetCertificateStatus).
	OCSPOnly bool
	// Offline leaves AIA and CRL distribution point out. The CPS chain
	// uses it: only the vehicle checks it, during the installation, and
	// ISO 15118-2 gives the vehicle no way to reach a responder or a CRL
	// then, so the URL would be bytes of every answer that no one reads.
	Offline bool
	// AltX448Key requires an X448 key in subjectAltPublicKeyInfo: the
	// key an ISO 15118-20 Ed448 vehicle agrees contract key transport
	// with (V2G20-2534).
	AltX448Key bool
}

// offline marks a profile Offline: the CPS sub-CAs, whose certificates
// travel in every installation answer and are checked only by vehicles.
func offline(p *Profile) *Profile {
	p.Offline = true
	return p
}

// IsCA reports whether certificates of this profile are CAs.
func (p *Profile) IsCA() bool { return p.Role != RoleLeaf }

// Names of the profiles; stable identifiers used by the CLI, API and docs.
const (
	ISO2V2GRoot         = "iso15118-2/v2g-root"
	ISO2CPOSub1         = "iso15118-2/cpo-sub1"
	ISO2CPOSub2         = "iso15118-2/cpo-sub2"
	ISO2SECC            = "iso15118-2/secc"
	ISO2CPSSub1         = "iso15118-2/cps-sub1"
	ISO2CPSSub2         = "iso15118-2/cps-sub2"
	ISO2CPSLeaf         = "iso15118-2/cps-leaf"
	ISO2MORoot          = "iso15118-2/mo-root"
	ISO2MOSub1          = "iso15118-2/mo-sub1"
	ISO2MOSub2          = "iso15118-2/mo-sub2"
	ISO2Contract        = "iso15118-2/contract"
	ISO2OEMRoot         = "iso15118-2/oem-root"
	ISO2OEMSub1         = "iso15118-2/oem-sub1"
	ISO2OEMSub2         = "iso15118-2/oem-sub2"
	ISO2OEMProv         = "iso15118-2/oem-prov"
	OCSPResponder       = "ocsp/responder"
	OCPPCSMSRoot        = "ocpp/csms-root"
	OCPPChargingStation = "ocpp/charging-station"
	OCPPCSMSServer      = "ocpp/csms-server"
	APIClient           = "api/client"

	// ISO 15118-20, secp521r1 variant.
	ISO20V2GRoot  = "iso15118-20/v2g-root"
	ISO20CPOSub1  = "iso15118-20/cpo-sub1"
	ISO20CPOSub2  = "iso15118-20/cpo-sub2"
	ISO20SECC     = "iso15118-20/secc"
	ISO20CPSSub1  = "iso15118-20/cps-sub1"
	ISO20CPSSub2  = "iso15118-20/cps-sub2"
	ISO20CPSLeaf  = "iso15118-20/cps-leaf"
	ISO20MORoot   = "iso15118-20/mo-root"
	ISO20MOSub1   = "iso15118-20/mo-sub1"
	ISO20MOSub2   = "iso15118-20/mo-sub2"
	ISO20Contract = "iso15118-20/contract"
	ISO20OEMRoot  = "iso15118-20/oem-root"
	ISO20OEMSub1  = "iso15118-20/oem-sub1"
	ISO20OEMSub2  = "iso15118-20/oem-sub2"
	ISO20OEMProv  = "iso15118-20/oem-prov"

	// ISO 15118-20, Ed448 variant.
	ISO20EdV2GRoot  = "iso15118-20-ed448/v2g-root"
	ISO20EdCPOSub1  = "iso15118-20-ed448/cpo-sub1"
	ISO20EdCPOSub2  = "iso15118-20-ed448/cpo-sub2"
	ISO20EdSECC     = "iso15118-20-ed448/secc"
	ISO20EdCPSSub1  = "iso15118-20-ed448/cps-sub1"
	ISO20EdCPSSub2  = "iso15118-20-ed448/cps-sub2"
	ISO20EdCPSLeaf  = "iso15118-20-ed448/cps-leaf"
	ISO20EdMORoot   = "iso15118-20-ed448/mo-root"
	ISO20EdMOSub1   = "iso15118-20-ed448/mo-sub1"
	ISO20EdMOSub2   = "iso15118-20-ed448/mo-sub2"
	ISO20EdContract = "iso15118-20-ed448/contract"
	ISO20EdOEMRoot  = "iso15118-20-ed448/oem-root"
	ISO20EdOEMSub1  = "iso15118-20-ed448/oem-sub1"
	ISO20EdOEMSub2  = "iso15118-20-ed448/oem-sub2"
	ISO20EdOEMProv  = "iso15118-20-ed448/oem-prov"
)

const (
	caKU     = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	iso2Max  = 800  // [V2G2-010]; XSD certificateType maxLength 800
	iso20Max = 1600 // ISO 15118-20 CommonMessages XSD certificateType maxLength 1600
)

// ocspOnly marks a profile OCSPOnly: the sub-CAs whose certificates
// travel in every ISO 15118-2 installation response.
func ocspOnly(p *Profile) *Profile {
	p.OCSPOnly = true
	return p
}

// Validity limits. ISO 15118-2 Annex F gives the root lifetime (40 years,
// [V2G2-011]); the sub-CA and leaf limits below follow the ecosystem
// certificate policy (Hubject V2G PKI CP, which ISO 15118-2 defers to) and
// agree with the reference test PKIs of EVerest, RISE-V2G and Josev:
// Sub-CA 1 up to 4 years, Sub-CA 2 up to 2 years, SECC leaf 2-3 months,
// contract 4 weeks to 2 years. For these the certificate policy of the
// ecosystem is the normative source. A deployment that needs other limits
// changes the table, not the code.
var (
	fortyYears = Period{Years: 40}
	fourYears  = Period{Years: 4}
	twoYears   = Period{Years: 2}
)

var iso2CA = func(name, title, dc string, role Role, pathLen int, issuers []string, max, def Period) *Profile {
	return &Profile{
		Name: name, Title: title, Standard: "ISO 15118-2 Annex F",
		Role: role, PathLen: pathLen, Issuers: issuers,
		KeyUsage: caKU, Keys: KeyP256, DC: dc, CN: CNAny, MaxDER: iso2Max,
		MaxValidity: max, DefaultValidity: def,
	}
}

var profiles = []*Profile{
	// V2G hierarchy. The V2G root allows two sub-CAs below it ([V2G2-009])
	// and must not sign leaves ([V2G2-867]).
	iso2CA(ISO2V2GRoot, "V2G root CA", "V2G", RoleRoot, 2, nil, fortyYears, fortyYears),
	iso2CA(ISO2CPOSub1, "CPO Sub-CA 1", "V2G", RoleSubCA, 1, []string{ISO2V2GRoot}, fourYears, fourYears),
	iso2CA(ISO2CPOSub2, "CPO Sub-CA 2", "V2G", RoleSubCA, 0, []string{ISO2CPOSub1}, twoYears, Period{Years: 1}),
	{
		Name: ISO2SECC, Title: "SECC leaf (charging station TLS server)", Standard: "ISO 15118-2 Annex F",
		Role: RoleLeaf, PathLen: -1, Issuers: []string{ISO2CPOSub2},
		// digitalSignature for TLS, keyAgreement for ECDH cipher suites [V2G2-925].
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
		Keys:     KeyP256, DC: "CPO", CN: CNSECC, MaxDER: iso2Max,
		MaxValidity: Period{Months: 3}, DefaultValidity: Period{Days: 60},
		TenantKinds: []TenantKind{TenantCPO},
	},
	// CPS hierarchy, below the V2G root: it signs installation responses.
	offline(iso2CA(ISO2CPSSub1, "CPS Sub-CA 1", "V2G", RoleSubCA, 1, []string{ISO2V2GRoot}, fourYears, fourYears)),
	offline(iso2CA(ISO2CPSSub2, "CPS Sub-CA 2", "V2G", RoleSubCA, 0, []string{ISO2CPSSub1}, twoYears, Period{Years: 1})),
	{
		Name: ISO2CPSLeaf, Title: "CPS leaf (signs contract provisioning data)", Standard: "ISO 15118-2 Annex F",
		Role: RoleLeaf, PathLen: -1, Issuers: []string{ISO2CPSSub2},
		KeyUsage: x509.KeyUsageDigitalSignature,
		Keys:     KeyP256, DC: "CPS", CN: CNAny, MaxDER: iso2Max, Offline: true,
		MaxValidity: twoYears, DefaultValidity: Period{Years: 1},
	},
	// MO hierarchy: contract certificates. MO Sub-CA 1 may also sit below a
	// V2G root.
	iso2CA(ISO2MORoot, "MO root CA", "MO", RoleRoot, 2, nil, fortyYears, fortyYears),
	ocspOnly(iso2CA(ISO2MOSub1, "MO Sub-CA 1", "MO", RoleSubCA, 1, []string{ISO2MORoot, ISO2V2GRoot}, fourYears, fourYears)),
	ocspOnly(iso2CA(ISO2MOSub2, "MO Sub-CA 2", "MO", RoleSubCA, 0, []string{ISO2MOSub1}, twoYears, Period{Years: 1})),
	{
		Name: ISO2Contract, Title: "Contract certificate (CN = EMAID)", Standard: "ISO 15118-2 Annex F",
		Role: RoleLeaf, PathLen: -1, Issuers: []string{ISO2MOSub2},
		// The contract key signs (authorization) and agrees keys (ECDH for
		// the private key installation, [V2G2-818]); nonRepudiation as in
		// Annex F. keyEncipherment, which some test PKIs add, is not valid
		// for an EC key (RFC 5480 section 3) and is left out.
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageContentCommitment | x509.KeyUsageKeyAgreement,
		Keys:     KeyP256, DC: "MO", CN: CNEMAID, MaxDER: iso2Max, OCSPOnly: true,
		MinValidity: Period{Days: 28}, MaxValidity: twoYears, DefaultValidity: Period{Years: 1},
		TenantKinds: []TenantKind{TenantEMSP},
	},
	// OEM hierarchy: provisioning certificates live as long as the vehicle.
	iso2CA(ISO2OEMRoot, "OEM root CA", "OEM", RoleRoot, 2, nil, fortyYears, fortyYears),
	iso2CA(ISO2OEMSub1, "OEM Sub-CA 1", "OEM", RoleSubCA, 1, []string{ISO2OEMRoot}, fortyYears, Period{Years: 10}),
	iso2CA(ISO2OEMSub2, "OEM Sub-CA 2", "OEM", RoleSubCA, 0, []string{ISO2OEMSub1}, fortyYears, Period{Years: 10}),
	{
		Name: ISO2OEMProv, Title: "OEM provisioning certificate (CN = PCID)", Standard: "ISO 15118-2 Annex F",
		Role: RoleLeaf, PathLen: -1, Issuers: []string{ISO2OEMSub2},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyAgreement,
		Keys:     KeyP256, DC: "OEM", CN: CNPCID, MaxDER: iso2Max,
		MaxValidity: fortyYears, DefaultValidity: Period{Years: 4},
		TenantKinds: []TenantKind{TenantOEM},
	},
	// OCPP: the CSMS-side root signs station client certificates (security
	// profile 3) and the CSMS / proxy TLS server certificate.
	{
		Name: OCPPCSMSRoot, Title: "CSMS root CA for charging-station certificates", Standard: "OCPP 2.0.1 Part 2 A00",
		Role: RoleRoot, PathLen: 0,
		KeyUsage: caKU, Keys: KeyOCPP, CN: CNAny,
		MaxValidity: Period{Years: 20}, DefaultValidity: Period{Years: 10},
	},
	{
		Name: OCPPChargingStation, Title: "Charging station client certificate (security profile 3)", Standard: "OCPP 2.0.1 Part 2 A00.FR.405",
		Role: RoleLeaf, PathLen: -1, Issuers: []string{OCPPCSMSRoot},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		Keys: KeyOCPP, RequireO: true, CN: CNStationSerial,
		MaxValidity: Period{Years: 2}, DefaultValidity: Period{Years: 1},
		TenantKinds: []TenantKind{TenantCPO},
	},
	{
		Name: OCPPCSMSServer, Title: "CSMS / OCPP-J proxy TLS server certificate", Standard: "OCPP 2.0.1 Part 2 A00",
		Role: RoleLeaf, PathLen: -1, Issuers: []string{OCPPCSMSRoot},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		Keys: KeyOCPP, CN: CNFQDN,
		MaxValidity: Period{Days: 398}, DefaultValidity: Period{Days: 90},
		TenantKinds: []TenantKind{TenantCPO},
	},
	{
		// pncpki's own: a back end (CSMS, eMSP, OEM) calling pncd's API
		// with mutual TLS instead of a bearer token. The tenant it is
		// issued to is the tenant it acts for; as a credential it is an
		// administrator's to give, and short-lived (the data directory's
		// api_client_days may shorten or lengthen it up to a year).
		Name: APIClient, Title: "pncpki API client certificate (mutual TLS)", Standard: "pncpki",
		Role: RoleLeaf, PathLen: -1, Issuers: []string{OCPPCSMSRoot},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		Keys: KeyOCPP, CN: CNAny, AdminOnly: true,
		MaxValidity: Period{Days: 30}, DefaultValidity: Period{Days: 30},
	},
}

// iso20 derives the ISO 15118-20 secp521r1 profile of each role from its
// ISO 15118-2 one. What is known of -20 Annex B (PNC-FACTS-20.md, from
// EVerest's Annex B checks and the -20 XSD; the annex itself was not
// seen):
//   - keys secp521r1, signatures ecdsa-with-SHA512 (V2G20-2674);
//   - certificates up to 1,600 bytes (XSD certificateType);
//   - critical keyUsage and basicConstraints, Sub-CA 1 pathLen 1 and
//     Sub-CA 2 pathLen 0, as in -2;
//   - C, OU and DC optional: a DC, if present, is the -2 one;
//   - the contract leaf: digitalSignature only (the key is not used for
//     ECDH in -20: the vehicle's OEM key is), no EKU, CN = EMAID;
//   - the OEM provisioning leaf keeps keyAgreement (V2G20-822);
//   - the SECC leaf: digitalSignature, for TLS 1.3 (-20 requires it,
//     whose key exchange is ephemeral).
//
// Validity limits were not found for -20; those of the -2 ecosystem
// certificate policy apply.
func iso20(p2 *Profile, name string, issuers ...string) *Profile {
	p := *p2
	p.Name, p.Standard = name, "ISO 15118-20 Annex B (secp521r1)"
	p.Keys, p.MaxDER, p.DCOptional = KeyP521, iso20Max, true
	p.Issuers = issuers
	switch name {
	case ISO20Contract, ISO20SECC:
		p.KeyUsage = x509.KeyUsageDigitalSignature
	}
	return &p
}

// iso20Ed448 derives the Ed448 variant of an ISO 15118-20 profile: the
// same roles, extensions and names, with Ed448 keys and signatures
// (V2G20-2319). Its OEM provisioning certificate carries the vehicle's
// X448 key agreement key in subjectAltPublicKeyInfo (V2G20-2534; the
// extension is the -20 vector set's reading, PNC-FACTS-20.md).
func iso20Ed448(p20 *Profile) *Profile {
	p := *p20
	p.Name = Ed448Variant(p20.Name)
	p.Standard = "ISO 15118-20 Annex B (Ed448)"
	p.Title = strings.Replace(p20.Title, "P-521", "Ed448", 1)
	p.Keys = KeyEd448
	p.Issuers = nil
	for _, i := range p20.Issuers {
		p.Issuers = append(p.Issuers, Ed448Variant(i))
	}
	p.AltX448Key = p.Name == ISO20EdOEMProv
	return &p
}

// Ed448Variant is the name of the Ed448 profile of an ISO 15118-20
// secp521r1 profile.
func Ed448Variant(name string) string {
	return strings.Replace(name, "iso15118-20/", "iso15118-20-ed448/", 1)
}

func init() {
	for _, r := range []struct {
		iso2, name string
		issuers    []string
	}{
		{ISO2V2GRoot, ISO20V2GRoot, nil},
		{ISO2CPOSub1, ISO20CPOSub1, []string{ISO20V2GRoot}},
		{ISO2CPOSub2, ISO20CPOSub2, []string{ISO20CPOSub1}},
		{ISO2SECC, ISO20SECC, []string{ISO20CPOSub2}},
		{ISO2CPSSub1, ISO20CPSSub1, []string{ISO20V2GRoot}},
		{ISO2CPSSub2, ISO20CPSSub2, []string{ISO20CPSSub1}},
		{ISO2CPSLeaf, ISO20CPSLeaf, []string{ISO20CPSSub2}},
		{ISO2MORoot, ISO20MORoot, nil},
		{ISO2MOSub1, ISO20MOSub1, []string{ISO20MORoot, ISO20V2GRoot}},
		{ISO2MOSub2, ISO20MOSub2, []string{ISO20MOSub1}},
		{ISO2Contract, ISO20Contract, []string{ISO20MOSub2}},
		{ISO2OEMRoot, ISO20OEMRoot, nil},
		{ISO2OEMSub1, ISO20OEMSub1, []string{ISO20OEMRoot}},
		{ISO2OEMSub2, ISO20OEMSub2, []string{ISO20OEMSub1}},
		{ISO2OEMProv, ISO20OEMProv, []string{ISO20OEMSub2}},
	} {
		for _, p := range profiles {
			if p.Name == r.iso2 {
				p20 := iso20(p, r.name, r.issuers...)
				p20.Title += " (ISO 15118-20, P-521)"
				profiles = append(profiles, p20, iso20Ed448(p20))
				break
			}
		}
	}
}

// ocspResponder is the delegated OCSP signer that every CA issues for
// itself (RFC 6960 4.2.2.2): id-kp-OCSPSigning, ocsp-nocheck, short-lived
// because it cannot be revoked usefully.
var ocspResponder = &Profile{
	Name: OCSPResponder, Title: "Delegated OCSP responder", Standard: "RFC 6960 4.2.2.2",
	Role: RoleLeaf, PathLen: -1,
	KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageOCSPSigning},
	Keys: KeyOCPP, CN: CNAny, OCSPNoCheck: true,
	MaxValidity: Period{Days: 90}, DefaultValidity: Period{Days: 30},
}

func init() {
	for _, p := range profiles {
		if p.IsCA() {
			ocspResponder.Issuers = append(ocspResponder.Issuers, p.Name)
		}
	}
	profiles = append(profiles, ocspResponder)
	byName = make(map[string]*Profile, len(profiles))
	for _, p := range profiles {
		byName[p.Name] = p
	}
}

var byName map[string]*Profile

// Lookup returns the profile with the given name.
func Lookup(name string) (*Profile, error) {
	if p, ok := byName[name]; ok {
		return p, nil
	}
	return nil, fmt.Errorf("unknown profile %q (see 'pncctl profiles')", name)
}

// All returns every profile, sorted by name.
func All() []*Profile {
	out := append([]*Profile(nil), profiles...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
