package ca

import (
	"errors"
	"fmt"

	"github.com/pncpki/pncpki/policies"
)

// Error codes. They are stable: the API maps them to HTTP statuses and OCPP
// statusInfo reason codes in one place.
const (
	CodeCSRTooLarge     = "csr.too_large"                // the CSR is over 64 KiB
	CodeCSRMalformed    = "csr.malformed"                // not a CSR: PEM or DER cannot be parsed, or a certificate was sent
	CodeCSRSignature    = "csr.signature"                // the CSR's self-signature does not verify
	CodeCSRProfile      = "csr.profile"                  // the CSR breaks the profile (the violations say how)
	CodeProfileUnknown  = "profile.unknown"              // no such profile
	CodeProfileNotIssue = "profile.not_issuable"         // a CA or root profile asked for as a leaf
	CodeTenantUnknown   = "tenant.unknown"               // no such tenant
	CodePolicyDenied    = "policy.denied"                // the tenant's name policy refuses the subject (violations say how)
	CodeIssuerUnknown   = "issuer.unknown"               // no CA by that name, or none that can issue the profile now
	CodeIssuerAmbiguous = "issuer.ambiguous"             // several CAs can issue the profile: name one
	CodeIssuerMismatch  = "issuer.profile_mismatch"      // the named CA cannot issue the profile
	CodeLint            = "lint"                         // an issued or imported certificate breaks its profile
	CodeNotFound        = "certificate.not_found"        // no such certificate (or not the tenant's)
	CodeAmbiguousSerial = "certificate.ambiguous_serial" // the serial exists under several CAs: name the issuer
	CodeAlreadyRevoked  = "certificate.already_revoked"  // revoked before
	CodeBadReason       = "revocation.reason"            // not an RFC 5280 reason
	CodeBadRequest      = "request.invalid"              // the request is malformed or incomplete
	// CodeCAOffline: the CA's key is not on this machine (an offline
	// root): it signs with pncctl where the key is.
	CodeCAOffline = "ca.offline"
)

// Error is a refusal with a stable code. Violations, when present, list what
// the CSR or the certificate broke; Err is the underlying cause.
type Error struct {
	Code       string
	Message    string
	Violations policies.Violations
	Err        error
}

func (e *Error) Error() string {
	msg := e.Code + ": " + e.Message
	if len(e.Violations) > 0 {
		msg += ": " + e.Violations.Error()
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

func refuse(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of a *Error in err's chain, or "" for an internal
// error.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
