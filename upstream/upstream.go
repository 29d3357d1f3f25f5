// Package upstream is pncpki's client of a Plug and Charge ecosystem that
// speaks the Open Plug&Charge protocols (OPNC or OPCP): pncpki fetches
// signed contract data there for vehicles whose contract is held
// elsewhere, and takes the ecosystem's root certificate pool into its
// trust anchors. It logs in with OAuth2 client credentials.
package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/pncpki/pncpki/api/est"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/ocppsec"
)

// Protocols an upstream may speak.
const (
	OPNC = "opnc"
	OPCP = "opcp"
)

// maxAnswer bounds what pncpki reads from the upstream.
const maxAnswer = 1 << 20

// Client talks to one upstream ecosystem.
type Client struct {
	// BaseURL is the ecosystem's base: for OPNC the one before /ccp and
	// /rcp (e.g. https://eco.example/opnc/v1), for OPCP the one before
	// /v1/ccp and /v1/root.
	BaseURL  string
	Protocol string
	// TokenURL, ClientID and ClientSecret are the OAuth2 client
	// credentials; an empty TokenURL sends no token.
	TokenURL, ClientID, ClientSecret string
	// ESTURL is the ecosystem's EST base, before /cpo/simpleenroll (e.g.
	// https://eco.example/.well-known/est); empty: no enrollment.
	ESTURL string
	HTTP   *http.Client

	mu      sync.Mutex
	token   string
	expires time.Time

	caMu      sync.Mutex
	caCerts   []*x509.Certificate
	caFetched time.Time
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return &http.Client{Timeout: 15 * time.Second}
}

// Token returns a valid access token, fetching one when the last is
// about to expire.
func (c *Client) Token(ctx context.Context) (string, error) {
	if c.TokenURL == "" {
		return "", nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && time.Until(c.expires) > time.Minute {
		return c.token, nil
	}
	body, _ := json.Marshal(map[string]string{"client_id": c.ClientID, "client_secret": c.ClientSecret, "audience": c.BaseURL, "grant_type": "client_credentials"})
	var res struct {
		AccessToken string  `json:"access_token"`
		ExpiresIn   float64 `json:"expires_in"`
	}
	if err := c.do(ctx, http.MethodPost, c.TokenURL, "", body, &res); err != nil {
		return "", fmt.Errorf("upstream token: %w", err)
	}
	if res.AccessToken == "" {
		return "", errors.New("upstream token: no access_token in the answer")
	}
	c.token, c.expires = res.AccessToken, time.Now().Add(time.Duration(res.ExpiresIn)*time.Second)
	return c.token, nil
}

// do sends a JSON request and decodes a JSON answer into out.
func (c *Client) do(ctx context.Context, method, url, token string, body []byte, out any) error {
	return c.doWith(ctx, method, url, token, body, out, nil)
}

// doWith is do with more request headers.
func (c *Client) doWith(ctx context.Context, method, url, token string, body []byte, out any, header http.Header) error {
	data, err := c.sendWith(ctx, method, url, token, "application/json", body, "application/json", header)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, out)
}

// send makes a request and returns the body of a 2xx answer.
func (c *Client) send(ctx context.Context, method, url, token, contentType string, body []byte, accept string) ([]byte, error) {
	return c.sendWith(ctx, method, url, token, contentType, body, accept, nil)
}

// sendWith is send with more request headers.
func (c *Client) sendWith(ctx context.Context, method, url, token, contentType string, body []byte, accept string, header http.Header) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", accept)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxAnswer {
		return nil, fmt.Errorf("%s: answer over %d bytes", url, maxAnswer)
	}
	if resp.StatusCode/100 != 2 {
		return nil, &StatusError{Status: resp.StatusCode, Body: strings.TrimSpace(string(data[:min(len(data), 300)]))}
	}
	return data, nil
}

// StatusError is an upstream's non-200 answer.
type StatusError struct {
	Status int
	Body   string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("upstream answered HTTP %d: %s", e.Status, e.Body)
}

// NotFound says the upstream does not know what was asked for.
func (e *StatusError) NotFound() bool { return e.Status == http.StatusNotFound }

