package policies

import (
	"errors"
	"fmt"
	"github.com/cloudflare/circl/dh/x448"
	"net"
	"slices"
	"strings"

	"github.com/smallstep/certificates/policy"
)

// TenantKind is the kind of party a tenant is.
type TenantKind string

// The tenant kinds. Admins may receive any profile, including CAs.
const (
	TenantCPO   TenantKind = "cpo"   // charge point operator: SECC and station certificates
	TenantEMSP  TenantKind = "emsp"  // eMobility service provider: contract certificates
	TenantOEM   TenantKind = "oem"   // vehicle maker: provisioning certificates
	TenantAdmin TenantKind = "admin" // PKI administrator
)

// ParseTenantKind parses a tenant kind name.
func ParseTenantKind(s string) (TenantKind, error) {
	switch k := TenantKind(strings.ToLower(s)); k {
	case TenantCPO, TenantEMSP, TenantOEM, TenantAdmin:
		return k, nil
	}
	return "", fmt.Errorf("unknown tenant kind %q (want cpo, emsp, oem or admin)", s)
}

// Tenant is a party that owns certificates. Its identifiers decide what it
// may receive: a CPO only names under its operator IDs, an eMSP only EMAIDs
// under its provider IDs.
type Tenant struct {
	Name         string
	Kind         TenantKind
	Organization string   // organizationName expected in its station certificates
	OperatorIDs  []string // compact form, e.g. "DEABC"
	ProviderIDs  []string // compact form, e.g. "DE8AA"
	// DNSDomains permits server certificates for these domains and their
	// subdomains ("*.example.com" permits the subdomains only).
	DNSDomains []string
}

// dnsPolicy builds the smallstep name policy of the tenant's DNS domains.
func (t *Tenant) dnsPolicy() (*policy.NamePolicyEngine, error) {
	var domains []string
	for _, d := range t.DNSDomains {
		domains = append(domains, d)
		if !strings.HasPrefix(d, "*.") {
			domains = append(domains, "*."+d)
		}
	}
	return policy.New(policy.WithPermittedDNSDomains(domains...))
}

// Normalize validates the tenant and puts its identifiers in compact form.
func (t *Tenant) Normalize() error {
	if t.Name == "" || len(t.Name) > 64 || strings.ContainsAny(t.Name, " \t\r\n/") {
		return fmt.Errorf("tenant name %q: want 1..64 characters without spaces or '/'", t.Name)
	}
	k, err := ParseTenantKind(string(t.Kind))
	if err != nil {
		return err
	}
	t.Kind = k
	for i, id := range t.OperatorIDs {
		if t.OperatorIDs[i], err = NormalizeOperatorID(id); err != nil {
			return err
		}
	}
	for i, id := range t.ProviderIDs {
		if t.ProviderIDs[i], err = NormalizeProviderID(id); err != nil {
			return err
		}
	}
	if len(t.DNSDomains) > 0 {
		if _, err := t.dnsPolicy(); err != nil {
			return fmt.Errorf("tenant %s DNS domains: %w", t.Name, err)
		}
	}
	return nil
}

// Subject is what a CA is about to certify, as the name policy sees it.
type Subject struct {
	CommonName   string
	Organization string
	Country      string
	DNSNames     []string
	IPAddresses  []net.IP
	// AltX448Key is an X448 key for the subjectAltPublicKeyInfo of an
	// ISO 15118-20 Ed448 OEM provisioning certificate.
	AltX448Key *x448.Key
}

// PolicyError is a refusal by the tenant name policy. Code is stable.
type PolicyError struct {
	Code    string // e.g. "tenant.profile_not_allowed"
	Tenant  string
	Profile string
	Detail  string
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("%s: tenant %s may not receive %s: %s", e.Code, e.Tenant, e.Profile, e.Detail)
}

// Policy error codes.
const (
	CodeProfileNotAllowed  = "tenant.profile_not_allowed"   // the tenant's kind may not receive this profile
	CodeIdentifierNotOwned = "tenant.identifier_not_owned"  // an EVSEID, SECC ID, EMAID or PCID outside the tenant's identifiers
	CodeOrganization       = "tenant.organization_mismatch" // the subject's O is not the tenant's organization
	CodeNameNotAllowed     = "tenant.name_not_allowed"      // a DNS name or IP address outside the tenant's domains
)

