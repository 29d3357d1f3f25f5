package ocppsec

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/pncpki/pncpki/internal/periodic"
	"github.com/pncpki/pncpki/store"
)

// Subprotocols the proxy speaks, and their payload dialects.
var subprotocols = map[string]Dialect{"ocpp1.6": OCPP16, "ocpp2.0.1": OCPP201, "ocpp2.1": OCPP21}

// maxWebSocketMessage is where the proxy stops reading a message and
// closes the connection; messages between MaxFrame and this are answered
// with a CALLERROR.
const maxWebSocketMessage = 1 << 20

// Proxy is the OCPP-J proxy: stations connect to it at /{stationId}; it
// opens the same connection to the upstream CSMS and forwards every frame
// unchanged, except the certificate messages, which the Bridge answers,
// Authorize, whose answer from the CSMS gets the certificate verdict, and
// the calls the Bridge originates (CertificateSigned), whose results the
// CSMS never sees.
type Proxy struct {
	Bridge *Bridge
	// Upstream is the CSMS's base URL (ws:// or wss://); a station's
	// connection goes to Upstream/{stationId}.
	Upstream    string
	UpstreamTLS *tls.Config
	// UpstreamUser and UpstreamPassword, when set, are the Basic auth
	// credentials for the upstream; otherwise the station's own
	// Authorization header is passed on.
	UpstreamUser, UpstreamPassword string
	// SecurityProfile is the station side's OCPP security profile: 1 (Basic
	// auth) and 2 (TLS and Basic auth: the listener's TLS) pass the
	// password on to the CSMS, which knows it, and check that the user is
	// the station; 3 requires a client certificate issued under
	// StationCAs, not expired, not revoked (OCSP), whose CN is the
	// station's serial number (or identity, by policy) and whose O is its
	// tenant's organization.
	SecurityProfile int
	StationCAs      *x509.CertPool
	// Manage makes the proxy look after registered stations: after a
	// BootNotification the CSMS accepts it starts a root sync and sends any
	// renewal triggers, and it checks renewals again every RenewEvery
	// (default a day) while the station stays connected.
	Manage     bool
	RenewEvery time.Duration
	Log        *slog.Logger
}

func (p *Proxy) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

// ServeHTTP accepts a station's WebSocket connection.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id, err := url.PathUnescape(r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
	if err != nil || id == "" || len(id) > MaxStationID {
		http.Error(w, "the URL must end in the station identity", http.StatusNotFound)
		return
	}
	var offered []string
	for _, sp := range websocket.Subprotocols(r) {
		if _, ok := subprotocols[sp]; ok {
			offered = append(offered, sp)
		}
	}
	if !websocket.IsWebSocketUpgrade(r) || len(offered) == 0 {
		p.Bridge.Metrics.refusedConn("request")
		http.Error(w, "an OCPP WebSocket (subprotocol ocpp1.6, ocpp2.0.1 or ocpp2.1) is required", http.StatusBadRequest)
		return
	}
	if status, err := p.authenticate(r, id); err != nil {
		p.Bridge.Metrics.refusedConn("auth")
		p.log().Warn("OCPP station refused", "station", id, "remote", r.RemoteAddr, "err", err)
		http.Error(w, err.Error(), status)
		return
	}
	up, status, err := p.dial(r, id, offered)
	if err != nil {
		p.Bridge.Metrics.refusedConn("upstream")
		p.log().Warn("OCPP upstream refused", "station", id, "err", err)
		http.Error(w, "upstream CSMS: "+err.Error(), status)
		return
	}
	upgrader := websocket.Upgrader{
		Subprotocols:     []string{up.Subprotocol()},
		CheckOrigin:      func(*http.Request) bool { return true }, // stations are not browsers
		HandshakeTimeout: 10 * time.Second,
	}
	st, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		up.Close()
		return
	}
	s := &session{p: p, id: id, d: subprotocols[up.Subprotocol()], station: st, upstream: up,
		inflight: map[string]string{}, authz: map[string]*authzPending{}}
	s.run(r.Context())
}

