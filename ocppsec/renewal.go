package ocppsec

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// DefaultRenewalWindow is how long before expiry a station is asked to
// renew when Policy.RenewalWindow is zero.
const DefaultRenewalWindow = 30 * 24 * time.Hour

// The certificates of a station that RenewalsDue names.
const (
	RenewStation = "ChargingStationCertificate"
	RenewV2G     = "V2GCertificate"
	RenewV2G20   = "V2G20Certificate" // the SECC's ISO 15118-20 certificate (OCPP 2.1)
)

// RenewalsDue names the station's certificates (RenewStation, RenewV2G)
// whose latest expires within the renewal window. A certificate already
// followed by a newer one for the same name does not count.
func (b *Bridge) RenewalsDue(ctx context.Context, st *store.Station) ([]string, error) {
	window := b.Policy.RenewalWindow
	if window <= 0 {
		window = DefaultRenewalWindow
	}
	due := func(profile string, names map[string]bool, forms func(string) []string, normalize func(string) string) (bool, error) {
		latest, err := b.latestByName(ctx, st.Tenant, profile, names, forms, normalize)
		if err != nil {
			return false, err
		}
		for name := range names {
			if t, ok := latest[name]; ok && t.Before(b.now().Add(window)) {
				return true, nil
			}
		}
		return false, nil
	}
	var out []string
	stationNames := map[string]bool{st.SerialNumber: true}
	if b.Policy.StationCNIdentity {
		stationNames[st.ID] = true
	}
	same := func(s string) string { return s }
	if ok, err := due(policies.OCPPChargingStation, stationNames, func(s string) []string { return []string{s} }, same); err != nil {
		return nil, err
	} else if ok {
		out = append(out, RenewStation)
	}
	seccNames := map[string]bool{}
	for _, x := range append(append([]string(nil), st.EVSEIDs...), st.SECCIDs...) {
		seccNames[x] = true
	}
	seccName := func(s string) string { n, _ := NormalizeSECCName(s); return n }
	for _, r := range []struct{ profile, renew string }{{policies.ISO2SECC, RenewV2G}, {policies.ISO20SECC, RenewV2G20}, {policies.ISO20EdSECC, RenewV2G20}} {
		if ok, err := due(r.profile, seccNames, seccCNForms, seccName); err != nil {
			return nil, err
		} else if ok && !slices.Contains(out, r.renew) {
			out = append(out, r.renew)
		}
	}
	return out, nil
}

// seccCNForms are the CNs a SECC certificate for a station's compact
// EVSEID or SECC ID may carry: with or without the '*' after the country
// code and the operator ID, in upper or lower case. (An EVSEID whose
// power outlet ID has its own '*' in the CN is not found by its compact
// form.)
func seccCNForms(compact string) []string {
	if len(compact) < 6 {
		return []string{compact}
	}
	cc, op, rest := compact[:2], compact[2:5], compact[5:]
	var forms []string
	for _, f := range []string{cc + op + rest, cc + "*" + op + rest, cc + op + "*" + rest, cc + "*" + op + "*" + rest} {
		forms = append(forms, f, strings.ToLower(f))
	}
	return forms
}

// RenewalCalls returns the trigger messages that make a station send a new
// CSR for each of its certificates RenewalsDue names (OCPP 2.0.1
// TriggerMessage SignV2GCertificate / SignChargingStationCertificate; 1.6
// ExtendedTriggerMessage SignChargePointCertificate and, for Plug and
// Charge, TriggerMessage SignV2GCertificate in the OCA DataTransfer; 2.1
// TriggerMessage SignV2G20Certificate for an ISO 15118-20 certificate,
// which no earlier version can ask for).
func (b *Bridge) RenewalCalls(ctx context.Context, st *store.Station, d Dialect) ([]Call, error) {
	due, err := b.RenewalsDue(ctx, st)
	if err != nil {
		return nil, err
	}
	var calls []Call
	for _, kind := range due {
		switch {
		case kind == RenewStation && d == OCPP16:
			calls = append(calls, Call{"ExtendedTriggerMessage", &ExtendedTriggerMessage16{RequestedMessage: "SignChargePointCertificate"}})
		case kind == RenewStation:
			calls = append(calls, Call{"TriggerMessage", &TriggerMessageRequest{RequestedMessage: "SignChargingStationCertificate"}})
		case kind == RenewV2G20 && d == OCPP21:
			calls = append(calls, Call{"TriggerMessage", &TriggerMessageRequest{RequestedMessage: "SignV2G20Certificate"}})
		case kind == RenewV2G20:
			b.log().Warn("ISO 15118-20 certificate due for renewal, but only OCPP 2.1 can ask for it", "station", st.ID, "ocpp", d)
		case d == OCPP16: // 1.6 Plug and Charge: the OCA DataTransfer
			data, _ := json.Marshal(&TriggerMessageRequest{RequestedMessage: "SignV2GCertificate"})
			calls = append(calls, Call{"DataTransfer", &DataTransfer16{VendorID: VendorOCA, MessageID: "TriggerMessage", Data: string(data)}})
		default:
			calls = append(calls, Call{"TriggerMessage", &TriggerMessageRequest{RequestedMessage: "SignV2GCertificate"}})
		}
	}
	return calls, nil
}

// latestByName returns, per normalised common name, the latest notAfter of
// the tenant's unrevoked certificates of a profile for names: it looks up
// the CNs forms gives for each, through the CN index, never the tenant's
// other certificates.
func (b *Bridge) latestByName(ctx context.Context, tenant, profile string, names map[string]bool, forms func(string) []string, normalize func(string) string) (map[string]time.Time, error) {
	var cns []string
	for name := range names {
		cns = append(cns, forms(name)...)
	}
	out := map[string]time.Time{}
	if len(cns) == 0 {
		return out, nil
	}
	f := store.Filter{Tenant: tenant, Profile: profile, Revoked: new(bool), CommonNames: cns, Limit: store.MaxPage}
	for {
		page, err := b.Store.Certificates(ctx, f)
		if err != nil {
			return nil, err
		}
		for _, c := range page {
			name := normalize(c.CommonName)
			if t, ok := out[name]; !ok || c.NotAfter.After(t) {
				out[name] = c.NotAfter
			}
		}
		if len(page) < store.MaxPage {
			return out, nil
		}
		last := page[len(page)-1]
		f.After = &store.Cursor{Time: last.CreatedAt, Issuer: last.Issuer, Serial: last.Serial}
	}
}

// StationCalls returns what a station speaking d should be sent now: the
// start of a root sync, the question for its exiResponse limit (2.0.1 and
// 2.1) and any renewal triggers.
func (b *Bridge) StationCalls(ctx context.Context, st *store.Station, d Dialect) ([]Call, error) {
	calls := b.RootSyncCalls(d)
	if d == OCPP201 || d == OCPP21 {
		// The longest exiResponse it takes: the station's own limit
		// replaces its OCPP version's for its installation answers.
		calls = append(calls, Call{"GetVariables", &GetVariablesRequest{GetVariableData: []GetVariableData{FieldLengthVariable}}})
	}
	renew, err := b.RenewalCalls(ctx, st, d)
	if err != nil {
		return nil, err
	}
	return append(calls, renew...), nil
}
