// Package api serves pncpki's API: the services defined in
// api/proto/pncpki/v1 as gRPC, gRPC-Web and Connect, and as REST/JSON
// through their google.api.http bindings (connectrpc.com/vanguard), all on
// one handler with bearer-token authentication.
//
// REST is transcoded from the proto rather than written as chi handlers, so
// the API is defined once and the two surfaces cannot drift apart.
package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/vanguard"
	"github.com/go-chi/httprate"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/pncpki/pncpki/api/auth"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/api/gen/pncpki/v1/pncpkiv1connect"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// Server implements the API services over the CA service and the store.
type Server struct {
	CA    *ca.Service
	Store store.Store
	Key   *auth.Key
	// JWKS, when set, also admits the tokens of an external identity
	// provider (those whose iss is JWKS.Issuer).
	JWKS *auth.JWKS
	// OCSP, when set, hears about revocations at once.
	OCSP *ocsp.Responder
	// OCPP answers OCPPService; without it the service says so.
	OCPP *ocppsec.Bridge
	// Anchors, when set and OCPP is not, are the trust anchors that
	// provisioning chains, OEM sub-CAs and deposits are checked against
	// (pncctl's in-process API: the data directory's).
	Anchors func() ocppsec.Anchors
	// Contracts answers ContractService.
	Contracts *contract.Pool
	// RateLimit bounds requests per tenant (zero: unlimited).
	RateLimit RateLimit
	Metrics   *Metrics
	Now       func() time.Time

	tokens      tokenCache
	revocations revocations
	counts      profileCounts
	limiterOnce sync.Once
	limiter     *httprate.RateLimiter
}

// Handler returns the API handler: Connect/gRPC paths
// (/pncpki.v1.CertificateService/...) and REST paths (/v1/...).
func (s *Server) Handler() (http.Handler, error) {
	if s.Now == nil {
		s.Now = time.Now
	}
	// Responses are not compressed: they are small, and between vanguard
	// and the Connect handler compression was the largest cost of a REST
	// call after the cryptography. Compressed requests are read (gzip
	// stays registered; refusing them answered 501 with an empty list of
	// supported encodings).
	opts := connect.WithHandlerOptions(connect.WithInterceptors(s.authenticate()), connect.WithCompressMinBytes(math.MaxInt32))
	var services []*vanguard.Service
	add := func(path string, h http.Handler) { services = append(services, vanguard.NewService(path, h)) }
	add(pncpkiv1connect.NewCertificateServiceHandler(&certificates{s}, opts))
	add(pncpkiv1connect.NewAuthorityServiceHandler(&authorities{s}, opts))
	add(pncpkiv1connect.NewTenantServiceHandler(&tenants{s}, opts))
	add(pncpkiv1connect.NewTokenServiceHandler(&tokens{s}, opts))
	add(pncpkiv1connect.NewAuditServiceHandler(&audit{s}, opts))
	add(pncpkiv1connect.NewStationServiceHandler(&stations{s}, opts))
	add(pncpkiv1connect.NewContractServiceHandler(&contracts{s}, opts))
	add(pncpkiv1connect.NewProvisioningServiceHandler(&provisioning{s}, opts))
	add(pncpkiv1connect.NewOCPPServiceHandler(&ocppService{s}, opts))
	t, err := vanguard.NewTranscoder(services)
	if err != nil {
		return nil, err
	}
	return s.Limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// vanguard answers a GET with a body as an unknown (500) error; it
		// is the client's mistake.
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && (r.ContentLength > 0 || len(r.TransferEncoding) > 0) {
			WriteError(w, http.StatusBadRequest, "request.invalid", "a GET request has no body")
			return
		}
		if r.ContentLength > MaxRequestBody {
			WriteError(w, http.StatusRequestEntityTooLarge, "request.too_large", "the body is larger than 256 KiB")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBody) // chunked bodies: vanguard answers 429
		if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
			// A client certificate that the TLS layer verified against
			// the configured CAs: authenticate() looks it up.
			r = r.WithContext(context.WithValue(r.Context(), clientCertKey{}, r.TLS.VerifiedChains[0][0]))
		}
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			rw := &heldWriter{ResponseWriter: w, limit: 64 << 10, hold: func(status int, _ http.Header) bool { return status >= 400 }}
			t.ServeHTTP(rw, r)
			finishREST(rw)
			return
		}
		// A Connect unary call whose client left out
		// Connect-Protocol-Version (curl, a hand-written client) is still
		// one: without the header the transcoder would take it for REST
		// and answer a plain-text 404.
		if ct := r.Header.Get("Content-Type"); r.Method == http.MethodPost && r.Header.Get("Connect-Protocol-Version") == "" &&
			(ct == "application/json" || ct == "application/proto") {
			r.Header.Set("Connect-Protocol-Version", "1")
		}
		cw := &heldWriter{ResponseWriter: w, limit: 4 << 10, hold: func(status int, h http.Header) bool {
			return status >= 400 && strings.HasPrefix(h.Get("Content-Type"), "text/plain")
		}}
		t.ServeHTTP(cw, r)
		finishConnect(cw)
	})), nil
}