// authenticate applies the station side's security profile.
func (p *Proxy) authenticate(r *http.Request, id string) (int, error) {
	if p.SecurityProfile == 3 {
		if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
			return http.StatusUnauthorized, errors.New("security profile 3: a client certificate is required")
		}
		if err := p.checkStationCertificate(r.Context(), id, r.TLS.PeerCertificates); err != nil {
			return http.StatusForbidden, err
		}
		return 0, nil
	}
	user, _, ok := r.BasicAuth()
	if p.SecurityProfile > 0 && !ok {
		return http.StatusUnauthorized, errors.New("basic authentication is required (security profiles 1 and 2)")
	}
	if ok && user != id {
		return http.StatusForbidden, fmt.Errorf("basic auth user %q is not the station %q", user, id)
	}
	return 0, nil
}

// checkStationCertificate checks a profile 3 client certificate: chain to
// StationCAs, OCSP status, and that it names this station and its CPO
// (OCPP 2.0.1 A00.FR.405, B01.FR.12).
func (p *Proxy) checkStationCertificate(ctx context.Context, id string, certs []*x509.Certificate) error {
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: p.StationCAs, Intermediates: inter, CurrentTime: p.Bridge.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return fmt.Errorf("client certificate: %w", err)
	}
	path := chains[0]
	for i := 0; i+1 < len(path); i++ {
		r, err := p.Bridge.OCSP.Check(ctx, path[i], path[i+1], "")
		if err != nil {
			if p.Bridge.Policy.StationTLSFailOpen {
				p.log().Warn("station certificate status unknown, accepted by policy", "station", id, "err", err)
				continue
			}
			return fmt.Errorf("client certificate status unknown (OCSP): %w", err)
		}
		if r.Status != xocsp.Good {
			return fmt.Errorf("client certificate %s is revoked", path[i].SerialNumber.Text(16))
		}
	}
	st, err := p.Bridge.Store.Station(ctx, id)
	if err != nil {
		return fmt.Errorf("station %q: %w", id, err)
	}
	cn := leaf.Subject.CommonName
	if cn != st.SerialNumber && !(p.Bridge.Policy.StationCNIdentity && cn == st.ID) {
		return fmt.Errorf("client certificate CN %q is not station %q's", cn, id)
	}
	t, err := p.Bridge.Store.Tenant(ctx, st.Tenant)
	if err != nil {
		return err
	}
	if t.Organization != "" && (len(leaf.Subject.Organization) == 0 || leaf.Subject.Organization[0] != t.Organization) {
		return fmt.Errorf("client certificate O %v is not %q", leaf.Subject.Organization, t.Organization)
	}
	return nil
}

