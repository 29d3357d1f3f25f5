package ocppsec

import (
	"fmt"
	"unicode/utf8"

	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// MaxStationID bounds a station identity (OCPP 2.0.1 Part 4: at most 48
// characters, URL path safe).
const MaxStationID = 48

// MinEXIResponseLimit is the smallest exiResponse limit a station may
// have: no installation answer is shorter.
const MinEXIResponseLimit = 1000

// NormalizeStation checks a station registration and brings its
// identifiers to the compact form the bridge compares with.
func NormalizeStation(s *store.Station) error {
	if s.ID == "" || utf8.RuneCountInString(s.ID) > MaxStationID {
		return fmt.Errorf("station id must be 1 to %d characters", MaxStationID)
	}
	for _, r := range s.ID {
		if r <= ' ' || r == '/' || r == '?' || r == '#' || r == '%' || r == 0x7f {
			return fmt.Errorf("station id %q: %q is not allowed in a WebSocket URL segment", s.ID, r)
		}
	}
	if s.Tenant == "" {
		return fmt.Errorf("station %s: tenant is required", s.ID)
	}
	if len(s.SerialNumber) > 64 {
		return fmt.Errorf("station %s: serial number longer than 64 characters", s.ID)
	}
	switch s.OCPPVersion {
	case "1.6", "2.0.1", "2.1":
	default:
		return fmt.Errorf("station %s: ocpp version %q: want 1.6, 2.0.1 or 2.1", s.ID, s.OCPPVersion)
	}
	if n := s.EXIResponseLimit; n != 0 && (n < MinEXIResponseLimit || n > contract.LimitOCPP21) {
		return fmt.Errorf("station %s: exiResponse limit %d: want %d to %d base64 characters, or 0 for its OCPP version's", s.ID, n, MinEXIResponseLimit, contract.LimitOCPP21)
	}
	if len(s.EVSEIDs)+len(s.SECCIDs) > 256 {
		return fmt.Errorf("station %s: more than 256 EVSEIDs and SECC IDs", s.ID)
	}
	for i, x := range s.EVSEIDs {
		e, err := policies.ParseEVSEID(x)
		if err != nil {
			return fmt.Errorf("station %s: %w", s.ID, err)
		}
		s.EVSEIDs[i] = e.Compact()
	}
	for i, x := range s.SECCIDs {
		id, err := policies.ParseSECCID(x)
		if err != nil {
			return fmt.Errorf("station %s: %w", s.ID, err)
		}
		s.SECCIDs[i] = id.String()
	}
	return nil
}

// CheckOwnership refuses a station whose EVSEIDs or SECC IDs are under
// operator IDs that are not its tenant's.
func CheckOwnership(s *store.Station, t *policies.Tenant) error {
	for _, name := range append(append([]string(nil), s.EVSEIDs...), s.SECCIDs...) {
		if err := t.OwnsSECCName(name); err != nil {
			return fmt.Errorf("station %s: %w", s.ID, err)
		}
	}
	return nil
}
