package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/spf13/cobra"

	"github.com/pncpki/pncpki/api"
	"github.com/pncpki/pncpki/api/apiclient"
	"github.com/pncpki/pncpki/api/auth"
	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/store"
)

// Remote mode: with --server, the commands that have an API call go to a
// pncd instead of a local data directory, authenticated by the token in
// --token-file. The rest refuse --server.

// remoteAnnotation marks commands that work against a remote pncd.
const remoteAnnotation = "pncctl/remote"

// remote marks c as usable with --server.
func remote(c *cobra.Command) *cobra.Command {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations[remoteAnnotation] = "yes"
	return c
}

// checkRemote refuses --server for commands without an API call.
func (a *app) checkRemote(cmd *cobra.Command) error {
	if a.server == "" || cmd.Annotations[remoteAnnotation] == "yes" {
		return nil
	}
	return usageError{fmt.Errorf("'%s' works on a local data directory only; drop --server", cmd.CommandPath())}
}

// client is the API pncctl calls.
type client = apiclient.Client

// call wraps a message with the client's bearer token.
func call[T any](c *client, m *T) *connect.Request[T] { return apiclient.Call(c, m) }

// maxTokenFile bounds the token file.
const maxTokenFile = 16 << 10

func (a *app) client() (*client, error) {
	if a.tokenFile == "" {
		return nil, errors.New("--server needs --token-file (a token from 'pncctl token create' or the first start's admin.token)")
	}
	tok, err := readBounded(a.tokenFile, maxTokenFile)
	if err != nil {
		return nil, fmt.Errorf("--token-file: %w", err)
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if a.serverCA != "" {
		data, err := os.ReadFile(a.serverCA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(data) {
			return nil, fmt.Errorf("--server-ca %s: no PEM certificate", a.serverCA)
		}
		tlsConf.RootCAs = pool
	}
	h := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConf, ForceAttemptHTTP2: true}}
	return apiclient.New(h, strings.TrimSuffix(a.server, "/"), strings.TrimSpace(string(tok))), nil
}

// recordOf turns an API certificate into the record the local commands
// print.
func recordOf(p *pncpkiv1.Certificate) *store.Certificate {
	c := &store.Certificate{Issuer: p.Issuer, Serial: strings.ToLower(p.Serial), Profile: p.Profile, Tenant: p.Tenant, CommonName: p.CommonName,
		NotBefore: p.NotBefore.AsTime(), NotAfter: p.NotAfter.AsTime()}
	if p.RevokedAt != nil {
		c.RevokedAt = p.RevokedAt.AsTime()
	}
	if b, _ := pem.Decode([]byte(p.Pem)); b != nil {
		c.DER = b.Bytes
	}
	if p.RevocationReason != "" {
		c.Reason, _ = ca.ParseReason(p.RevocationReason)
	}
	return c
}

// api is the API the commands call: the remote pncd's with --server;
// otherwise the local data directory's, whose handlers serve in this
// process over an in-memory transport with an administrator token made
// for this command alone (its subject is the audit actor, pncctl:USER).
// Both modes thus run the same code, with the same checks and answers.
// done releases the data directory.
func (a *app) api(ctx context.Context) (cl *client, done func(), err error) {
	return a.apiWith(ctx, false, "")
}

// apiAnchored is api for the calls that check chains against trust
// anchors (provisioning certificates, OEM sub-CAs, deposits): the local
// API has the data directory's and those of anchorsDir (pncd's
// --trust-anchors); a remote pncd uses its own. Only these calls pay for
// reading them.
func (a *app) apiAnchored(ctx context.Context, anchorsDir string) (cl *client, done func(), err error) {
	return a.apiWith(ctx, true, anchorsDir)
}

func (a *app) apiWith(ctx context.Context, anchored bool, anchorsDir string) (cl *client, done func(), err error) {
	if a.server != "" {
		cl, err := a.client()
		return cl, func() {}, err
	}
	d, err := a.open(ctx, false)
	if err != nil {
		return nil, nil, err
	}
	if cl, err = a.apiOn(ctx, d, anchored, anchorsDir); err != nil {
		d.Close()
		return nil, nil, err
	}
	return cl, func() { d.Close() }, nil
}

// apiOn is the API of the open data directory d, served in this process.
func (a *app) apiOn(ctx context.Context, d *datadir.Dir, anchored bool, anchorsDir string) (*client, error) {
	key, err := auth.LoadOrCreateKey(d.Path)
	if err != nil {
		return nil, err
	}
	srv := &api.Server{CA: d.CA, Store: d.Store, Key: key, Contracts: &contract.Pool{Store: d.Store, CA: d.CA}}
	if anchored {
		anchors, err := ocppsec.AnchorsFrom(ctx, d.CA, d.Store, anchorsDir)
		if err != nil {
			return nil, err
		}
		srv.Anchors = func() ocppsec.Anchors { return anchors }
	}
	h, err := srv.Handler()
	if err != nil {
		return nil, err
	}
	tok, err := key.Mint(store.ActorFrom(ctx), "", auth.RoleAdmin, 10*time.Minute, time.Now())
	if err != nil {
		return nil, err
	}
	return apiclient.New(&http.Client{Transport: apiclient.InProcess{Handler: h}}, "http://pncctl.local", tok), nil
}