// dial opens the station's connection to the upstream CSMS, offering what
// the station offered; the CSMS's choice is the session's subprotocol.
func (p *Proxy) dial(r *http.Request, id string, offered []string) (*websocket.Conn, int, error) {
	h := http.Header{}
	if p.UpstreamUser != "" {
		req := &http.Request{Header: http.Header{}}
		req.SetBasicAuth(p.UpstreamUser, p.UpstreamPassword)
		h.Set("Authorization", req.Header.Get("Authorization"))
	} else if a := r.Header.Get("Authorization"); a != "" {
		h.Set("Authorization", a)
	}
	d := websocket.Dialer{Subprotocols: offered, TLSClientConfig: p.UpstreamTLS, HandshakeTimeout: 10 * time.Second}
	conn, resp, err := d.DialContext(r.Context(), strings.TrimSuffix(p.Upstream, "/")+"/"+url.PathEscape(id), h)
	if err != nil {
		if resp != nil && resp.StatusCode >= 400 {
			return nil, resp.StatusCode, fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		return nil, http.StatusBadGateway, err
	}
	if _, ok := subprotocols[conn.Subprotocol()]; !ok {
		conn.Close()
		return nil, http.StatusBadGateway, fmt.Errorf("chose subprotocol %q", conn.Subprotocol())
	}
	conn.SetReadLimit(maxWebSocketMessage)
	return conn, 0, nil
}

// remember stores a call pncpki sent, so that its answer can be consumed
// and, if none comes, the call sent again when the station reconnects (to
// any replica sharing the store).
func (p *Proxy) remember(ctx context.Context, station string, d Dialect, id string, c Call) {
	payload, err := json.Marshal(c.Payload)
	if err == nil {
		err = p.Bridge.Store.PutStationCall(ctx, &store.StationCall{Station: station, ID: id, Action: c.Action, Dialect: string(d),
			Payload: payload, Created: p.Bridge.now().UTC()})
	}
	if err != nil {
		p.log().Error("record a call to a station", "station", station, "action", c.Action, "err", err)
	}
}

// answered returns the call a station answered; false when it is not
// pncpki's (or was answered already). Bridge.HandleResult marks it answered.
func (p *Proxy) answered(ctx context.Context, station, id string) (Call, bool) {
	if !strings.HasPrefix(id, messageIDPrefix) {
		return Call{}, false // the CSMS's: no need to ask the store
	}
	sc, err := p.Bridge.Store.StationCall(ctx, station, id)
	if err != nil {
		return Call{}, false
	}
	c, err := ParseCall(Dialect(sc.Dialect), sc.Action, sc.Payload)
	if err != nil {
		p.log().Error("stored call unreadable", "station", station, "id", id, "err", err)
		return Call{}, false
	}
	return c, true
}

// unanswered returns pncpki's calls to a station that have no answer yet.
func (p *Proxy) unanswered(ctx context.Context, station string) map[string]Call {
	out := map[string]Call{}
	calls, err := p.Bridge.Store.StationCalls(ctx, station)
	if err != nil {
		p.log().Error("calls to a station", "station", station, "err", err)
		return out
	}
	for _, sc := range calls {
		if c, err := ParseCall(Dialect(sc.Dialect), sc.Action, sc.Payload); err == nil {
			out[sc.ID] = c
		}
	}
	return out
}

// session is one station's pair of connections.
type session struct {
	p                 *Proxy
	id                string
	d                 Dialect
	station, upstream *websocket.Conn
	stationMu         sync.Mutex // one writer per connection
	upstreamMu        sync.Mutex

	mu       sync.Mutex
	inflight map[string]string        // the station's CALLs awaiting the CSMS: ID -> action
	authz    map[string]*authzPending // Authorize CALLs: ID -> verdict to merge
	touched  time.Time                // when LastSeen was last recorded
}

// touchEvery bounds how often a session records that its station spoke:
// a heartbeat a minute from thousands of stations is no write each.
const touchEvery = 5 * time.Minute

// touch records, at most every touchEvery, that the station spoke.
func (s *session) touch() {
	now := time.Now()
	s.mu.Lock()
	if now.Sub(s.touched) < touchEvery {
		s.mu.Unlock()
		return
	}
	s.touched = now
	s.mu.Unlock()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.p.Bridge.Store.TouchStation(ctx, s.id, now); err != nil {
			s.p.log().Warn("station last seen not recorded", "station", s.id, "err", err)
		}
	}()
}

type authzPending struct {
	d       Dialect // payload dialect: has.to.be inside 1.6 DataTransfer
	wrapped bool    // inside a 1.6 DataTransfer
	verdict chan string
}