// Permit decides whether tenant t may receive a certificate of profile p for
// subject s. The CN must already have passed the profile's CN rule.
func (t *Tenant) Permit(p *Profile, s Subject) error {
	deny := func(code, format string, args ...any) error {
		return &PolicyError{Code: code, Tenant: t.Name, Profile: p.Name, Detail: fmt.Sprintf(format, args...)}
	}
	if t.Kind == TenantAdmin {
		return nil
	}
	if !p.AdminOnly && !slices.Contains(p.TenantKinds, t.Kind) {
		return deny(CodeProfileNotAllowed, "a %s tenant cannot receive this profile", t.Kind)
	}
	// An organization in the subject is the tenant's own: a CPO must not
	// get a certificate that names another one. (A tenant registered
	// without an organization has nothing to bind to.)
	if s.Organization != "" && t.Organization != "" && s.Organization != t.Organization {
		return deny(CodeOrganization, "organization %q is not the tenant's %q", s.Organization, t.Organization)
	}
	switch p.CN {
	case CNSECC:
		op, err := SECCOperatorID(s.CommonName, SECCBoth)
		if err != nil {
			return deny(CodeIdentifierNotOwned, "%v", err)
		}
		if !slices.Contains(t.OperatorIDs, op) {
			return deny(CodeIdentifierNotOwned, "operator ID %s of %q is not one of the tenant's (%s)", op, s.CommonName, strings.Join(t.OperatorIDs, ", "))
		}
	case CNEMAID:
		e, err := ParseEMAID(s.CommonName)
		if err != nil {
			return deny(CodeIdentifierNotOwned, "%v", err)
		}
		if !slices.Contains(t.ProviderIDs, e.ProviderID()) {
			return deny(CodeIdentifierNotOwned, "provider ID %s of %q is not one of the tenant's (%s)", e.ProviderID(), s.CommonName, strings.Join(t.ProviderIDs, ", "))
		}
	case CNStationSerial:
		// A00.FR.405: the CSMS checks O against the CPO's organization,
		// so a station certificate must carry it.
		if t.Organization != "" && s.Organization == "" {
			return deny(CodeOrganization, "organization missing; the tenant's is %q", t.Organization)
		}
	case CNFQDN:
		if len(t.DNSDomains) == 0 {
			return deny(CodeNameNotAllowed, "the tenant has no permitted DNS domains")
		}
		eng, err := t.dnsPolicy()
		if err != nil {
			return deny(CodeNameNotAllowed, "%v", err)
		}
		names := append([]string{s.CommonName}, s.DNSNames...)
		for _, ip := range s.IPAddresses {
			names = append(names, ip.String())
		}
		if err := eng.AreSANsAllowed(names); err != nil {
			var pe *policy.NamePolicyError
			if errors.As(err, &pe) {
				return deny(CodeNameNotAllowed, "%s", pe.Detail())
			}
			return deny(CodeNameNotAllowed, "%v", err)
		}
	}
	return nil
}

// SECCOperatorID validates an SECC leaf CN in the forms allowed and returns
// the compact operator ID it carries.
func SECCOperatorID(cn string, forms SECCForms) (string, error) {
	var idErr, evseErr error
	if forms != SECCOnlyEVSEID {
		id, err := ParseSECCID(cn)
		if err == nil {
			return id.OperatorID(), nil
		}
		idErr = err
	}
	if forms != SECCOnlyID {
		e, err := ParseEVSEID(cn)
		if err == nil {
			return e.OperatorID(), nil
		}
		evseErr = err
	}
	switch {
	case idErr != nil && evseErr != nil:
		return "", fmt.Errorf("CN %q is neither a valid SECC ID (%v) nor a valid EVSEID (%v)", cn, reason(idErr), reason(evseErr))
	case idErr != nil:
		return "", idErr
	default:
		return "", evseErr
	}
}

func reason(err error) string {
	var ie *IdentifierError
	if errors.As(err, &ie) {
		return ie.Reason
	}
	return err.Error()
}

// OwnsSECCName reports whether an EVSEID or SECC ID of a station belongs
// to the tenant: its operator ID is one of the tenant's. A station's
// registration is checked as an SECC certificate's issuance is.
func (t *Tenant) OwnsSECCName(name string) error {
	if t.Kind == TenantAdmin {
		return nil
	}
	op, err := SECCOperatorID(name, SECCBoth)
	if err != nil {
		return err
	}
	if !slices.Contains(t.OperatorIDs, op) {
		return &PolicyError{Code: CodeIdentifierNotOwned, Tenant: t.Name, Profile: "station", Detail: fmt.Sprintf("operator ID %s of %q is not one of the tenant's (%s)", op, name, strings.Join(t.OperatorIDs, ", "))}
	}
	return nil
}
