package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pncpki/pncpki/api/auth"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/store"
)

type stations struct{ s *Server }

func stationProto(st *store.Station) *pncpkiv1.Station {
	p := &pncpkiv1.Station{Id: st.ID, Tenant: st.Tenant, SerialNumber: st.SerialNumber, EvseIds: st.EVSEIDs, SeccIds: st.SECCIDs,
		OcppVersion: st.OCPPVersion, ExiResponseLimit: int32(st.EXIResponseLimit), CreatedAt: timestamppb.New(st.CreatedAt), UpdatedAt: timestamppb.New(st.UpdatedAt)}
	if !st.LastSeen.IsZero() {
		p.LastSeen = timestamppb.New(st.LastSeen)
	}
	return p
}

func invalid(code, format string, args ...any) error {
	return newError(connect.CodeInvalidArgument, code, fmt.Errorf(code+": "+format, args...))
}

// station returns a station the caller may see; another tenant's station
// is "not found".
func (s *Server) station(ctx context.Context, id string) (*store.Station, error) {
	st, err := s.Store.Station(ctx, id)
	if err == nil {
		if c := claimsFrom(ctx); c.Role == auth.RoleAdmin || c.Tenant == st.Tenant {
			return st, nil
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, apiError(err)
	}
	return nil, newError(connect.CodeNotFound, CodeStationNotFound, fmt.Errorf("station.not_found: no station %q", id))
}

func (h *stations) PutStation(ctx context.Context, req *connect.Request[pncpkiv1.PutStationRequest]) (*connect.Response[pncpkiv1.PutStationResponse], error) {
	in := req.Msg.Station
	if in == nil {
		return nil, invalid("request.invalid", "station is required")
	}
	c := claimsFrom(ctx)
	if c.Role != auth.RoleAdmin {
		if in.Tenant != "" && in.Tenant != c.Tenant {
			return nil, forbidden("a token of tenant %s cannot register stations of tenant %s", c.Tenant, in.Tenant)
		}
		in.Tenant = c.Tenant
	}
	now := h.s.Now().UTC()
	st := &store.Station{ID: in.Id, Tenant: in.Tenant, SerialNumber: in.SerialNumber, EVSEIDs: in.EvseIds, SECCIDs: in.SeccIds,
		OCPPVersion: in.OcppVersion, EXIResponseLimit: int(in.ExiResponseLimit), CreatedAt: now, UpdatedAt: now}
	if err := ocppsec.NormalizeStation(st); err != nil {
		return nil, invalid(CodeStationInvalid, "%v", err)
	}
	tenant, err := h.s.Store.Tenant(ctx, st.Tenant)
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalid("tenant.unknown", "no tenant %q", st.Tenant)
	} else if err != nil {
		return nil, apiError(err)
	}
	if err := ocppsec.CheckOwnership(st, tenant); err != nil {
		return nil, newError(connect.CodePermissionDenied, ca.CodePolicyDenied, fmt.Errorf("%s: %w", ca.CodePolicyDenied, err))
	}
	if old, err := h.s.station(ctx, st.ID); err == nil {
		st.CreatedAt = old.CreatedAt
	}
	if err := h.s.Store.PutStation(ctx, st); errors.Is(err, store.ErrExists) {
		// Another tenant's station: answered as GET answers it, as if
		// it did not exist, so that its ID is not revealed.
		return nil, newError(connect.CodeNotFound, CodeStationNotFound, fmt.Errorf("station.not_found: no station %q", st.ID))
	} else if errors.Is(err, store.ErrNotFound) {
		return nil, invalid("tenant.unknown", "no tenant %q", st.Tenant)
	} else if err != nil {
		return nil, apiError(err)
	}
	return connect.NewResponse(&pncpkiv1.PutStationResponse{Station: stationProto(st)}), nil
}