func (s *session) run(ctx context.Context) {
	s.station.SetReadLimit(maxWebSocketMessage)
	log := s.p.log().With("station", s.id, "ocpp", s.d)
	log.Info("OCPP station connected")
	s.p.Bridge.Metrics.connected(1)
	defer s.p.Bridge.Metrics.connected(-1)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{}, 2)
	go func() { s.pump(ctx, s.station, s.fromStation); done <- struct{}{} }()
	go func() { s.pump(ctx, s.upstream, s.fromUpstream); done <- struct{}{} }()
	for id, c := range s.p.unanswered(ctx, s.id) {
		s.sendCall(id, c) // survived a reconnect
	}
	if s.p.Manage {
		go s.renewals(ctx)
	}
	<-done
	// Either side gone: close the other cleanly.
	closeMsg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "peer disconnected")
	deadline := time.Now().Add(time.Second)
	s.stationMu.Lock()
	s.station.WriteControl(websocket.CloseMessage, closeMsg, deadline)
	s.stationMu.Unlock()
	s.upstreamMu.Lock()
	s.upstream.WriteControl(websocket.CloseMessage, closeMsg, deadline)
	s.upstreamMu.Unlock()
	s.station.Close()
	s.upstream.Close()
	<-done
	log.Info("OCPP station disconnected")
}

func (s *session) pump(ctx context.Context, c *websocket.Conn, handle func(context.Context, []byte)) {
	for {
		mt, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		if mt == websocket.TextMessage {
			handle(ctx, data)
		}
	}
}

func (s *session) write(c *websocket.Conn, mu *sync.Mutex, data []byte) {
	mu.Lock()
	defer mu.Unlock()
	c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := c.WriteMessage(websocket.TextMessage, data); err != nil {
		c.Close() // the reader ends the session
	}
}

func (s *session) toStation(data []byte)  { s.write(s.station, &s.stationMu, data) }
func (s *session) toUpstream(data []byte) { s.write(s.upstream, &s.upstreamMu, data) }

func (s *session) reply(f *Frame) {
	data, err := f.Encode()
	if err != nil {
		s.p.log().Error("OCPP frame not encodable", "station", s.id, "err", err)
		return
	}
	s.toStation(data)
}

// callError answers a station's CALL; 1.6 spells FormatViolation its own
// way.
func (s *session) callError(id, code, desc string) {
	if s.d == OCPP16 && code == CodeFormatViolation {
		code = FormatViolation(OCPP16)
	}
	if id == "" {
		id = "-1" // OCPP-J: the message ID could not be read
	}
	s.p.log().Warn("OCPP CALLERROR to station", "station", s.id, "id", id, "code", code, "description", desc)
	s.reply(CallError(id, code, desc))
}

func (s *session) sendCall(id string, c Call) {
	payload, err := json.Marshal(c.Payload)
	if err != nil {
		return
	}
	s.reply(&Frame{Type: TypeCall, ID: id, Action: c.Action, Payload: payload})
}

// fromStation routes one frame from the station.
func (s *session) fromStation(ctx context.Context, data []byte) {
	s.touch()
	f, err := ParseFrame(s.d, data)
	if err != nil {
		var fe *FrameError
		errors.As(err, &fe)
		if len(data) > MaxFrame {
			fe.ID = peekCallID(data)
		}
		s.callError(fe.ID, fe.Code, fe.Reason)
		return
	}
	switch f.Type {
	case TypeCall:
		s.call(ctx, f, data)
	default:
		if sent, ok := s.p.answered(ctx, s.id, f.ID); ok {
			s.result(ctx, sent, f.ID, f)
			return
		}
		s.toUpstream(data)
	}
}

