package ocsp

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pncpki/pncpki/internal/ed448x509"
	xocsp "golang.org/x/crypto/ocsp"
)

// Client checks certificate status: with the local Responder when the
// issuer is one of ours, otherwise with the responder URL (a foreign PKI,
// e.g. another V2G root). It verifies every response (signed by the issuer
// or by a responder certificate the issuer delegated to, for the requested
// certificate, fresh) and caches it until its nextUpdate. This is what the
// OCPP bridge calls for GetCertificateStatus and Authorize.
type Client struct {
	// Local answers for our own CAs without HTTP; may be nil.
	Local *Responder
	// Issuers are the foreign issuing CAs whose responses CheckData can
	// verify (OCPP's OCSPRequestData names an issuer only by hashes).
	Issuers []*x509.Certificate
	// HTTP is the client for foreign responders (default: 5 s timeout).
	HTTP *http.Client
	// URLAllowed vets responder URLs, which may come from a station
	// (default: http and https only).
	URLAllowed func(*url.URL) bool
	// Skew is the clock skew tolerated on thisUpdate/nextUpdate (default 5 min).
	Skew time.Duration
	Now  func() time.Time

	mu    sync.Mutex
	cache map[string]*Result
}

// MaxResponseSize bounds a foreign OCSP response.
const MaxResponseSize = 64 << 10

// maxClientCache bounds the client's cache; past it the cache starts over.
const maxClientCache = 100_000

// Result is a verified OCSP answer.
type Result struct {
	Status     int // Good, Revoked or Unknown
	RevokedAt  time.Time
	Reason     int
	ProducedAt time.Time
	ThisUpdate time.Time
	NextUpdate time.Time
	// Signer is the certificate that signed the response: the issuer, or
	// its delegated responder.
	Signer *x509.Certificate
	// DER is the response as received (OCPP's ocspResult carries it).
	DER []byte
	// Source is "local", "cache" or the responder URL.
	Source string
}

// Errors of the client.
var (
	ErrUnknownIssuer = errors.New("ocsp: issuer unknown, response cannot be verified")
	ErrNoResponder   = errors.New("ocsp: no responder URL")
)

// Check asks for the status of cert, issued by issuer. url overrides the
// certificate's AIA OCSP URL.
func (c *Client) Check(ctx context.Context, cert, issuer *x509.Certificate, responderURL string) (*Result, error) {
	if err := ed448x509.CheckSignature(cert, issuer); err != nil {
		return nil, fmt.Errorf("ocsp: %s is not the issuer of the certificate: %w", issuer.Subject, err)
	}
	if responderURL == "" && len(cert.OCSPServer) > 0 {
		responderURL = cert.OCSPServer[0]
	}
	return c.check(ctx, crypto.SHA256, issuer, cert.SerialNumber, responderURL)
}

// RequestData is OCPP's OCSPRequestData / CertificateHashData.
type RequestData struct {
	HashAlgorithm  string // SHA256, SHA384 or SHA512
	IssuerNameHash string // hex
	IssuerKeyHash  string // hex
	SerialNumber   string // hex
	ResponderURL   string
}

// CheckData checks a certificate named by OCPP hash data. The issuer must
// be one of the local CAs or in Issuers.
func (c *Client) CheckData(ctx context.Context, d RequestData) (*Result, error) {
	var h crypto.Hash
	switch strings.ToUpper(d.HashAlgorithm) {
	case "SHA256":
		h = crypto.SHA256
	case "SHA384":
		h = crypto.SHA384
	case "SHA512":
		h = crypto.SHA512
	default:
		return nil, fmt.Errorf("ocsp: hashAlgorithm %q: want SHA256, SHA384 or SHA512", d.HashAlgorithm)
	}
	nameHash, err1 := hex.DecodeString(d.IssuerNameHash)
	keyHash, err2 := hex.DecodeString(d.IssuerKeyHash)
	serial, ok := new(big.Int).SetString(d.SerialNumber, 16)
	if err1 != nil || err2 != nil || len(nameHash) != h.Size() || len(keyHash) != h.Size() {
		return nil, fmt.Errorf("ocsp: issuer hashes are not %v hex", h)
	}
	if !ok || serial.Sign() <= 0 || serial.BitLen() > 160 {
		return nil, fmt.Errorf("ocsp: serialNumber %q is not a positive hex number of at most 20 octets", d.SerialNumber)
	}
	issuer := c.findIssuer(h, nameHash, keyHash)
	if issuer == nil {
		return nil, ErrUnknownIssuer
	}
	return c.check(ctx, h, issuer, serial, d.ResponderURL)
}

func (c *Client) findIssuer(h crypto.Hash, nameHash, keyHash []byte) *x509.Certificate {
	candidates := c.Issuers
	if c.Local != nil {
		c.Local.mu.RLock()
		if is := c.Local.issuers[newIssuerKey(h, nameHash, keyHash)]; is != nil {
			candidates = append([]*x509.Certificate{is.cert}, candidates...)
		}
		c.Local.mu.RUnlock()
	}
	for _, cand := range candidates {
		nh, kh, err := IssuerHashes(h, cand)
		if err == nil && bytes.Equal(nh, nameHash) && bytes.Equal(kh, keyHash) {
			return cand
		}
	}
	return nil
}