func (h *stations) GetStation(ctx context.Context, req *connect.Request[pncpkiv1.GetStationRequest]) (*connect.Response[pncpkiv1.GetStationResponse], error) {
	st, err := h.s.station(ctx, req.Msg.Id)
	if err != nil {
		return nil, err
	}
	resp := &pncpkiv1.GetStationResponse{Station: stationProto(st)}
	held, err := h.s.Store.InstalledCertificates(ctx, st.ID)
	if err != nil {
		return nil, apiError(err)
	}
	for _, c := range held {
		resp.Installed = append(resp.Installed, &pncpkiv1.InstalledCertificate{Type: c.Type, HashAlgorithm: c.HashAlgorithm,
			IssuerNameHash: c.IssuerNameHash, IssuerKeyHash: c.IssuerKeyHash, SerialNumber: c.SerialNumber, SeenAt: timestamppb.New(c.SeenAt)})
	}
	calls, err := h.s.Store.StationCalls(ctx, st.ID)
	if err != nil {
		return nil, apiError(err)
	}
	for _, c := range calls {
		resp.PendingCalls = append(resp.PendingCalls, &pncpkiv1.PendingCall{Id: c.ID, Action: c.Action, Payload: string(c.Payload), Created: timestamppb.New(c.Created)})
	}
	if h.s.OCPP != nil {
		if resp.RenewalsDue, err = h.s.OCPP.RenewalsDue(ctx, st); err != nil {
			return nil, apiError(err)
		}
	}
	return connect.NewResponse(resp), nil
}

func (h *stations) ListStations(ctx context.Context, req *connect.Request[pncpkiv1.ListStationsRequest]) (*connect.Response[pncpkiv1.ListStationsResponse], error) {
	tenant, err := scopeTenant(ctx, req.Msg.Tenant, "list")
	if err != nil {
		return nil, err
	}
	list, err := h.s.Store.ListStations(ctx, tenant)
	if err != nil {
		return nil, apiError(err)
	}
	resp := &pncpkiv1.ListStationsResponse{}
	for _, st := range list {
		resp.Stations = append(resp.Stations, stationProto(st))
	}
	return connect.NewResponse(resp), nil
}

func (h *stations) DeleteStation(ctx context.Context, req *connect.Request[pncpkiv1.DeleteStationRequest]) (*connect.Response[pncpkiv1.DeleteStationResponse], error) {
	if _, err := h.s.station(ctx, req.Msg.Id); err != nil {
		return nil, err
	}
	if err := h.s.Store.DeleteStation(ctx, req.Msg.Id); err != nil {
		return nil, apiError(err)
	}
	return connect.NewResponse(&pncpkiv1.DeleteStationResponse{}), nil
}

type ocppService struct{ s *Server }

// dialect maps an OCPP version to the payload dialect.
func dialect(version string) (ocppsec.Dialect, error) {
	switch version {
	case "1.6", "2.0.1", "2.1":
		return ocppsec.Dialect(version), nil
	}
	return "", invalid(CodeOCPPVersion, "ocpp_version %q: want 1.6, 2.0.1 or 2.1", version)
}

// ocppError turns a payload or frame error into an API error whose code
// names the OCPP CallError to send the station.
func ocppError(err error) error {
	var ve *ocppsec.ValidationError
	if errors.As(err, &ve) {
		return invalid("ocpp."+ve.Code, "%v", ve)
	}
	if errors.Is(err, ocppsec.ErrNotHandled) {
		return newError(connect.CodeUnimplemented, CodeNotImplemented, errors.New("ocpp.NotImplemented: pncpki does not answer this action; the CSMS does"))
	}
	return apiError(err)
}

func (h *ocppService) bridge() (*ocppsec.Bridge, error) {
	if h.s.OCPP == nil {
		return nil, newError(connect.CodeUnimplemented, CodeOCPPDisabled, errors.New("ocpp.disabled: this server has no OCPP bridge"))
	}
	return h.s.OCPP, nil
}