// SignedContractData asks the ecosystem's contract certificate pool for
// the answer to a vehicle's CertificateInstallationReq (EXI) and returns
// the CertificateInstallationRes (EXI) and its EMAID.
func (c *Client) SignedContractData(ctx context.Context, exiRequest []byte) ([]byte, string, error) {
	tok, err := c.Token(ctx)
	if err != nil {
		return nil, "", err
	}
	body, _ := json.Marshal(map[string]string{"certificateInstallationReq": base64.StdEncoding.EncodeToString(exiRequest), "xsdMsgDefNamespace": ocppsec.ISO15118v2Schema})
	// A refusal comes as a status, not as an answer for the vehicle
	// (alwaysReturnEXI defaults to true): pncpki decides what the vehicle
	// is told, and a vehicle the ecosystem does not know may still have a
	// contract here.
	header := http.Header{"alwaysReturnEXI": {"false"}}
	var res, emaid string
	switch c.Protocol {
	case OPCP:
		var out struct {
			CCPResponse struct {
				EmaidContent []struct {
					MessageDef struct {
						Res   string `json:"certificateInstallationRes"`
						EMAID string `json:"emaid"`
					} `json:"messageDef"`
				} `json:"emaidContent"`
			} `json:"CCPResponse"`
		}
		if err := c.doWith(ctx, http.MethodPost, c.BaseURL+"/v1/ccp/signedContractData", tok, body, &out, header); err != nil {
			return nil, "", err
		}
		if len(out.CCPResponse.EmaidContent) == 0 {
			return nil, "", errors.New("upstream: no signed contract data")
		}
		res, emaid = out.CCPResponse.EmaidContent[0].MessageDef.Res, out.CCPResponse.EmaidContent[0].MessageDef.EMAID
	default:
		var out struct {
			Collection []struct {
				Res   string `json:"certificateInstallationRes"`
				EMAID string `json:"emaid"`
			} `json:"signedContractDataCollection"`
		}
		if err := c.doWith(ctx, http.MethodPost, c.BaseURL+"/ccp/signedcontractdata", tok, body, &out, header); err != nil {
			return nil, "", err
		}
		if len(out.Collection) == 0 {
			return nil, "", errors.New("upstream: no signed contract data")
		}
		res, emaid = out.Collection[0].Res, out.Collection[0].EMAID
	}
	exiRes, err := base64.StdEncoding.DecodeString(res)
	if err != nil || len(exiRes) == 0 {
		return nil, "", fmt.Errorf("upstream: certificateInstallationRes is not base64: %v", err)
	}
	return exiRes, emaid, nil
}

