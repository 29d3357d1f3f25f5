package opnc

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/webhook"
)

// OPNC's event API: tenants subscribe webhook endpoints; package webhook
// delivers.

// Events of the root pool.
const (
	EventRootAdded   = webhook.RootAdded
	EventRootRevoked = webhook.RootRevoked
)

// Limits of an endpoint.
const (
	maxEndpointsPerTenant = 20
	maxDescription        = 500
	maxWMIs               = 100
)

var wmiPattern = regexp.MustCompile(`^[A-Z0-9]{3}$`)

func (s *Server) mountEvents(r chi.Router, prefix string) {
	r.Post(prefix+"/event/endpoints", s.authed(s.createEndpoint))
	r.Get(prefix+"/event/endpoints", s.authed(s.listEndpoints))
	r.Get(prefix+"/event/endpoints/{id}", s.authed(s.getEndpoint))
	r.Put(prefix+"/event/endpoints/{id}", s.authed(s.updateEndpoint))
	r.Delete(prefix+"/event/endpoints/{id}", s.authed(s.deleteEndpoint))
}

// endpointReq is postEndpointReq / putEndpointUpdateReq. OPNC's update
// schema types enabledEvents as one string; a list is accepted too.
type endpointReq struct {
	APIVersion    string          `json:"apiVersion"`
	Description   string          `json:"description"`
	EnabledEvents json.RawMessage `json:"enabledEvents"`
	WMI           []string        `json:"wmi"`
	Metadata      json.RawMessage `json:"metadata"`
	Status        string          `json:"status"`
	URL           string          `json:"url"`
}

// check validates a request into e; its URL must be one dispatcher may
// reach.
func (req *endpointReq) check(e *store.EventEndpoint, dispatcher *webhook.Dispatcher) string {
	if req.APIVersion != "" && req.APIVersion != "v1" {
		return "apiVersion: pncpki renders events as v1"
	}
	if m := strings.TrimSpace(string(req.Metadata)); m != "" && m != "{}" && m != "null" {
		return "metadata is not kept by pncpki; send none"
	}
	if len(req.Description) > maxDescription {
		return "description is longer than 500 characters"
	}
	var events []string
	if err := json.Unmarshal(req.EnabledEvents, &events); err != nil {
		var one string
		if json.Unmarshal(req.EnabledEvents, &one) != nil {
			return "enabledEvents: want a list of event types"
		}
		events = []string{one}
	}
	if len(events) == 0 {
		return "enabledEvents is required"
	}
	for _, ev := range events {
		if !slices.Contains(webhook.Types, ev) {
			return "enabledEvents: pncpki publishes " + strings.Join(webhook.Types, ", ") + "; not " + ev
		}
	}
	if len(req.WMI) > maxWMIs {
		return "more than 100 WMIs"
	}
	for _, w := range req.WMI {
		if !wmiPattern.MatchString(w) {
			return "wmi " + w + ": want three upper-case letters or digits"
		}
	}
	switch req.Status {
	case "", "enabled":
		e.Enabled = true
	case "disabled":
		e.Enabled = false
	default:
		return "status: want enabled or disabled"
	}
	if msg := dispatcher.CheckURL(req.URL); msg != "" {
		return msg
	}
	e.URL, e.Description, e.Events, e.WMIs = req.URL, req.Description, slices.Compact(slices.Sorted(slices.Values(events))), req.WMI
	return ""
}

// endpointJSON is endpointRes; the secret only when it was just made.
func endpointJSON(e *store.EventEndpoint, withSecret bool) map[string]any {
	status := "disabled"
	if e.Enabled {
		status = "enabled"
	}
	out := map[string]any{"id": e.ID, "apiVersion": "v1", "created": e.CreatedAt.Unix(), "description": e.Description,
		"enabledEvents": e.Events, "metadata": map[string]any{}, "status": status, "url": e.URL}
	if len(e.WMIs) > 0 {
		out["wmis"] = e.WMIs
	}
	if withSecret {
		out["secret"] = e.Secret
	}
	return out
}

func (s *Server) events(w http.ResponseWriter) bool {
	if s.Events == nil {
		s.writeError(w, http.StatusServiceUnavailable, "this pncpki publishes no events")
		return false
	}
	return true
}

// createEndpoint answers postEndpointV1; the answer carries the secret
// the receiver checks signatures with, once.
func (s *Server) createEndpoint(w http.ResponseWriter, r *http.Request) {
	if !jsonBody(w, r, s) || !s.events(w) {
		return
	}
	var req endpointReq
	if !s.decode(w, r, &req) {
		return
	}
	tenant := actingTenant(r)
	now := time.Now().UTC().Truncate(time.Second)
	e := &store.EventEndpoint{ID: traceID(), Tenant: tenant, Secret: newSecret(), CreatedAt: now, UpdatedAt: now}
	if msg := req.check(e, s.Events); msg != "" {
		s.writeError(w, http.StatusBadRequest, "%s", msg)
		return
	}
	if have, err := s.Events.Store.ListEventEndpoints(r.Context(), tenant); err != nil {
		s.writeError(w, http.StatusInternalServerError, "%v", err)
		return
	} else if tenant != "" && len(have) >= maxEndpointsPerTenant {
		s.writeError(w, http.StatusBadRequest, "a tenant has at most %d endpoints", maxEndpointsPerTenant)
		return
	}
	if err := s.Events.Store.PutEventEndpoint(r.Context(), e); err != nil {
		s.writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusCreated, endpointJSON(e, true))
}

