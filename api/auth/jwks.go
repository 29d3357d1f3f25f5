package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxJWKS bounds a fetched key set.
const MaxJWKS = 1 << 20

// JWKS verifies the tokens of an external identity provider with the keys
// it publishes at URL (RFC 7517). Only signature keys of two kinds are
// taken, each pinned to its algorithm: EC P-256 (ES256) and OKP Ed25519
// (EdDSA); a token must name its key by kid. The set is fetched on first
// use and again when a token names an unknown kid, at most once per
// MinRefresh, so a key rotation is picked up without hammering the
// provider. The provider's tokens carry pncpki's tenant and role claims.
type JWKS struct {
	URL      string
	Issuer   string
	Audience string
	HTTP     *http.Client // default: 5 s timeout
	// MinRefresh is the least time between fetches (default 1 minute).
	MinRefresh time.Duration

	mu      sync.Mutex
	keys    map[string]jwk
	fetched time.Time
}

type jwk struct {
	pub    crypto.PublicKey
	method jwt.SigningMethod
}

// Verify checks a token of the provider.
func (j *JWKS) Verify(ctx context.Context, token string, now time.Time) (*Claims, error) {
	if len(token) > MaxToken {
		return nil, &Error{"token longer than 8 KiB"}
	}
	t, _, err := jwt.NewParser().ParseUnverified(token, &Claims{})
	if err != nil {
		return nil, &Error{err.Error()}
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, &Error{"token of the identity provider without kid"}
	}
	k, err := j.key(ctx, kid, now)
	if err != nil {
		return nil, err
	}
	return verify(token, now, k.method, j.Issuer, j.Audience, func(*jwt.Token) (any, error) { return k.pub, nil })
}

func (j *JWKS) key(ctx context.Context, kid string, now time.Time) (jwk, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if k, ok := j.keys[kid]; ok {
		return k, nil
	}
	every := j.MinRefresh
	if every <= 0 {
		every = time.Minute
	}
	if !j.fetched.IsZero() && now.Sub(j.fetched) < every {
		return jwk{}, &Error{fmt.Sprintf("unknown key %q of the identity provider", kid)}
	}
	keys, err := j.fetch(ctx)
	j.fetched = now
	if err != nil {
		return jwk{}, &Error{"identity provider keys: " + err.Error()}
	}
	j.keys = keys
	if k, ok := keys[kid]; ok {
		return k, nil
	}
	return jwk{}, &Error{fmt.Sprintf("unknown key %q of the identity provider", kid)}
}

func (j *JWKS) fetch(ctx context.Context) (map[string]jwk, error) {
	client := j.HTTP
	if client == nil {
		client = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP %d", j.URL, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxJWKS+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxJWKS {
		return nil, fmt.Errorf("%s: key set larger than %d bytes", j.URL, MaxJWKS)
	}
	return ParseJWKS(data)
}

// ParseJWKS reads a JWK set, keeping the EC P-256 and Ed25519 signature
// keys that have a kid; others are skipped.
func ParseJWKS(data []byte) (map[string]jwk, error) {
	var set struct {
		Keys []struct {
			Kty, Crv, X, Y, Kid, Alg, Use string
		} `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("key set: %w", err)
	}
	out := map[string]jwk{}
	for _, k := range set.Keys {
		if k.Kid == "" || k.Use != "" && k.Use != "sig" {
			continue
		}
		x, errX := base64.RawURLEncoding.DecodeString(k.X)
		switch {
		case k.Kty == "EC" && k.Crv == "P-256" && (k.Alg == "" || k.Alg == "ES256"):
			y, errY := base64.RawURLEncoding.DecodeString(k.Y)
			if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
				continue
			}
			pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...)) // checks the point
			if err != nil {
				continue
			}
			out[k.Kid] = jwk{pub, jwt.SigningMethodES256}
		case k.Kty == "OKP" && k.Crv == "Ed25519" && (k.Alg == "" || k.Alg == "EdDSA"):
			if errX != nil || len(x) != ed25519.PublicKeySize {
				continue
			}
			out[k.Kid] = jwk{ed25519.PublicKey(x), jwt.SigningMethodEdDSA}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("key set has no usable signature key")
	}
	return out, nil
}
