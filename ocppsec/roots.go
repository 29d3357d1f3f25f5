package ocppsec

import (
	"crypto/x509"
	"encoding/json"
	"slices"
)

// Root certificate sync: pncpki asks a station which roots it holds
// (GetInstalledCertificateIds) and answers the result with the
// InstallCertificate requests for the trust anchors it lacks, and, when
// Policy.DeleteUnknownRoots is set, DeleteCertificate requests for Plug and
// Charge roots it should not trust. CSMS and manufacturer roots are never
// deleted: removing the root a station uses to reach its CSMS, or to check
// its firmware, is not something to automate.

// rootTypes lists the installable root types of a dialect with their use.
func rootTypes(d Dialect) map[string]Use {
	switch d {
	case OCPP16:
		return map[string]Use{"CentralSystemRootCertificate": UseCSMS, "ManufacturerRootCertificate": UseManufacturer}
	case OCPP21:
		return map[string]Use{string(UseV2G): UseV2G, string(UseMO): UseMO, string(UseCSMS): UseCSMS, string(UseManufacturer): UseManufacturer, string(UseOEM): UseOEM}
	case OCPP201:
		return map[string]Use{string(UseV2G): UseV2G, string(UseMO): UseMO, string(UseCSMS): UseCSMS, string(UseManufacturer): UseManufacturer}
	}
	return nil
}

// deletable says which uses sync may remove: the Plug and Charge roots.
func deletable(u Use) bool { return u == UseV2G || u == UseMO || u == UseOEM }

// RootSyncCalls returns the GetInstalledCertificateIds requests that start
// a root sync with a station speaking d.
func (b *Bridge) RootSyncCalls(d Dialect) []Call {
	types := rootTypes(d)
	names := make([]string, 0, len(types))
	for name := range types {
		names = append(names, name)
	}
	slices.Sort(names)
	if d == OCPP16 { // one type per request
		var calls []Call
		for _, n := range names {
			calls = append(calls, Call{"GetInstalledCertificateIds", &GetInstalledCertificateIds16{CertificateType: n}})
		}
		// The Plug and Charge roots of a 1.6 station go through the OCA
		// DataTransfer variant with 2.0.1 payloads; a station without Plug
		// and Charge answers UnknownVendorId, which ends the matter.
		data, _ := json.Marshal(GetInstalledCertificateIdsRequest{CertificateType: []string{string(UseMO), string(UseV2G)}})
		calls = append(calls, Call{"DataTransfer", &DataTransfer16{VendorID: VendorOCA, MessageID: "GetInstalledCertificateIds", Data: string(data)}})
		return calls
	}
	if len(names) == 0 {
		return nil
	}
	return []Call{{"GetInstalledCertificateIds", &GetInstalledCertificateIdsRequest{CertificateType: names}}}
}

// installed is one root a station reported.
type installed struct {
	typ  string
	hash CertificateHashData
}

// rootSyncFollowUp turns a station's list of installed roots (of the types
// asked for) into InstallCertificate and DeleteCertificate requests.
func (b *Bridge) rootSyncFollowUp(d Dialect, asked []string, have []installed) []Call {
	types := rootTypes(d)
	var calls []Call
	for _, typ := range asked {
		u, ok := types[typ]
		if !ok {
			continue
		}
		want := b.TrustAnchors()[u]
		for _, root := range want {
			if !slices.ContainsFunc(have, func(h installed) bool { return h.typ == typ && sameRoot(root, h.hash) }) {
				cert := root
				if u == UseCSMS && b.Policy.AdditionalRootCertificateCheck {
					if cert = b.rollover(root, typ, have); cert == nil {
						b.log().Warn("no rollover certificate signed by a CSMS root the station holds: the new root is not sent", "root", root.Subject.String())
						continue
					}
				}
				pemText := EncodePEMChain(cert)
				if d == OCPP16 {
					calls = append(calls, Call{"InstallCertificate", &InstallCertificate16{CertificateType: typ, Certificate: pemText}})
				} else {
					calls = append(calls, Call{"InstallCertificate", &InstallCertificateRequest{CertificateType: typ, Certificate: pemText}})
				}
			}
		}
		if !b.Policy.DeleteUnknownRoots || !deletable(u) {
			continue
		}
		for _, h := range have {
			if h.typ == typ && !slices.ContainsFunc(want, func(root *x509.Certificate) bool { return sameRoot(root, h.hash) }) {
				calls = append(calls, Call{"DeleteCertificate", &DeleteCertificateRequest{CertificateHashData: h.hash}})
			}
		}
	}
	return calls
}

func sameRoot(root *x509.Certificate, h CertificateHashData) bool {
	mine, err := HashDataOf(root, root, h.HashAlgorithm)
	return err == nil && mine.Same(h)
}

// rollover returns what to install for a CSMS root the station lacks when
// it checks new CSMS roots against the old one (AdditionalRootCertificateCheck):
// the root itself if the station holds no CSMS root yet, otherwise the
// rollover certificate of that root signed by a root the station holds.
func (b *Bridge) rollover(root *x509.Certificate, typ string, have []installed) *x509.Certificate {
	holds := func(r *x509.Certificate) bool {
		return slices.ContainsFunc(have, func(h installed) bool { return h.typ == typ && sameRoot(r, h.hash) })
	}
	if !slices.ContainsFunc(have, func(h installed) bool { return h.typ == typ }) {
		return root
	}
	anchors := b.TrustAnchors()
	for _, x := range anchors[UseCSMSRollover] {
		if anchors.rolloverOf(x) == root {
			if signer := anchors.rolloverSigner(x); signer != nil && holds(signer) {
				return x
			}
		}
	}
	return nil
}