// heldWriter holds back the error answer hold picks (by status and
// headers), at most limit bytes of it, for a finish function to send in
// another shape; every other answer passes through.
type heldWriter struct {
	http.ResponseWriter
	hold   func(status int, h http.Header) bool
	limit  int
	status int
	held   bytes.Buffer
}

func (w *heldWriter) WriteHeader(code int) {
	if w.status == 0 && w.hold(code, w.Header()) {
		w.status = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *heldWriter) Write(b []byte) (int, error) {
	if w.status != 0 {
		if w.held.Len()+len(b) > w.limit {
			return 0, errors.New("error answer too large")
		}
		return w.held.Write(b)
	}
	return w.ResponseWriter.Write(b)
}

// Flush passes flushes on (gRPC streams flush) unless an answer is held.
func (w *heldWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok && w.status == 0 {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the writer underneath.
func (w *heldWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finishREST sends a held REST error answer in the API's one error
// shape, {"code": "stable.code", "message", "details"}: the transcoder
// writes google.rpc.Status (a numeric gRPC code) or, for its own
// refusals, plain text. The request errors it reports as Unknown (a
// malformed body of a route with path parameters, an unknown query
// parameter) go out as the 400 they are; pncpki's handlers answer with
// codes of their own, never Unknown.
func finishREST(w *heldWriter) {
	if w.status == 0 {
		return
	}
	var st struct {
		Code    int               `json:"code"`
		Message string            `json:"message"`
		Details []json.RawMessage `json:"details"`
	}
	if json.Unmarshal(w.held.Bytes(), &st) == nil && st.Message != "" {
		if st.Code == int(connect.CodeUnknown) {
			WriteError(w.ResponseWriter, http.StatusBadRequest, "request.invalid", st.Message)
			return
		}
		code := fallbackCodes[connect.Code(st.Code)]
		for _, d := range st.Details {
			var info struct {
				Type   string `json:"@type"`
				Reason string `json:"reason"`
			}
			if json.Unmarshal(d, &info) == nil && strings.HasSuffix(info.Type, "google.rpc.ErrorInfo") && info.Reason != "" {
				code = info.Reason
			}
		}
		if code == "" {
			code = "internal"
		}
		if !strings.HasPrefix(st.Message, code) {
			st.Message = code + ": " + st.Message
		}
		if len(st.Details) == 0 {
			st.Details = []json.RawMessage{}
			if b, err := json.Marshal(errorInfo(code)); err == nil {
				st.Details = append(st.Details, b)
			}
		}
		writeErrorBody(w.ResponseWriter, w.status, code, st.Message, st.Details)
		return
	}
	// vanguard's own plain-text refusals, in the API's JSON shape.
	switch msg := strings.TrimSpace(w.held.String()); w.status {
	case http.StatusNotFound:
		WriteError(w.ResponseWriter, w.status, CodeRouteNotFound, "no such route: "+msg)
		return
	case http.StatusUnsupportedMediaType:
		WriteError(w.ResponseWriter, w.status, CodeMediaType, "send application/json: "+msg)
		return
	case http.StatusMethodNotAllowed:
		WriteError(w.ResponseWriter, w.status, CodeMethodNotAllowed, msg)
		return
	}
	w.ResponseWriter.WriteHeader(w.status)
	w.ResponseWriter.Write(w.held.Bytes())
}

// finishConnect sends a held plain-text refusal of a Connect/gRPC path
// (an unknown procedure) as a Connect error, JSON with the stable code at
// the start of the message.
func finishConnect(w *heldWriter) {
	if w.status == 0 {
		return
	}
	code, stable := "unknown", "request.invalid"
	switch w.status {
	case http.StatusNotFound:
		code, stable = "unimplemented", CodeRouteNotFound
	case http.StatusMethodNotAllowed:
		code, stable = "unimplemented", CodeMethodNotAllowed
	case http.StatusUnsupportedMediaType:
		code, stable = "invalid_argument", CodeMediaType
	}
	w.ResponseWriter.Header().Set("Content-Type", "application/json")
	w.ResponseWriter.WriteHeader(w.status)
	json.NewEncoder(w.ResponseWriter).Encode(map[string]any{"code": code,
		"message": stable + ": " + strings.TrimSpace(w.held.String())})
}

// WriteError writes the REST error shape for a refusal: the stable code,
// a message that starts with it, and the code again as a
// google.rpc.ErrorInfo reason (where gRPC and Connect clients find it).
// pncd's own JSON routes (health, CRLs) answer with it too.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	writeErrorBody(w, status, code, code+": "+msg, []any{errorInfo(code)})
}

func errorInfo(code string) map[string]string {
	return map[string]string{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": code, "domain": "pncpki"}
}

func writeErrorBody(w http.ResponseWriter, status int, code, msg string, details any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg, "details": details})
}

// fallbackCodes are the stable codes of refusals that carry none of their
// own (the transcoder's): by gRPC code.
var fallbackCodes = map[connect.Code]string{
	connect.CodeInvalidArgument:    ca.CodeBadRequest,
	connect.CodeNotFound:           CodeRouteNotFound,
	connect.CodeUnimplemented:      CodeMethodNotAllowed,
	connect.CodeUnauthenticated:    CodeAuthInvalid,
	connect.CodePermissionDenied:   CodeAuthForbidden,
	connect.CodeResourceExhausted:  "request.too_large",
	connect.CodeFailedPrecondition: ca.CodeBadRequest,
	connect.CodeUnavailable:        CodeStoreUnavailable,
	connect.CodeInternal:           "internal",
}

// trustAnchors are the anchors in force: the OCPP bridge's, else Anchors,
// else none.
func (s *Server) trustAnchors() ocppsec.Anchors {
	switch {
	case s.OCPP != nil:
		return s.OCPP.TrustAnchors()
	case s.Anchors != nil:
		return s.Anchors()
	}
	return nil
}

// MaxRequestBody bounds an API request body; a CSR is at most 64 KiB.
const MaxRequestBody = 256 << 10

type claimsKey struct{}

type clientCertKey struct{}

// certificateClaims authenticates an API client certificate: it must be a
// pncpki-issued api/client certificate, in the store and not revoked. It
// acts for the tenant it was issued to (an administrator when it was
// issued without one).
func (s *Server) certificateClaims(ctx context.Context, cert *x509.Certificate) (*auth.Claims, error) {
	recs, err := s.Store.Certificates(ctx, store.Filter{Serial: ca.SerialHex(cert.SerialNumber)})
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if !bytes.Equal(r.DER, cert.Raw) {
			continue
		}
		if r.Profile != policies.APIClient {
			return nil, fmt.Errorf("client certificate %s/%s is a %s certificate, not %s", r.Issuer, r.Serial, r.Profile, policies.APIClient)
		}
		if r.Revoked() {
			return nil, fmt.Errorf("client certificate %s/%s is revoked", r.Issuer, r.Serial)
		}
		c := &auth.Claims{Tenant: r.Tenant, Role: auth.RoleOperator}
		if r.Tenant == "" {
			c.Role = auth.RoleAdmin
		}
		c.Subject = "cert:" + r.Issuer + "/" + r.Serial
		c.ExpiresAt = jwt.NewNumericDate(r.NotAfter)
		return c, nil
	}
	return nil, errors.New("client certificate not issued by this pncpki")
}

// VerifyConnection is tls.Config.VerifyConnection for pncd's API port: a
// client certificate that this pncpki issued and has revoked is refused in
// the handshake, whatever route it is for (certificateClaims checks the
// status again for each call, as a long-lived connection outlives a
// revocation).
func (s *Server) VerifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	cert := cs.PeerCertificates[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	recs, err := s.Store.Certificates(ctx, store.Filter{Serial: ca.SerialHex(cert.SerialNumber)})
	if err != nil {
		return fmt.Errorf("client certificate status: %w", err)
	}
	for _, r := range recs {
		if bytes.Equal(r.DER, cert.Raw) && r.Revoked() {
			return fmt.Errorf("client certificate %s/%s is revoked", r.Issuer, r.Serial)
		}
	}
	return nil
}

func claimsFrom(ctx context.Context) *auth.Claims {
	c, _ := ctx.Value(claimsKey{}).(*auth.Claims)
	return c
}

// authenticate verifies the bearer token of every call and records who
// acts (for the audit log); refusals are audited too.
func (s *Server) authenticate() connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			h := req.Header().Get("Authorization")
			token, ok := strings.CutPrefix(h, "Bearer ")
			if cert, _ := ctx.Value(clientCertKey{}).(*x509.Certificate); h == "" && cert != nil {
				c, err := s.certificateClaims(ctx, cert)
				if err != nil {
					s.Metrics.refused("unauthenticated")
					s.denied(ctx, "anonymous", req.Spec().Procedure, err.Error())
					return nil, newError(connect.CodeUnauthenticated, CodeAuthInvalid, fmt.Errorf("auth.invalid: %w", err))
				}
				return next(store.WithActor(context.WithValue(ctx, claimsKey{}, c), c.Subject), req)
			}
			if !ok || token == "" {
				s.Metrics.refused("unauthenticated")
				s.denied(ctx, "anonymous", req.Spec().Procedure, "no bearer token")
				return nil, newError(connect.CodeUnauthenticated, CodeAuthMissing, errors.New("auth.missing: a bearer token is required"))
			}
			c, err := s.verify(token)
			if err != nil {
				s.Metrics.refused("unauthenticated")
				s.denied(ctx, "anonymous", req.Spec().Procedure, err.Error())
				return nil, newError(connect.CodeUnauthenticated, CodeAuthInvalid, fmt.Errorf("auth.invalid: %w", err))
			}
			actor := "token:" + c.Subject
			ctx = store.WithActor(context.WithValue(ctx, claimsKey{}, c), actor)
			resp, err := next(ctx, req)
			var ce *connect.Error
			if errors.As(err, &ce) && ce.Code() == connect.CodePermissionDenied {
				s.Metrics.refused("forbidden")
				s.denied(ctx, actor, req.Spec().Procedure, ce.Message())
			}
			return resp, err
		}
	}
}