func (s *session) call(ctx context.Context, f *Frame, raw []byte) {
	s.mu.Lock()
	_, dup := s.inflight[f.ID]
	s.mu.Unlock()
	if dup {
		code := "RpcFrameworkError"
		if s.d == OCPP16 {
			code = "ProtocolError"
		}
		s.callError(f.ID, code, "message ID "+f.ID+" is already in use by an unanswered CALL")
		return
	}
	if p, ok := s.authorizeOf(f); ok {
		// Authorize goes to the CSMS, which decides idTokenInfo; the
		// certificate check runs meanwhile and joins its answer.
		s.mu.Lock()
		s.inflight[f.ID] = f.Action
		s.authz[f.ID] = p
		s.mu.Unlock()
		go func() {
			res, err := s.p.Bridge.Handle(ctx, s.id, s.d, f.Action, f.Payload)
			status := ""
			if err == nil {
				status = res.CertificateStatus
			}
			p.verdict <- status
		}()
		s.toUpstream(raw)
		return
	}
	res, err := s.p.Bridge.Handle(ctx, s.id, s.d, f.Action, f.Payload)
	var ve *ValidationError
	switch {
	case errors.Is(err, ErrNotHandled):
		s.mu.Lock()
		s.inflight[f.ID] = f.Action
		s.mu.Unlock()
		s.p.Bridge.Metrics.forwarded("upstream")
		s.toUpstream(raw)
		return
	case errors.As(err, &ve):
		s.p.Bridge.Metrics.message(f.Action, "error")
		s.callError(f.ID, ve.Code, ve.Error())
		return
	case err != nil:
		s.p.Bridge.Metrics.message(f.Action, "error")
		s.p.log().Error("OCPP bridge failed", "station", s.id, "action", f.Action, "err", err)
		s.callError(f.ID, "InternalError", "the request could not be handled")
		return
	}
	payload, err := json.Marshal(res.Response)
	if err != nil {
		s.callError(f.ID, "InternalError", "the response could not be encoded")
		return
	}
	s.p.Bridge.Metrics.message(f.Action, "answered")
	s.reply(&Frame{Type: TypeCallResult, ID: f.ID, Payload: payload})
	s.originate(ctx, res.Calls)
}

// authorizeOf says whether f is an Authorize (also inside a 1.6 Plug and
// Charge DataTransfer) whose answer gets the certificate verdict.
func (s *session) authorizeOf(f *Frame) (*authzPending, bool) {
	if f.Action == "Authorize" && s.d != OCPP16 {
		return &authzPending{d: s.d, verdict: make(chan string, 1)}, true
	}
	if f.Action == "DataTransfer" && s.d == OCPP16 {
		var dt DataTransfer16
		if json.Unmarshal(f.Payload, &dt) == nil && dt.MessageID == "Authorize" && (dt.VendorID == VendorOCA || dt.VendorID == VendorHas2be) {
			d := OCPP201
			if dt.VendorID == VendorHas2be {
				d = Has2be
			}
			return &authzPending{d: d, wrapped: true, verdict: make(chan string, 1)}, true
		}
	}
	return nil, false
}

// result consumes a station's answer to a call pncpki sent.
func (s *session) result(ctx context.Context, sent Call, id string, f *Frame) {
	if f.Type == TypeCallError {
		if err := s.p.Bridge.CallFailed(ctx, s.id, sent, id, f.ErrorCode, f.Description); err != nil {
			s.p.log().Error("record a station's CALLERROR", "station", s.id, "err", err)
		}
		return
	}
	follow, err := s.p.Bridge.HandleResult(ctx, s.id, s.d, sent, id, f.Payload)
	if err != nil {
		// An answer that cannot be read is not worth sending the call again.
		s.p.log().Error("station's answer to a pncpki call", "station", s.id, "action", sent.Action, "err", err)
		if err := s.p.Bridge.Store.FinishStationCall(ctx, s.id, id, store.StationCallResult{}); err != nil {
			s.p.log().Error("finish a station call", "station", s.id, "err", err)
		}
	}
	s.originate(ctx, follow)
}

// originate sends calls of pncpki's own to the station.
func (s *session) originate(ctx context.Context, calls []Call) {
	for _, c := range calls {
		id := newMessageID()
		s.p.remember(ctx, s.id, s.d, id, c)
		s.sendCall(id, c)
	}
}

