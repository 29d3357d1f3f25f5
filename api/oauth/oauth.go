// Package oauth is the OAuth2 client-credentials token endpoint of the
// Open Plug&Charge protocols (OPCP's POST /oauth/token): a registered
// client trades its ID and secret for one of pncpki's API tokens, with its
// tenant, role and party role (CPO, MO, OEM) as claims.
package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pncpki/pncpki/api/auth"
	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
)

// Path is where pncd serves the endpoint (OPCP's).
const Path = "/oauth/token"

// TTL is the lifetime of the tokens: OPCP's 24 hours.
const TTL = 24 * time.Hour

// maxBody bounds a token request.
const maxBody = 8 << 10

// Server issues tokens to registered clients.
type Server struct {
	Store store.Store
	Key   *auth.Key
	Now   func() time.Time
	Log   *slog.Logger

	failures failures
}

// Failed client authentications are throttled per client ID and per
// address: past MaxFailures within FailureWindow, either one answers 429
// until the window passes, so that secrets cannot be guessed at speed.
const (
	MaxFailures   = 10
	FailureWindow = time.Minute
)

// failures counts failed authentications by key ("id:..." and "ip:...")
// in fixed windows.
type failures struct {
	mu     sync.Mutex
	window time.Time
	counts map[string]int
}

// blocked reports whether any of keys has failed too often in the
// current window.
func (f *failures) blocked(now time.Time, keys ...string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roll(now)
	for _, k := range keys {
		if f.counts[k] >= MaxFailures {
			return true
		}
	}
	return false
}

// add counts a failure against each of keys.
func (f *failures) add(now time.Time, keys ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.roll(now)
	for _, k := range keys {
		f.counts[k]++
	}
}

func (f *failures) roll(now time.Time) {
	if w := now.Truncate(FailureWindow); !w.Equal(f.window) || f.counts == nil || len(f.counts) > 100_000 {
		f.window, f.counts = w, map[string]int{}
	}
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// clientID is what a client ID may be.
var clientID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidClientID reports whether id is a well-formed client ID.
func ValidClientID(id string) bool { return clientID.MatchString(id) }

// CreateClient registers a client of tenant ("" and RoleAdmin for an
// administrator) and returns its secret, which is shown only this once.
func CreateClient(ctx context.Context, st store.Store, id, tenant, role string, now time.Time) (string, error) {
	if !clientID.MatchString(id) {
		return "", fmt.Errorf("client ID %q: want 1 to 64 letters, digits, '.', '_' or '-'", id)
	}
	if role != auth.RoleAdmin && role != auth.RoleOperator {
		return "", fmt.Errorf("role %q: want %s or %s", role, auth.RoleAdmin, auth.RoleOperator)
	}
	if role == auth.RoleOperator {
		if _, err := st.Tenant(ctx, tenant); err != nil {
			return "", fmt.Errorf("tenant %s: %w", tenant, err)
		}
	} else {
		tenant = ""
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	secret := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(secret))
	if err := st.CreateOAuthClient(ctx, &store.OAuthClient{ID: id, Tenant: tenant, Role: role, SecretSHA256: sum[:], CreatedAt: now.UTC().Truncate(time.Millisecond)}); err != nil {
		return "", err
	}
	return secret, nil
}

// partyOf is the Open Plug&Charge party role of a tenant kind.
var partyOf = map[policies.TenantKind]string{policies.TenantCPO: "CPO", policies.TenantEMSP: "MO", policies.TenantOEM: "OEM"}

// oauthError is RFC 6749's error answer, as OPCP documents it.
func oauthError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="pncpki"`)
	}
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}

// ServeHTTP answers a token request: JSON (OPCP) or a form (RFC 6749),
// the client's credentials in the body or as HTTP Basic.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST a token request")
		return
	}
	var req struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		Audience     string `json:"audience"`
		GrantType    string `json:"grant_type"`
	}
	body := http.MaxBytesReader(w, r.Body, maxBody)
	switch ct := r.Header.Get("Content-Type"); {
	case strings.HasPrefix(ct, "application/json"):
		if err := json.NewDecoder(body).Decode(&req); err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", "the body is not a JSON token request")
			return
		}
	case strings.HasPrefix(ct, "application/x-www-form-urlencoded"):
		data, err := io.ReadAll(body)
		if err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", "the body is too large")
			return
		}
		form, err := url.ParseQuery(string(data))
		if err != nil {
			oauthError(w, http.StatusBadRequest, "invalid_request", "the body is not a form")
			return
		}
		req.ClientID, req.ClientSecret, req.GrantType = form.Get("client_id"), form.Get("client_secret"), form.Get("grant_type")
	default:
		oauthError(w, http.StatusBadRequest, "invalid_request", "Content-Type must be application/json or application/x-www-form-urlencoded")
		return
	}
	if id, secret, ok := r.BasicAuth(); ok {
		req.ClientID, req.ClientSecret = id, secret
	}
	if req.GrantType != "client_credentials" {
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	keys := []string{"id:" + req.ClientID, "ip:" + host}
	if s.failures.blocked(s.now(), keys...) {
		w.Header().Set("Retry-After", strconv.Itoa(int(FailureWindow/time.Second)))
		oauthError(w, http.StatusTooManyRequests, "slow_down", "too many failed authentications for this client or address; retry after a minute")
		return
	}
	c, err := s.authenticate(r.Context(), req.ClientID, req.ClientSecret)
	if err != nil {
		s.failures.add(s.now(), keys...)
		s.log().Info("OAuth token refused", "client_id", req.ClientID, "reason", err)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "unknown client, wrong secret or revoked client")
		return
	}
	party := ""
	if c.Tenant != "" {
		if t, err := s.Store.Tenant(r.Context(), c.Tenant); err == nil {
			party = partyOf[t.Kind]
		}
	}
	tok, err := s.Key.MintParty("oauth:"+c.ID, c.Tenant, c.Role, party, TTL, s.now())
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	scope := "pncpki"
	if party != "" {
		scope = party
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(TTL.Seconds()), "scope": scope})
}

// authenticate checks a client's secret in constant time.
func (s *Server) authenticate(ctx context.Context, id, secret string) (*store.OAuthClient, error) {
	if !clientID.MatchString(id) || secret == "" || len(secret) > 256 {
		return nil, errors.New("malformed credentials")
	}
	c, err := s.Store.OAuthClient(ctx, id)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(secret))
	if subtle.ConstantTimeCompare(sum[:], c.SecretSHA256) != 1 {
		return nil, errors.New("wrong secret")
	}
	if !c.RevokedAt.IsZero() {
		return nil, errors.New("revoked")
	}
	return c, nil
}