func (s *Server) denied(ctx context.Context, actor, procedure, why string) {
	s.Store.AppendAudit(context.WithoutCancel(ctx), &store.AuditEntry{Actor: actor, Action: "auth.denied", Object: procedure,
		Detail: fmt.Sprintf(`{"reason":%q}`, why)})
}

// newError builds an API error: the Connect code (and so the HTTP status),
// the stable pncpki code as a google.rpc.ErrorInfo reason (REST shows it in
// "details"), and a message that starts with that code too.
func newError(c connect.Code, code string, err error) *connect.Error {
	e := connect.NewError(c, err)
	if d, derr := connect.NewErrorDetail(&errdetails.ErrorInfo{Reason: code, Domain: "pncpki"}); derr == nil {
		e.AddDetail(d)
	}
	return e
}

// apiError maps a ca.Error to a Connect code.
func apiError(err error) error {
	code := ca.CodeOf(err)
	c := connect.CodeInternal
	switch {
	case store.Unavailable(err):
		logCause(err, "store unavailable")
		e := newError(connect.CodeUnavailable, CodeStoreUnavailable, errors.New("store.unavailable: the store does not answer; retry shortly"))
		e.Meta().Set("Retry-After", "5")
		return e
	case code == "":
		logCause(err, "internal error")
		return newError(connect.CodeInternal, "internal", errors.New("internal: the request could not be completed"))
	case strings.HasPrefix(code, "csr.") || code == ca.CodeProfileUnknown || code == ca.CodeProfileNotIssue ||
		code == ca.CodeBadRequest || code == ca.CodeBadReason || code == ca.CodeTenantUnknown || code == ca.CodeIssuerAmbiguous:
		c = connect.CodeInvalidArgument
	case code == ca.CodePolicyDenied:
		c = connect.CodePermissionDenied
	case code == ca.CodeNotFound || code == ca.CodeIssuerUnknown:
		c = connect.CodeNotFound
	case code == ca.CodeAlreadyRevoked || code == ca.CodeIssuerMismatch || code == ca.CodeExternalRevoke || code == ca.CodeCAOffline:
		c = connect.CodeFailedPrecondition
	case code == ca.CodeUpstream:
		c = connect.CodeUnavailable
	}
	return newError(c, code, err)
}

