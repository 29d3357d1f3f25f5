package ca

import (
	"errors"
	"fmt"

	"github.com/pncpki/pncpki/policies"
)

// Error codes. They are stable: the API maps them to HTTP statuses and OCPP
// statusInfo reason codes in one place.
const (
	CodeCSRTooLarge     = "csr.too_large"
	CodeCSRMalformed    = "csr.malformed"
	CodeCSRSignature    = "csr.signature"
	CodeCSRProfile      = "csr.profile"
	CodeProfileUnknown  = "profile.unknown"
	CodeProfileNotIssue = "profile.not_issuable"
	CodeTenantUnknown   = "tenant.unknown"
	CodePolicyDenied    = "policy.denied"
	CodeIssuerUnknown   = "issuer.unknown"
	CodeIssuerAmbiguous = "issuer.ambiguous"
	CodeIssuerMismatch  = "issuer.profile_mismatch"
	CodeLint            = "lint"
	CodeNotFound        = "certificate.not_found"
	CodeAmbiguousSerial = "certificate.ambiguous_serial"
	CodeAlreadyRevoked  = "certificate.already_revoked"
	CodeBadReason       = "revocation.reason"
	CodeBadRequest      = "request.invalid"
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