// manage sends a registered station its root sync and renewal triggers
// (renewals only with rootSync false).
func (s *session) manage(ctx context.Context, rootSync bool) {
	st, err := s.p.Bridge.Store.Station(ctx, s.id)
	if err != nil {
		return // not registered: nothing to look after
	}
	var calls []Call
	if rootSync {
		calls, err = s.p.Bridge.StationCalls(ctx, st, s.d)
	} else {
		calls, err = s.p.Bridge.RenewalCalls(ctx, st, s.d)
	}
	if err != nil {
		s.p.log().Error("station management", "station", s.id, "err", err)
		return
	}
	s.originate(ctx, calls)
}

// renewals checks the station's certificates while it stays connected.
func (s *session) renewals(ctx context.Context) {
	every := s.p.RenewEvery
	if every <= 0 {
		every = 24 * time.Hour
	}
	periodic.Every(ctx, every, func() { s.manage(ctx, false) })
}

// fromUpstream forwards one frame from the CSMS, joining Authorize answers
// with the certificate verdict.
func (s *session) fromUpstream(ctx context.Context, data []byte) {
	f, err := ParseFrame(s.d, data)
	if err != nil || f.Type == TypeCall {
		s.p.Bridge.Metrics.forwarded("station")
		s.toStation(data) // the CSMS's business, passed on as sent
		return
	}
	s.mu.Lock()
	action := s.inflight[f.ID]
	delete(s.inflight, f.ID)
	p := s.authz[f.ID]
	delete(s.authz, f.ID)
	s.mu.Unlock()
	if p == nil || f.Type != TypeCallResult {
		s.p.Bridge.Metrics.forwarded("station")
		s.toStation(data)
		if action == "BootNotification" && f.Type == TypeCallResult && s.p.Manage && bootAccepted(f.Payload) {
			go s.manage(ctx, true)
		}
		return
	}
	var status string
	select {
	case status = <-p.verdict:
	case <-ctx.Done():
		return
	}
	merged, err := s.mergeAuthorize(p, f.Payload, status)
	if err != nil {
		s.p.log().Warn("CSMS Authorize answer not merged", "station", s.id, "err", err)
		s.toStation(data)
		return
	}
	s.reply(&Frame{Type: TypeCallResult, ID: f.ID, Payload: merged})
}

func (s *session) mergeAuthorize(p *authzPending, payload []byte, status string) ([]byte, error) {
	invalidate := s.p.Bridge.Policy.InvalidateRevoked
	if !p.wrapped {
		return MergeAuthorize(p.d, payload, status, invalidate)
	}
	var dt DataTransfer16Response
	if err := json.Unmarshal(payload, &dt); err != nil {
		return nil, err
	}
	if dt.Status != "Accepted" || dt.Data == "" {
		return payload, nil
	}
	inner, err := MergeAuthorize(p.d, []byte(dt.Data), status, invalidate)
	if err != nil {
		return nil, err
	}
	dt.Data = string(inner)
	return json.Marshal(dt)
}

func bootAccepted(payload []byte) bool {
	var r struct {
		Status string `json:"status"`
	}
	return json.Unmarshal(payload, &r) == nil && r.Status == "Accepted"
}

const messageIDPrefix = "pncpki-"

// newMessageID returns an ID for a call pncpki originates: a prefix and
// 64 random bits, so that it never meets one of the CSMS's.
func newMessageID() string {
	var b [8]byte
	rand.Read(b[:])
	return messageIDPrefix + hex.EncodeToString(b[:])
}

// peekCallID reads the message ID of an oversized frame without parsing
// the rest, so that its CALLERROR can name it.
func peekCallID(data []byte) string {
	dec := json.NewDecoder(strings.NewReader(string(data[:min(len(data), 256)])))
	var id string
	for i := 0; i < 3; i++ {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if i == 2 {
			id, _ = tok.(string)
		}
	}
	if len(id) > MaxMessageID {
		return ""
	}
	return id
}