// causeLog rate-limits logCause per kind of error: during an outage every
// request fails the same way, and one line a second says why; another kind
// of failure meanwhile gets its own line.
var causeLog struct {
	sync.Mutex
	last       map[string]time.Time
	suppressed map[string]int
}

// logCause logs the cause of a server error (5xx), which the answer does
// not show the client, at most once a second for each kind (what), with
// the number of the others since.
func logCause(err error, what string) {
	causeLog.Lock()
	if causeLog.last == nil {
		causeLog.last, causeLog.suppressed = map[string]time.Time{}, map[string]int{}
	}
	now := time.Now()
	if now.Sub(causeLog.last[what]) < time.Second {
		causeLog.suppressed[what]++
		causeLog.Unlock()
		return
	}
	n := causeLog.suppressed[what]
	causeLog.last[what], causeLog.suppressed[what] = now, 0
	causeLog.Unlock()
	slog.Error("API answered a server error: "+what, "err", err, "suppressed_since_last", n)
}

func forbidden(format string, args ...any) error {
	return newError(connect.CodePermissionDenied, CodeAuthForbidden, fmt.Errorf("auth.forbidden: "+format, args...))
}

type certificates struct{ s *Server }

func (h *certificates) SignCSR(ctx context.Context, req *connect.Request[pncpkiv1.SignCSRRequest]) (*connect.Response[pncpkiv1.SignCSRResponse], error) {
	c := claimsFrom(ctx)
	tenant := req.Msg.Tenant
	switch {
	case c.Role == auth.RoleAdmin:
	case tenant == "" || tenant == c.Tenant:
		tenant = c.Tenant
	default:
		return nil, forbidden("a token of tenant %s cannot issue for tenant %s", c.Tenant, tenant)
	}
	if req.Msg.ValidityDays < 0 || req.Msg.ValidityDays > 40*366 {
		return nil, newError(connect.CodeInvalidArgument, ca.CodeBadRequest, errors.New("request.invalid: validity_days out of range"))
	}
	start := time.Now()
	iss, err := h.s.CA.Issue(ctx, ca.Request{Profile: req.Msg.Profile, CSR: []byte(req.Msg.Csr), Tenant: tenant, Issuer: req.Msg.Issuer,
		Validity: policies.Period{Days: int(req.Msg.ValidityDays)}, Admin: c.Role == auth.RoleAdmin})
	if err != nil {
		result := "refused"
		if ca.CodeOf(err) == "" {
			result = "error"
		}
		if _, known := policies.Lookup(req.Msg.Profile); known == nil {
			h.s.Metrics.issuance(req.Msg.Profile, result, 0)
		}
		return nil, apiError(err)
	}
	h.s.Metrics.issuance(req.Msg.Profile, "issued", time.Since(start))
	resp := &pncpkiv1.SignCSRResponse{Certificate: toProto(iss.Record, h.s.Now()), Chain: iss.ChainPEM}
	return connect.NewResponse(resp), nil
}

