package policies

import (
	"errors"
	"testing"
)

// TestPermitOrganization: an organization in a subject must be the
// tenant's own, for every profile a tenant receives; a tenant without one
// has nothing to bind to.
func TestPermitOrganization(t *testing.T) {
	cpo := &Tenant{Name: "cpo1", Kind: TenantCPO, Organization: "Example CPO", OperatorIDs: []string{"DEABC"}}
	bare := &Tenant{Name: "cpo2", Kind: TenantCPO, OperatorIDs: []string{"DEABC"}}
	secc, _ := Lookup(ISO2SECC)
	station, _ := Lookup(OCPPChargingStation)
	for _, tc := range []struct {
		name    string
		tenant  *Tenant
		p       *Profile
		subject Subject
		want    string // "" permitted
	}{
		{"SECC with the tenant's O", cpo, secc, Subject{CommonName: "DE*ABC*E1", Organization: "Example CPO"}, ""},
		{"SECC without O", cpo, secc, Subject{CommonName: "DE*ABC*E1"}, ""},
		{"SECC with another CPO's O", cpo, secc, Subject{CommonName: "DE*ABC*E1", Organization: "Other CPO"}, CodeOrganization},
		{"station with another CPO's O", cpo, station, Subject{CommonName: "SN1", Organization: "Other CPO"}, CodeOrganization},
		{"station without O", cpo, station, Subject{CommonName: "SN1"}, CodeOrganization},
		{"tenant without an organization", bare, secc, Subject{CommonName: "DE*ABC*E1", Organization: "Anything"}, ""},
	} {
		err := tc.tenant.Permit(tc.p, tc.subject)
		var pe *PolicyError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (!errors.As(err, &pe) || pe.Code != tc.want):
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
}