func (c *Client) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Client) check(ctx context.Context, h crypto.Hash, issuer *x509.Certificate, serial *big.Int, responderURL string) (*Result, error) {
	nameHash, keyHash, err := IssuerHashes(h, issuer)
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%d/%x/%x/%x", h, nameHash, keyHash, serial)
	now := c.now()
	c.mu.Lock()
	if r := c.cache[key]; r != nil && now.Before(r.NextUpdate) {
		c.mu.Unlock()
		cached := *r
		cached.Source = "cache"
		return &cached, nil
	}
	c.mu.Unlock()

	reqDER, err := MarshalRequest(h, issuer, serial, nil)
	if err != nil {
		return nil, err
	}
	var der []byte
	source := "local"
	if c.Local != nil && c.Local.Issuer(&Request{Hash: h, IssuerNameHash: nameHash, IssuerKeyHash: keyHash, Serial: serial}) != "" {
		ans, err := c.Local.Respond(ctx, &Request{Hash: h, IssuerNameHash: nameHash, IssuerKeyHash: keyHash, Serial: serial})
		if err != nil {
			return nil, err
		}
		der = ans.DER
	} else {
		if der, err = c.fetch(ctx, responderURL, reqDER); err != nil {
			return nil, err
		}
		source = responderURL
	}
	r, err := c.verify(der, issuer, serial, h)
	if err != nil {
		return nil, err
	}
	r.Source = source
	// Local answers are not cached here: the responder's own cache is
	// dropped on revocation, this one would not be.
	if source != "local" && !r.NextUpdate.IsZero() {
		c.mu.Lock()
		if c.cache == nil || len(c.cache) >= maxClientCache {
			c.cache = map[string]*Result{}
		}
		c.cache[key] = r
		c.mu.Unlock()
	}
	return r, nil
}

func (c *Client) fetch(ctx context.Context, responderURL string, reqDER []byte) ([]byte, error) {
	if responderURL == "" {
		return nil, ErrNoResponder
	}
	if len(responderURL) > 2000 {
		return nil, fmt.Errorf("ocsp: responder URL longer than 2000 characters")
	}
	u, err := url.Parse(responderURL)
	if err != nil {
		return nil, fmt.Errorf("ocsp: responder URL: %w", err)
	}
	allowed := c.URLAllowed
	if allowed == nil {
		allowed = func(u *url.URL) bool { return (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" }
	}
	if !allowed(u) {
		return nil, fmt.Errorf("ocsp: responder URL %q is not allowed", responderURL)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(reqDER))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/ocsp-request")
	req.Header.Set("Accept", "application/ocsp-response")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("ocsp: ask %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ocsp: %s answered HTTP %d", u.Host, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("ocsp: read response from %s: %w", u.Host, err)
	}
	if len(body) > MaxResponseSize {
		return nil, fmt.Errorf("ocsp: response from %s larger than %d bytes", u.Host, MaxResponseSize)
	}
	return body, nil
}

// parseResponse is xocsp.ParseResponse, which checks the signature, also
// for an Ed448 issuer (ISO 15118-20), whose signature on its delegated
// responder's certificate crypto/x509 cannot check. Such a CA answers
// only through a delegated responder.
func parseResponse(der []byte, issuer *x509.Certificate) (*xocsp.Response, error) {
	if ed448x509.PublicKey(issuer) == nil {
		return xocsp.ParseResponse(der, issuer)
	}
	resp, err := xocsp.ParseResponse(der, nil) // checks the responder's signature
	if err != nil {
		return nil, err
	}
	if resp.Certificate == nil {
		return nil, errors.New("an Ed448 issuer's response without its delegated responder's certificate")
	}
	if err := ed448x509.CheckSignature(resp.Certificate, issuer); err != nil {
		return nil, fmt.Errorf("bad OCSP signature: %w", err)
	}
	return resp, nil
}

// verify checks signature (by the issuer or a delegated responder it
// certified for OCSP signing), that the answer is about serial, and that it
// is fresh.
func (c *Client) verify(der []byte, issuer *x509.Certificate, serial *big.Int, h crypto.Hash) (*Result, error) {
	resp, err := parseResponse(der, issuer)
	if err != nil {
		return nil, fmt.Errorf("ocsp: response: %w", err)
	}
	if resp.SerialNumber == nil || resp.SerialNumber.Cmp(serial) != 0 {
		return nil, errors.New("ocsp: response is about another certificate")
	}
	if resp.IssuerHash != h {
		return nil, fmt.Errorf("ocsp: response CertID uses %v, asked %v", resp.IssuerHash, h)
	}
	signer := issuer
	if resp.Certificate != nil && !bytes.Equal(resp.Certificate.Raw, issuer.Raw) {
		// RFC 6960 4.2.2.2: the issuer must have delegated OCSP signing.
		if !slices.Contains(resp.Certificate.ExtKeyUsage, x509.ExtKeyUsageOCSPSigning) {
			return nil, errors.New("ocsp: responder certificate is not authorised for OCSP signing")
		}
		signer = resp.Certificate
		if signer.NotAfter.Before(c.now()) || signer.NotBefore.After(c.now()) {
			return nil, errors.New("ocsp: delegated responder certificate is not valid now")
		}
	}
	skew := c.Skew
	if skew == 0 {
		skew = 5 * time.Minute
	}
	now := c.now()
	if resp.ThisUpdate.After(now.Add(skew)) {
		return nil, fmt.Errorf("ocsp: thisUpdate %s is in the future", resp.ThisUpdate)
	}
	if !resp.NextUpdate.IsZero() && resp.NextUpdate.Add(skew).Before(now) {
		return nil, fmt.Errorf("ocsp: response expired at %s", resp.NextUpdate)
	}
	if resp.NextUpdate.IsZero() && resp.ThisUpdate.Add(time.Hour).Before(now) {
		return nil, fmt.Errorf("ocsp: response without nextUpdate is older than an hour")
	}
	return &Result{
		Status: resp.Status, RevokedAt: resp.RevokedAt, Reason: resp.RevocationReason,
		ProducedAt: resp.ProducedAt, ThisUpdate: resp.ThisUpdate, NextUpdate: resp.NextUpdate,
		Signer: signer, DER: der,
	}, nil
}