// find returns the certificate a caller may see.
func (h *certificates) find(ctx context.Context, issuer, serial string) (*store.Certificate, error) {
	serial, err := ca.NormalizeSerial(serial)
	if err != nil {
		return nil, apiError(err)
	}
	cs, err := h.s.Store.Certificates(ctx, store.Filter{Serial: serial, Issuer: issuer})
	if err != nil {
		return nil, apiError(err)
	}
	if c := claimsFrom(ctx); c.Role != auth.RoleAdmin {
		var own []*store.Certificate
		for _, x := range cs {
			if x.Tenant == c.Tenant {
				own = append(own, x)
			}
		}
		cs = own // another tenant's certificate is "not found", not "forbidden"
	}
	switch len(cs) {
	case 0:
		return nil, newError(connect.CodeNotFound, ca.CodeNotFound, fmt.Errorf("%s: no certificate %s", ca.CodeNotFound, serial))
	case 1:
		return cs[0], nil
	}
	return nil, newError(connect.CodeInvalidArgument, ca.CodeAmbiguousSerial, fmt.Errorf("%s: serial %s exists under several CAs: name the issuer", ca.CodeAmbiguousSerial, serial))
}

func (h *certificates) GetCertificate(ctx context.Context, req *connect.Request[pncpkiv1.GetCertificateRequest]) (*connect.Response[pncpkiv1.GetCertificateResponse], error) {
	c, err := h.find(ctx, req.Msg.Issuer, req.Msg.Serial)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&pncpkiv1.GetCertificateResponse{Certificate: toProto(c, h.s.Now())}), nil
}