// prepare checks what every OCPP call needs: a bridge, a known OCPP
// version, and a station the caller may act for.
func (h *ocppService) prepare(ctx context.Context, stationID, version string) (*ocppsec.Bridge, ocppsec.Dialect, error) {
	b, err := h.bridge()
	if err != nil {
		return nil, "", err
	}
	d, err := dialect(version)
	if err != nil {
		return nil, "", err
	}
	if _, err := h.s.station(ctx, stationID); err != nil {
		return nil, "", err
	}
	return b, d, nil
}

func (h *ocppService) HandleRequest(ctx context.Context, req *connect.Request[pncpkiv1.HandleRequestRequest]) (*connect.Response[pncpkiv1.HandleRequestResponse], error) {
	m := req.Msg
	if m.Action == "" || len(m.Action) > 64 || !utf8.ValidString(m.Action) {
		return nil, invalid("ocpp.FormatViolation", "action must be 1 to 64 characters")
	}
	b, d, err := h.prepare(ctx, m.StationId, m.OcppVersion)
	if err != nil {
		return nil, err
	}
	res, err := b.Handle(ctx, m.StationId, d, m.Action, []byte(m.Payload))
	if err != nil {
		return nil, ocppError(err)
	}
	payload, err := json.Marshal(res.Response)
	if err != nil {
		return nil, apiError(err)
	}
	if m.CsmsResponse != "" && m.Action == "Authorize" {
		if payload, err = ocppsec.MergeAuthorize(d, []byte(m.CsmsResponse), res.CertificateStatus, b.Policy.InvalidateRevoked); err != nil {
			return nil, invalid(CodeOCPPCSMSResponse, "%v", err)
		}
	}
	calls, err := callsProto(res.Calls)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&pncpkiv1.HandleRequestResponse{Payload: string(payload), Calls: calls, CertificateStatus: res.CertificateStatus}), nil
}

func (h *ocppService) HandleResult(ctx context.Context, req *connect.Request[pncpkiv1.HandleResultRequest]) (*connect.Response[pncpkiv1.HandleResultResponse], error) {
	m := req.Msg
	if m.Sent == nil {
		return nil, invalid("request.invalid", "sent is required")
	}
	b, d, err := h.prepare(ctx, m.StationId, m.OcppVersion)
	if err != nil {
		return nil, err
	}
	sent, err := ocppsec.ParseCall(d, m.Sent.Action, []byte(m.Sent.Payload))
	if err != nil {
		return nil, ocppError(err)
	}
	follow, err := b.HandleResult(ctx, m.StationId, d, sent, "", []byte(m.Payload))
	if err != nil {
		return nil, ocppError(err)
	}
	calls, err := callsProto(follow)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&pncpkiv1.HandleResultResponse{Calls: calls}), nil
}

func (h *ocppService) StationCalls(ctx context.Context, req *connect.Request[pncpkiv1.StationCallsRequest]) (*connect.Response[pncpkiv1.StationCallsResponse], error) {
	b, err := h.bridge()
	if err != nil {
		return nil, err
	}
	st, err := h.s.station(ctx, req.Msg.StationId)
	if err != nil {
		return nil, err
	}
	version := req.Msg.OcppVersion
	if version == "" {
		version = st.OCPPVersion
	}
	d, err := dialect(version)
	if err != nil {
		return nil, err
	}
	out, err := b.StationCalls(ctx, st, d)
	if err != nil {
		return nil, apiError(err)
	}
	calls, err := callsProto(out)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&pncpkiv1.StationCallsResponse{Calls: calls}), nil
}

func callsProto(calls []ocppsec.Call) ([]*pncpkiv1.OCPPCall, error) {
	var out []*pncpkiv1.OCPPCall
	for _, c := range calls {
		p, err := json.Marshal(c.Payload)
		if err != nil {
			return nil, apiError(err)
		}
		out = append(out, &pncpkiv1.OCPPCall{Action: c.Action, Payload: string(p)})
	}
	return out, nil
}
