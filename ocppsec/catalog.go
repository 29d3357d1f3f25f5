package ocppsec

import (
	"reflect"
	"sort"
)

// Message is one OCPP action of a dialect with its payload types.
type Message struct {
	Action            string
	Request, Response reflect.Type
	// FromStation is true for actions a station sends (SignCertificate),
	// false for those the CSMS sends (CertificateSigned).
	FromStation bool
}

func msg(action string, fromStation bool, req, resp any) Message {
	return Message{Action: action, Request: reflect.TypeOf(req), Response: reflect.TypeOf(resp), FromStation: fromStation}
}

var messages2 = []Message{
	msg("SignCertificate", true, SignCertificateRequest{}, SignCertificateResponse{}),
	msg("CertificateSigned", false, CertificateSignedRequest{}, CertificateSignedResponse{}),
	msg("InstallCertificate", false, InstallCertificateRequest{}, InstallCertificateResponse{}),
	msg("DeleteCertificate", false, DeleteCertificateRequest{}, DeleteCertificateResponse{}),
	msg("GetInstalledCertificateIds", false, GetInstalledCertificateIdsRequest{}, GetInstalledCertificateIdsResponse{}),
	msg("Get15118EVCertificate", true, Get15118EVCertificateRequest{}, Get15118EVCertificateResponse{}),
	msg("GetCertificateStatus", true, GetCertificateStatusRequest{}, GetCertificateStatusResponse{}),
	msg("Authorize", true, AuthorizeRequest{}, AuthorizeResponse{}),
	msg("TriggerMessage", false, TriggerMessageRequest{}, TriggerMessageResponse{}),
	msg("SecurityEventNotification", true, SecurityEventNotificationRequest{}, SecurityEventNotificationResponse{}),
	msg("GetVariables", false, GetVariablesRequest{}, GetVariablesResponse{}),
}

var catalog = map[Dialect][]Message{
	OCPP201: messages2,
	OCPP21: append(messages2[:len(messages2):len(messages2)],
		msg("GetCertificateChainStatus", true, GetCertificateChainStatusRequest{}, GetCertificateChainStatusResponse{})),
	OCPP16: {
		msg("SignCertificate", true, SignCertificate16{}, SignCertificate16Response{}),
		msg("CertificateSigned", false, CertificateSigned16{}, CertificateSigned16Response{}),
		msg("InstallCertificate", false, InstallCertificate16{}, InstallCertificate16Response{}),
		msg("DeleteCertificate", false, DeleteCertificate16{}, DeleteCertificate16Response{}),
		msg("GetInstalledCertificateIds", false, GetInstalledCertificateIds16{}, GetInstalledCertificateIds16Response{}),
		msg("ExtendedTriggerMessage", false, ExtendedTriggerMessage16{}, ExtendedTriggerMessage16Response{}),
		msg("DataTransfer", true, DataTransfer16{}, DataTransfer16Response{}),
	},
	Has2be: {
		msg("SignCertificate", true, Has2beSignCertificateRequest{}, SignCertificate16Response{}),
		msg("CertificateSigned", false, Has2beCertificateSignedRequest{}, CertificateSigned16Response{}),
		msg("InstallCertificate", false, Has2beInstallCertificateRequest{}, InstallCertificate16Response{}),
		msg("DeleteCertificate", false, DeleteCertificate16{}, DeleteCertificate16Response{}),
		msg("GetInstalledCertificateIds", false, Has2beGetInstalledCertificateIdsRequest{}, Has2beGetInstalledCertificateIdsResponse{}),
		msg("Get15118EVCertificate", true, Has2beGet15118EVCertificateRequest{}, Has2beGet15118EVCertificateResponse{}),
		msg("GetCertificateStatus", true, Has2beGetCertificateStatusRequest{}, Has2beGetCertificateStatusResponse{}),
		msg("Authorize", true, Has2beAuthorizeRequest{}, Has2beAuthorizeResponse{}),
		msg("TriggerMessage", false, Has2beTriggerMessageRequest{}, ExtendedTriggerMessage16Response{}),
	},
}

// Lookup returns the message of action in dialect d.
func Lookup(d Dialect, action string) (Message, bool) {
	for _, m := range catalog[d] {
		if m.Action == action {
			return m, true
		}
	}
	return Message{}, false
}

// Messages returns the actions pncpki knows in dialect d, sorted.
func Messages(d Dialect) []Message {
	ms := append([]Message(nil), catalog[d]...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Action < ms[j].Action })
	return ms
}

// newValue returns a pointer to a new zero value of t.
func newValue(t reflect.Type) any { return reflect.New(t).Interface() }

// ParseCall decodes a request pncpki sent earlier (as returned in
// Result.Calls and handed back by a CSMS), so that HandleResult can use it.
func ParseCall(d Dialect, action string, payload []byte) (Call, error) {
	m, ok := Lookup(d, action)
	if !ok {
		return Call{}, ErrNotHandled
	}
	v := newValue(m.Request)
	if err := Decode(d, payload, v); err != nil {
		return Call{}, err
	}
	return Call{Action: action, Payload: v}, nil
}