func (h *certificates) ListCertificates(ctx context.Context, req *connect.Request[pncpkiv1.ListCertificatesRequest]) (*connect.Response[pncpkiv1.ListCertificatesResponse], error) {
	m := req.Msg
	f := store.Filter{Issuer: m.Issuer, Profile: m.Profile, Tenant: m.Tenant, CommonName: m.CommonName, CommonNamePrefix: m.CommonNamePrefix,
		Limit: int(m.PageSize), Offset: int(m.Offset), Revoked: m.Revoked}
	switch m.OrderBy {
	case "", "created":
	case "expiry":
		f.ByExpiry = true
	default:
		return nil, newError(connect.CodeInvalidArgument, ca.CodeBadRequest, errors.New("request.invalid: order_by: want created or expiry"))
	}
	if m.ExpiringBefore != nil {
		f.ExpiringBefore = m.ExpiringBefore.AsTime()
	}
	if m.ExpiringAfter != nil {
		f.ExpiringAfter = m.ExpiringAfter.AsTime()
	}
	if f.Offset < 0 {
		return nil, newError(connect.CodeInvalidArgument, ca.CodeBadRequest, errors.New("request.invalid: offset is negative"))
	}
	if len(m.CommonNamePrefix) > 256 {
		return nil, newError(connect.CodeInvalidArgument, ca.CodeBadRequest, errors.New("request.invalid: common_name_prefix is longer than 256 bytes"))
	}
	if m.PageToken != "" {
		c, byExpiry, err := parsePageToken(m.PageToken)
		if err != nil || f.Offset != 0 || byExpiry != f.ByExpiry {
			return nil, newError(connect.CodeInvalidArgument, ca.CodeBadRequest, errors.New("request.invalid: page_token is not one ListCertificates gave, or comes with an offset"))
		}
		f.After = c
	}
	var err error
	if f.Tenant, err = scopeTenant(ctx, f.Tenant, "list"); err != nil {
		return nil, err
	}
	resp := &pncpkiv1.ListCertificatesResponse{}
	if m.Count || m.OnlyCount {
		if resp.Count, err = h.s.Store.CountCertificates(ctx, f); err != nil {
			return nil, apiError(err)
		}
		if m.OnlyCount {
			return connect.NewResponse(resp), nil
		}
	}
	cs, err := h.s.Store.Certificates(ctx, f)
	if err != nil {
		return nil, apiError(err)
	}
	for _, c := range cs {
		resp.Certificates = append(resp.Certificates, toProto(c, h.s.Now()))
	}
	if n := len(cs); n > 0 && n == store.PageLimit(f.Limit) {
		last := cs[n-1]
		resp.NextPageToken = pageToken(last, f.ByExpiry)
	}
	return connect.NewResponse(resp), nil
}

// maxBuckets bounds a histogram.
const maxBuckets = 400

func (h *certificates) CertificateHistogram(ctx context.Context, req *connect.Request[pncpkiv1.CertificateHistogramRequest]) (*connect.Response[pncpkiv1.CertificateHistogramResponse], error) {
	m := req.Msg
	f := store.Filter{Profile: m.Profile, Tenant: m.Tenant}
	var col store.HistogramColumn
	switch m.By {
	case "expiry":
		col, f.Revoked = store.HistogramExpiry, new(bool)
	case "issuance":
		col = store.HistogramIssuance
	default:
		return nil, newError(connect.CodeInvalidArgument, ca.CodeBadRequest, errors.New("request.invalid: by: want expiry or issuance"))
	}
	if m.From == nil || m.BucketSeconds < 60 || m.Buckets < 1 || m.Buckets > maxBuckets {
		return nil, newError(connect.CodeInvalidArgument, ca.CodeBadRequest, fmt.Errorf("request.invalid: want from, bucket_seconds of at least 60 and 1 to %d buckets", maxBuckets))
	}
	var err error
	if f.Tenant, err = scopeTenant(ctx, f.Tenant, "count"); err != nil {
		return nil, err
	}
	hist, err := h.s.Store.Histogram(ctx, f, col, m.From.AsTime(), time.Duration(m.BucketSeconds)*time.Second, int(m.Buckets))
	if err != nil {
		return nil, apiError(err)
	}
	resp := &pncpkiv1.CertificateHistogramResponse{}
	for _, issuer := range slices.Sorted(maps.Keys(hist)) {
		resp.Series = append(resp.Series, &pncpkiv1.HistogramSeries{Issuer: issuer, Counts: hist[issuer]})
	}
	return connect.NewResponse(resp), nil
}