// Roots returns the ecosystem's root certificate pool by trust anchor use.
func (c *Client) Roots(ctx context.Context) (ocppsec.Anchors, error) {
	tok, err := c.Token(ctx)
	if err != nil {
		return nil, err
	}
	type root struct {
		CACertificate string   `json:"caCertificate"`
		RootType      string   `json:"rootType"`     // OPCP
		RootTypeList  []string `json:"rootTypeList"` // OPNC
	}
	var roots []root
	switch c.Protocol {
	case OPCP:
		var out struct {
			Collection struct {
				Roots []root `json:"rootCertificates"`
			} `json:"RootCertificateCollection"`
		}
		if err := c.do(ctx, http.MethodGet, c.BaseURL+"/v1/root/rootCerts", tok, nil, &out); err != nil {
			return nil, err
		}
		roots = out.Collection.Roots
	default:
		var out struct {
			Roots []root `json:"rootCertificateCollection"`
		}
		if err := c.do(ctx, http.MethodGet, c.BaseURL+"/rcp/rootcertificates", tok, nil, &out); err != nil {
			return nil, err
		}
		roots = out.Roots
	}
	uses := map[string]ocppsec.Use{"V2G": ocppsec.UseV2G, "MO": ocppsec.UseMO, "eMSP": ocppsec.UseMO, "OEM": ocppsec.UseOEM}
	a := ocppsec.Anchors{}
	for _, r := range roots {
		der, err := base64.StdEncoding.DecodeString(r.CACertificate)
		if err != nil {
			return nil, fmt.Errorf("upstream root: %w", err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("upstream root: %w", err)
		}
		types := r.RootTypeList
		if r.RootType != "" {
			types = append(types, r.RootType)
		}
		for _, t := range types {
			if u, ok := uses[t]; ok {
				if err := a.Add(u, cert); err != nil {
					return nil, fmt.Errorf("upstream root %s: %w", cert.Subject, err)
				}
			}
		}
	}
	return a, nil
}

// estPath is the EST path of the ecosystem's CPO CA for ISO 15118-2, in
// the form OPCP documents and pncpki serves.
const estPath = "/cpo/%s/ISO15118-2"

// caCertsTTL is how long the ecosystem's CA chain is reused.
const caCertsTTL = time.Hour

// Enroll has the ecosystem's CPO CA sign a SECC CSR (DER) over EST
// (simpleenroll) and returns the certificate followed by its CA chain
// from cacerts, leaf first.
func (c *Client) Enroll(ctx context.Context, csr []byte) ([]*x509.Certificate, error) {
	if c.ESTURL == "" {
		return nil, errors.New("no EST URL of the upstream is configured")
	}
	tok, err := c.Token(ctx)
	if err != nil {
		return nil, err
	}
	body := []byte(base64.StdEncoding.EncodeToString(csr))
	data, err := c.send(ctx, http.MethodPost, c.ESTURL+fmt.Sprintf(estPath, "simpleenroll"), tok, "application/pkcs10", body, "application/pkcs7-mime")
	if err != nil {
		return nil, fmt.Errorf("simpleenroll: %w", err)
	}
	issued, err := pkcs7Certs(data)
	if err != nil {
		return nil, fmt.Errorf("simpleenroll: %w", err)
	}
	var leaf *x509.Certificate
	for _, x := range issued {
		if !x.IsCA {
			leaf = x
		}
	}
	if leaf == nil {
		return nil, errors.New("simpleenroll: no end-entity certificate in the answer")
	}
	cas, err := c.cacerts(ctx, tok, false)
	if err == nil && chainOf(leaf, cas) == nil {
		cas, err = c.cacerts(ctx, tok, true) // the ecosystem may have a new sub-CA
	}
	if err != nil {
		return nil, fmt.Errorf("cacerts: %w", err)
	}
	chain := chainOf(leaf, append(cas, issued...))
	if chain == nil {
		return nil, errors.New("the ecosystem's CA certificates do not include the issuer of its certificate")
	}
	return append([]*x509.Certificate{leaf}, chain...), nil
}

// CACerts returns the ecosystem's CPO CA chain from EST cacerts (cached
// for an hour), issuer first.
func (c *Client) CACerts(ctx context.Context) ([]*x509.Certificate, error) {
	tok, err := c.Token(ctx)
	if err != nil {
		return nil, err
	}
	certs, err := c.cacerts(ctx, tok, false)
	if err != nil {
		return nil, err
	}
	// Issuer first: the CA that issues end-entity certificates, then up.
	for _, x := range certs {
		if chain := chainOf(x, certs); x.IsCA && !isIssuerOfAny(x, certs) {
			return append([]*x509.Certificate{x}, chain...), nil
		}
	}
	return certs, nil
}

// isIssuerOfAny says whether c signed another certificate of certs.
func isIssuerOfAny(c *x509.Certificate, certs []*x509.Certificate) bool {
	for _, x := range certs {
		if !x.Equal(c) && bytes.Equal(x.RawIssuer, c.RawSubject) && ed448x509.CheckSignature(x, c) == nil {
			return true
		}
	}
	return false
}

// cacerts returns the ecosystem's CPO CA chain, cached.
func (c *Client) cacerts(ctx context.Context, tok string, fresh bool) ([]*x509.Certificate, error) {
	c.caMu.Lock()
	defer c.caMu.Unlock()
	if !fresh && c.caCerts != nil && time.Since(c.caFetched) < caCertsTTL {
		return c.caCerts, nil
	}
	data, err := c.send(ctx, http.MethodGet, c.ESTURL+fmt.Sprintf(estPath, "cacerts"), tok, "", nil, "application/pkcs7-mime")
	if err != nil {
		return nil, err
	}
	certs, err := pkcs7Certs(data)
	if err != nil {
		return nil, err
	}
	c.caCerts, c.caFetched = certs, time.Now()
	return certs, nil
}

// pkcs7Certs reads EST's base64 certs-only PKCS#7.
func pkcs7Certs(data []byte) ([]*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(string(bytes.Join(bytes.Fields(data), nil)))
	if err != nil {
		return nil, fmt.Errorf("the answer is not base64: %w", err)
	}
	return est.ParsePKCS7(der)
}

// chainOf orders the CAs above leaf from pool, issuer first; nil when its
// issuer is not there.
func chainOf(leaf *x509.Certificate, pool []*x509.Certificate) []*x509.Certificate {
	var chain []*x509.Certificate
	for c := leaf; len(chain) < 4; {
		var next *x509.Certificate
		for _, p := range pool {
			if p.IsCA && !p.Equal(c) && bytes.Equal(c.RawIssuer, p.RawSubject) && ed448x509.CheckSignature(c, p) == nil {
				next = p
				break
			}
		}
		if next == nil {
			break
		}
		chain = append(chain, next)
		if bytes.Equal(next.RawIssuer, next.RawSubject) {
			break
		}
		c = next
	}
	if len(chain) == 0 {
		return nil
	}
	return chain
}

// TLSConfig is the TLS configuration of the connection to an upstream:
// caFile (PEM) replaces the system roots when given; certFile and keyFile
// (PEM) are pncpki's client certificate for ecosystems that authenticate
// by mTLS.
func TLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		data, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("upstream CA: %w", err)
		}
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("upstream CA %s: no PEM certificate", caFile)
		}
		conf.RootCAs = p
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("the upstream client certificate and key go together")
	}
	if certFile != "" {
		if fi, err := os.Stat(keyFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("upstream client key %s: mode %v, want 0600", keyFile, fi.Mode().Perm())
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("upstream client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf, nil
}
