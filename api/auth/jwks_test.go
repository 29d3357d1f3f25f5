package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestEd25519Key(t *testing.T) {
	dir := t.TempDir()
	k, err := LoadOrCreateKey(dir, KeyEd25519)
	if err != nil || k.Algorithm() != "EdDSA" {
		t.Fatalf("%v %v", err, k)
	}
	now := time.Now()
	tok, err := k.Mint("alice", "cpo1", RoleOperator, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := k.Verify(tok, now); err != nil || c.Tenant != "cpo1" {
		t.Fatalf("Verify: %+v %v", c, err)
	}
	// The key keeps its type when loaded again; its alg is pinned.
	again, err := LoadOrCreateKey(dir, KeyECDSA)
	if err != nil || again.Algorithm() != "EdDSA" {
		t.Fatalf("reload: %v %v", err, again)
	}
	es, _ := LoadOrCreateKey(t.TempDir())
	esTok, _ := es.Mint("bob", "cpo1", RoleOperator, time.Hour, now)
	if _, err := k.Verify(esTok, now); err == nil {
		t.Error("an ES256 token passed an EdDSA key")
	}
	if _, err := LoadOrCreateKey(t.TempDir(), "rsa"); err == nil {
		t.Error("an RSA token key was created")
	}
}

// idp is an identity provider publishing a JWK set.
type idp struct {
	mu      sync.Mutex
	keys    map[string]crypto.Signer
	fetches int
}

func (p *idp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.fetches++
	var keys []map[string]string
	for kid, k := range p.keys {
		switch pub := k.Public().(type) {
		case *ecdsa.PublicKey:
			b, _ := pub.Bytes()
			keys = append(keys, map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
				"x": base64.RawURLEncoding.EncodeToString(b[1:33]), "y": base64.RawURLEncoding.EncodeToString(b[33:])})
		case ed25519.PublicKey:
			keys = append(keys, map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": base64.RawURLEncoding.EncodeToString(pub)})
		}
	}
	keys = append(keys, map[string]string{"kty": "RSA", "kid": "rsa1", "n": "AQAB", "e": "AQAB"}) // skipped
	json.NewEncoder(w).Encode(map[string]any{"keys": keys})
}

func (p *idp) token(t *testing.T, kid string, method jwt.SigningMethod, iss, tenant, role string, now time.Time) string {
	t.Helper()
	p.mu.Lock()
	k := p.keys[kid]
	p.mu.Unlock()
	c := Claims{Tenant: tenant, Role: role, RegisteredClaims: jwt.RegisteredClaims{Issuer: iss, Subject: "svc", Audience: jwt.ClaimStrings{"pncpki"},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour))}}
	tok := jwt.NewWithClaims(method, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestJWKS(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	p := &idp{keys: map[string]crypto.Signer{"ec1": ec, "ed1": ed}}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	j := &JWKS{URL: srv.URL, Issuer: "https://idp.example", Audience: "pncpki", MinRefresh: time.Minute}
	ctx := context.Background()
	now := time.Now()
	for kid, m := range map[string]jwt.SigningMethod{"ec1": jwt.SigningMethodES256, "ed1": jwt.SigningMethodEdDSA} {
		c, err := j.Verify(ctx, p.token(t, kid, m, j.Issuer, "cpo1", RoleOperator, now), now)
		if err != nil || c.Tenant != "cpo1" {
			t.Errorf("%s: %+v %v", kid, c, err)
		}
	}
	if p.fetches != 1 {
		t.Errorf("%d fetches for two tokens, want 1", p.fetches)
	}
	for name, tok := range map[string]string{
		"wrong issuer":  p.token(t, "ec1", jwt.SigningMethodES256, "https://evil.example", "cpo1", RoleOperator, now),
		"unknown role":  p.token(t, "ec1", jwt.SigningMethodES256, j.Issuer, "cpo1", "root", now),
		"no kid":        "e30.e30.",
		"HMAC with kid": hmacToken(t, "ec1", j.Issuer),
	} {
		if _, err := j.Verify(ctx, tok, now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A rotated key is fetched once the refresh interval has passed, and
	// not before.
	_, ed2, _ := ed25519.GenerateKey(rand.Reader)
	p.mu.Lock()
	p.keys["ed2"] = ed2
	p.mu.Unlock()
	tok := p.token(t, "ed2", jwt.SigningMethodEdDSA, j.Issuer, "cpo1", RoleOperator, now)
	if _, err := j.Verify(ctx, tok, now.Add(time.Second)); err == nil {
		t.Error("a new kid was fetched before MinRefresh")
	}
	if _, err := j.Verify(ctx, tok, now.Add(2*time.Minute)); err != nil {
		t.Errorf("rotated key: %v", err)
	}
	if p.fetches != 2 {
		t.Errorf("%d fetches, want 2", p.fetches)
	}
}

// hmacToken signs with HS256, using the kid's name as the secret: refused
// because the key's alg is pinned.
func hmacToken(t *testing.T, kid, iss string) string {
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.RegisteredClaims{Issuer: iss, Audience: jwt.ClaimStrings{"pncpki"}, ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	tok.Header["kid"] = kid
	s, err := tok.SignedString([]byte(kid))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseJWKSRefusesJunk(t *testing.T) {
	for _, in := range []string{`{`, `{"keys":[]}`, `{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"AA","y":"AA"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"AA","use":"enc"}]}`} {
		if _, err := ParseJWKS([]byte(in)); err == nil {
			t.Errorf("%s: accepted", in)
		}
	}
}

// FuzzParseJWKS: an identity provider's key set is outside input; the
// parser never panics and keeps only well-formed P-256 and Ed25519 keys.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"b","x":"AA","y":"AA","use":"sig","alg":"ES256"}]}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseJWKS(data)
		if err != nil {
			return
		}
		for kid, k := range keys {
			if kid == "" || k.pub == nil || (k.method.Alg() != "ES256" && k.method.Alg() != "EdDSA") {
				t.Fatalf("kept %q: %+v", kid, k)
			}
		}
	})
}