// pageToken encodes the position after last: its time in the listing's
// order in microseconds ("e" first for the expiry order), issuer and
// serial. It is not secret: a token only names a place in what the
// caller may list anyway.
func pageToken(last *store.Certificate, byExpiry bool) string {
	t, order := last.CreatedAt, ""
	if byExpiry {
		t, order = last.NotAfter, "e"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(order + strconv.FormatInt(t.UnixMicro(), 10) + "/" + last.Issuer + "/" + last.Serial))
}

func parsePageToken(s string) (c *store.Cursor, byExpiry bool, err error) {
	if len(s) > 512 {
		return nil, false, errors.New("page token too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, false, err
	}
	rest, byExpiry := strings.CutPrefix(string(b), "e")
	parts := strings.Split(rest, "/")
	if len(parts) != 3 {
		return nil, false, errors.New("malformed page token")
	}
	us, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || !ca.ValidName(parts[1]) || parts[2] == "" {
		return nil, false, errors.New("malformed page token")
	}
	return &store.Cursor{Time: time.UnixMicro(us).UTC(), Issuer: parts[1], Serial: parts[2]}, byExpiry, nil
}

func (h *certificates) RevokeCertificate(ctx context.Context, req *connect.Request[pncpkiv1.RevokeCertificateRequest]) (*connect.Response[pncpkiv1.RevokeCertificateResponse], error) {
	reason := 0
	if req.Msg.Reason != "" {
		var err error
		if reason, err = ca.ParseReason(req.Msg.Reason); err != nil {
			return nil, apiError(err)
		}
	}
	c, err := h.find(ctx, req.Msg.Issuer, req.Msg.Serial)
	if err != nil {
		return nil, err
	}
	rec, err := h.s.CA.Revoke(ctx, c.Issuer, c.Serial, reason)
	if err != nil {
		return nil, apiError(err)
	}
	if h.s.OCSP != nil {
		h.s.OCSP.Revoked(context.WithoutCancel(ctx), rec.Issuer, rec.Serial)
	}
	return connect.NewResponse(&pncpkiv1.RevokeCertificateResponse{Certificate: toProto(rec, h.s.Now())}), nil
}

type authorities struct{ s *Server }

func (h *authorities) ListAuthorities(ctx context.Context, req *connect.Request[pncpkiv1.ListAuthoritiesRequest]) (*connect.Response[pncpkiv1.ListAuthoritiesResponse], error) {
	admin := claimsFrom(ctx).Role == auth.RoleAdmin
	if req.Msg.Usage && !admin {
		return nil, forbidden("usage counts every tenant's certificates: administrators only")
	}
	cas, err := h.s.Store.CAs(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	now := h.s.Now()
	resp := &pncpkiv1.ListAuthoritiesResponse{}
	for _, c := range cas {
		p := &pncpkiv1.Authority{Name: c.Name, Profile: c.Profile, Parent: c.Parent, Status: "active"}
		au, _ := h.s.CA.Authority(c.Name)
		if au != nil {
			p.Subject, p.Chain = ca.FormatName(au.Cert.RawSubject), au.ChainPEM
			p.NotBefore, p.NotAfter = timestamppb.New(au.Cert.NotBefore), timestamppb.New(au.Cert.NotAfter)
			if au.Parent != "" { // found by signature: an imported sub-CA's
				p.Parent = au.Parent
			}
			if !au.IssueFrom.IsZero() {
				p.IssueFrom = timestamppb.New(au.IssueFrom)
			}
			if h.s.OCSP != nil {
				if r := h.s.OCSP.ResponderCert(c.Name); r != nil {
					p.OcspResponderSubject, p.OcspResponderNotAfter = ca.FormatName(r.RawSubject), timestamppb.New(r.NotAfter)
				}
			}
			if this, next, ok := h.s.CA.CRLTimes(c.Name); ok {
				p.CrlThisUpdate, p.CrlNextUpdate = timestamppb.New(this), timestamppb.New(next)
			}
		}
		switch {
		case c.Pending():
			p.Status = "pending"
		case c.External():
			p.Status = "external"
		case au == nil:
		case au.Revoked:
			p.Status = "revoked"
		case au.Offline:
			p.Status = "offline"
		case au.IssueFrom.After(now):
			p.Status = "scheduled"
		}
		if admin {
			p.Key = store.RedactKeyURI(c.KeyURI)
		}
		if req.Msg.Usage && !c.Pending() {
			if err := h.usage(ctx, p, now); err != nil {
				return nil, err
			}
		}
		resp.Authorities = append(resp.Authorities, p)
	}
	return connect.NewResponse(resp), nil
}

// usage counts the live certificates p issued.
func (h *authorities) usage(ctx context.Context, p *pncpkiv1.Authority, now time.Time) error {
	const page = store.MaxPage // the store's bound: a shorter page ends the listing
	var last time.Time
	for after := ""; ; {
		certs, err := h.s.Store.Live(ctx, p.Name, now, after, page)
		if err != nil {
			return apiError(fmt.Errorf("certificates of %s: %w", p.Name, err))
		}
		for _, s := range certs {
			if s.RevokedAt.IsZero() {
				p.LiveCertificates++
				if s.NotAfter.After(last) {
					last = s.NotAfter
				}
			}
		}
		if len(certs) < page {
			break
		}
		after = certs[len(certs)-1].Serial
	}
	if !last.IsZero() {
		p.LastExpiry = timestamppb.New(last)
	}
	return nil
}

func toProto(c *store.Certificate, now time.Time) *pncpkiv1.Certificate {
	p := &pncpkiv1.Certificate{
		Issuer: c.Issuer, Serial: strings.ToUpper(c.Serial), Profile: c.Profile, Tenant: c.Tenant, CommonName: c.CommonName,
		NotBefore: timestamppb.New(c.NotBefore), NotAfter: timestamppb.New(c.NotAfter), Status: c.Status(now),
		Pem: ca.CertificatePEM(c.DER),
	}
	if c.Revoked() {
		p.RevokedAt, p.RevocationReason = timestamppb.New(c.RevokedAt), ca.ReasonName(c.Reason)
	}
	return p
}

func (h *certificates) GetChain(ctx context.Context, req *connect.Request[pncpkiv1.GetChainRequest]) (*connect.Response[pncpkiv1.GetChainResponse], error) {
	c, err := h.find(ctx, req.Msg.Issuer, req.Msg.Serial)
	if err != nil {
		return nil, err
	}
	a, err := h.s.CA.Authority(c.Issuer)
	if err != nil {
		return nil, apiError(err)
	}
	resp := &pncpkiv1.GetChainResponse{Chain: append([]string{ca.CertificatePEM(c.DER)}, a.ChainPEM...)}
	return connect.NewResponse(resp), nil
}

func (h *certificates) GetCRL(ctx context.Context, req *connect.Request[pncpkiv1.GetCRLRequest]) (*connect.Response[pncpkiv1.GetCRLResponse], error) {
	der, err := h.s.CA.CurrentCRL(ctx, req.Msg.Issuer)
	if err != nil {
		return nil, apiError(err)
	}
	return connect.NewResponse(&pncpkiv1.GetCRLResponse{Der: der}), nil
}

func (h *authorities) ListTrustAnchors(ctx context.Context, req *connect.Request[pncpkiv1.ListTrustAnchorsRequest]) (*connect.Response[pncpkiv1.ListTrustAnchorsResponse], error) {
	var anchors ocppsec.Anchors
	if h.s.OCPP != nil {
		anchors = h.s.OCPP.TrustAnchors()
	} else {
		var err error
		if anchors, err = ocppsec.AnchorsFrom(ctx, h.s.CA, h.s.Store, ""); err != nil {
			return nil, apiError(err)
		}
	}
	resp := &pncpkiv1.ListTrustAnchorsResponse{}
	for _, u := range ocppsec.Uses {
		if req.Msg.Use != "" && req.Msg.Use != string(u) {
			continue
		}
		for _, c := range anchors[u] {
			resp.Anchors = append(resp.Anchors, &pncpkiv1.TrustAnchor{Use: string(u), Subject: ca.FormatName(c.RawSubject), Sha256: ca.Fingerprint(c),
				NotAfter: timestamppb.New(c.NotAfter), Pem: ca.CertificatePEM(c.Raw)})
		}
	}
	return connect.NewResponse(resp), nil
}