// endpoint finds an endpoint the caller may see.
func (s *Server) endpoint(w http.ResponseWriter, r *http.Request) (*store.EventEndpoint, bool) {
	if !s.events(w) {
		return nil, false
	}
	id := chi.URLParam(r, "id")
	e, err := s.Events.Store.EventEndpoint(r.Context(), id)
	tenant := actingTenant(r)
	switch {
	case errors.Is(err, store.ErrNotFound) || err == nil && tenant != "" && e.Tenant != tenant:
		s.writeError(w, http.StatusNotFound, "no endpoint %s", id)
		return nil, false
	case err != nil:
		s.writeError(w, http.StatusInternalServerError, "%v", err)
		return nil, false
	}
	return e, true
}

// listEndpoints answers get-webhook-endpoints: the caller's endpoints.
func (s *Server) listEndpoints(w http.ResponseWriter, r *http.Request) {
	if !s.events(w) {
		return
	}
	list, err := s.Events.Store.ListEventEndpoints(r.Context(), actingTenant(r))
	if err != nil {
		s.writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	out := []map[string]any{}
	for _, e := range list {
		out = append(out, endpointJSON(e, false))
	}
	writeJSON(w, http.StatusOK, out)
}

// getEndpoint answers getEndpointByIdV1.
func (s *Server) getEndpoint(w http.ResponseWriter, r *http.Request) {
	if e, ok := s.endpoint(w, r); ok {
		writeJSON(w, http.StatusOK, endpointJSON(e, false))
	}
}

// updateEndpoint answers updateEndpointByIdV1; the secret stays.
func (s *Server) updateEndpoint(w http.ResponseWriter, r *http.Request) {
	if !jsonBody(w, r, s) {
		return
	}
	e, ok := s.endpoint(w, r)
	if !ok {
		return
	}
	var req endpointReq
	if !s.decode(w, r, &req) {
		return
	}
	if msg := req.check(e, s.Events); msg != "" {
		s.writeError(w, http.StatusBadRequest, "%s", msg)
		return
	}
	e.UpdatedAt = time.Now().UTC().Truncate(time.Second)
	if err := s.Events.Store.PutEventEndpoint(r.Context(), e); err != nil {
		s.writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, endpointJSON(e, false))
}

// deleteEndpoint answers deleteEndpointByIdV1.
func (s *Server) deleteEndpoint(w http.ResponseWriter, r *http.Request) {
	e, ok := s.endpoint(w, r)
	if !ok {
		return
	}
	if err := s.Events.Store.DeleteEventEndpoint(r.Context(), e.ID); err != nil {
		s.writeError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// newSecret is 32 random bytes, base64url.
func newSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// RootEvents returns what announces a root added to or removed from the
// pool, as root.cert.added or root.cert.revoked through events. pncd sets
// it as the bridge's AnchorChanged, so that the roots the upstream sync
// changes are announced as well as the administrators' changes.
func RootEvents(events *webhook.Dispatcher) func(ctx context.Context, u ocppsec.Use, c *x509.Certificate, added bool) {
	return func(ctx context.Context, u ocppsec.Use, c *x509.Certificate, added bool) {
		typ := EventRootRevoked
		if added {
			typ = EventRootAdded
		}
		events.Publish(context.WithoutCancel(ctx), webhook.Event{Type: typ, Payload: rootPayload(u, c)})
	}
}

// rootPayload is the payload of a root pool event.
func rootPayload(u ocppsec.Use, c *x509.Certificate) map[string]any {
	root := rootJSON(c, u)
	return map[string]any{"rootCertificateId": root["rootCertificateId"], "distinguishedName": eventDN(c),
		"commonName": root["commonName"], "rootType": opcpRootType[u], "rootSerialNumber": strings.ToLower(c.SerialNumber.Text(16))}
}

// eventDN is a root's subject in the order OPNC's webhook payload pattern
// wants (CN, DC, O, OU, C), its characters limited to the pattern's.
func eventDN(c *x509.Certificate) string {
	clean := func(v string) string {
		return strings.Map(func(r rune) rune {
			if r == ' ' || r == '-' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
				return r
			}
			return -1
		}, v)
	}
	var parts []string
	add := func(k string, vs []string) {
		if len(vs) > 0 && clean(vs[0]) != "" {
			parts = append(parts, k+"="+clean(vs[0]))
		}
	}
	add("CN", []string{c.Subject.CommonName})
	var dc []string
	for _, n := range c.Subject.Names {
		if n.Type.Equal(oidDC) {
			if v, ok := n.Value.(string); ok {
				dc = append(dc, v)
			}
		}
	}
	add("DC", dc)
	add("O", c.Subject.Organization)
	add("OU", c.Subject.OrganizationalUnit)
	if len(c.Subject.Country) > 0 && len(c.Subject.Country[0]) == 2 {
		parts = append(parts, "C="+strings.ToUpper(c.Subject.Country[0]))
	}
	return strings.Join(parts, ", ")
}
