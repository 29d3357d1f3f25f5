package upstream

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/store"
)

// ProvisioningCertificate reads a vehicle's OEM provisioning certificate
// and the sub-CAs that came with it from the ecosystem's provisioning
// certificate pool.
func (c *Client) ProvisioningCertificate(ctx context.Context, pcid string) (*x509.Certificate, []*x509.Certificate, error) {
	tok, err := c.Token(ctx)
	if err != nil {
		return nil, nil, err
	}
	var b64 []string // leaf first
	switch c.Protocol {
	case OPCP:
		var out struct {
			OEMMessage struct {
				Vehicle string `json:"vehicleCertificate"`
				Sub2    string `json:"subCA2Certificate"`
				Sub1    string `json:"subCA1Certificate"`
			} `json:"OEMMessage"`
		}
		if err := c.do(ctx, http.MethodGet, c.BaseURL+"/v1/oem/provCerts/"+url.PathEscape(pcid), tok, nil, &out); err != nil {
			return nil, nil, err
		}
		b64 = []string{out.OEMMessage.Vehicle, out.OEMMessage.Sub2, out.OEMMessage.Sub1}
	default:
		var out struct {
			Cert struct {
				Chain struct {
					Leaf string `json:"certificate"`
					Sub2 string `json:"subCa2Certificate"`
					Sub1 string `json:"subCa1Certificate"`
				} `json:"provisioningCertificateChain"`
			} `json:"provisioningCertificate"`
		}
		if err := c.do(ctx, http.MethodGet, c.BaseURL+"/pcp/provisioningcertificates/"+url.PathEscape(pcid), tok, nil, &out); err != nil {
			return nil, nil, err
		}
		ch := out.Cert.Chain
		b64 = []string{ch.Leaf, ch.Sub2, ch.Sub1}
	}
	var certs []*x509.Certificate
	for i, v := range b64 {
		if v == "" && i > 0 {
			continue
		}
		der, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, nil, fmt.Errorf("provisioning certificate chain of %s: not base64", pcid)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, nil, fmt.Errorf("provisioning certificate chain of %s: %w", pcid, err)
		}
		certs = append(certs, cert)
	}
	return certs[0], certs[1:], nil
}

// PutSignedContractData uploads signed contract data (a
// CertificateInstallationRes, EXI) to the ecosystem's contract pool.
func (c *Client) PutSignedContractData(ctx context.Context, emaid, pcid string, exiRes []byte, iso20 bool) error {
	tok, err := c.Token(ctx)
	if err != nil {
		return err
	}
	res := base64.StdEncoding.EncodeToString(exiRes)
	ns := ocppsec.ISO15118v2Schema
	if iso20 { // each API's own name for ISO 15118-20
		ns = map[string]string{OPNC: "urn:iso:15118:20:2020:MsgDef", OPCP: "urn:iso:15118:20:2022:MsgDef"}[c.Protocol]
	}
	body := map[string]string{"emaid": emaid, "pcid": pcid, "xsdMsgDefNamespace": ns}
	path := "/ccp/signedcontractdata"
	if c.Protocol == OPCP {
		body["signedContractDataXML"], path = res, "/v1/ccp/signedContractData"
	} else {
		body["certificateInstallationRes"] = res
	}
	b, _ := json.Marshal(body)
	_, err = c.send(ctx, http.MethodPut, c.BaseURL+path, tok, "application/json", b, "application/json")
	return err
}

// DeleteSignedContractData removes a contract from the ecosystem's pool.
func (c *Client) DeleteSignedContractData(ctx context.Context, emaid string) error {
	tok, err := c.Token(ctx)
	if err != nil {
		return err
	}
	path := "/ccp/signedcontractdata/"
	if c.Protocol == OPCP {
		path = "/v1/ccp/signedContractData/"
	}
	_, err = c.send(ctx, http.MethodDelete, c.BaseURL+path+url.PathEscape(emaid), tok, "", nil, "application/json")
	return err
}

// Pusher publishes pncpki's eMSP contracts in the ecosystem's contract
// pool, so that vehicles whose CSMS asks the ecosystem get them: a created
// or changed contract is packaged for the vehicle's provisioning
// certificate (from pncpki's pool, else the ecosystem's) by the local
// contract service (a new contract certificate, signed by pncpki's CPS)
// and uploaded; a cancelled one is deleted there. Pushes run in the
// background, each tried Attempts times.
type Pusher struct {
	Client    *Client
	Installer *contract.Installer
	Log       *slog.Logger
	Attempts  int           // default 3
	Backoff   time.Duration // first pause, doubled; default 2 s

	wg     sync.WaitGroup
	sem    chan struct{}
	once   sync.Once
	pushes *prometheus.CounterVec
}

// NewPusher returns a pusher whose counter is registered in reg (nil: not
// registered).
func NewPusher(c *Client, in *contract.Installer, reg prometheus.Registerer, log *slog.Logger) *Pusher {
	p := &Pusher{Client: c, Installer: in, Log: log}
	p.init()
	if reg != nil {
		reg.MustRegister(p.pushes)
	}
	return p
}

func (p *Pusher) init() {
	p.once.Do(func() {
		p.sem = make(chan struct{}, 4)
		p.pushes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pncpki_upstream_contract_pushes_total",
			Help: "Contracts pushed to the upstream ecosystem's pool, by change and result."}, []string{"change", "result"})
	})
}

func (p *Pusher) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

// Changed is contract.Pool.Changed: it starts the push and returns.
func (p *Pusher) Changed(ctx context.Context, change contract.Change, c *store.Contract) {
	p.init()
	cc := *c
	p.wg.Go(func() {
		p.sem <- struct{}{}
		defer func() { <-p.sem }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		attempts, pause := p.Attempts, p.Backoff
		if attempts <= 0 {
			attempts = 3
		}
		if pause <= 0 {
			pause = 2 * time.Second
		}
		var err error
		for i := range attempts {
			if i > 0 {
				time.Sleep(pause)
				pause *= 2
			}
			if err = p.push(ctx, change, &cc); err == nil || errors.Is(err, errNotPushable) {
				break
			}
		}
		switch {
		case errors.Is(err, errNotPushable):
			p.pushes.WithLabelValues(string(change), "skipped").Inc()
			p.log().Info("contract not pushed to the upstream", "emaid", cc.EMAID, "change", change, "reason", err)
		case err != nil:
			p.pushes.WithLabelValues(string(change), "failed").Inc()
			p.log().Warn("contract push to the upstream failed", "emaid", cc.EMAID, "change", change, "attempts", attempts, "err", err)
		default:
			p.pushes.WithLabelValues(string(change), "pushed").Inc()
			p.log().Info("contract pushed to the upstream", "emaid", cc.EMAID, "pcid", cc.PCID, "change", change)
		}
	})
}

// Wait waits for the pushes under way.
func (p *Pusher) Wait() { p.wg.Wait() }

var errNotPushable = errors.New("not pushable")

func (p *Pusher) push(ctx context.Context, change contract.Change, c *store.Contract) error {
	if change == contract.ContractDeleted {
		err := p.Client.DeleteSignedContractData(ctx, c.EMAID)
		var se *StatusError
		if errors.As(err, &se) && se.NotFound() {
			return nil // never pushed, or gone already
		}
		return err
	}
	prov, err := p.provisioning(ctx, c.PCID)
	if err != nil {
		return err
	}
	res, err := p.Installer.PrepareFor(ctx, c, prov, "", "", 0)
	var ce *contract.Error
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: %v", errNotPushable, err)
	} else if err != nil {
		return err
	}
	return p.Client.PutSignedContractData(ctx, res.EMAID, c.PCID, res.EXI, res.ISO20)
}

// provisioning finds the vehicle's provisioning certificate: registered
// here, else in the ecosystem's pool; one from the ecosystem must lead to
// an OEM root pncpki trusts, for the contract key is encrypted for it.
func (p *Pusher) provisioning(ctx context.Context, pcid string) (*x509.Certificate, error) {
	if rec, err := p.Installer.Pool.Store.ProvisioningCertificate(ctx, pcid); err == nil {
		return x509.ParseCertificate(rec.DER)
	}
	leaf, subs, err := p.Client.ProvisioningCertificate(ctx, pcid)
	var se *StatusError
	if errors.As(err, &se) && se.NotFound() {
		return nil, fmt.Errorf("%w: neither pncpki nor the ecosystem knows the provisioning certificate of %s", errNotPushable, pcid)
	} else if err != nil {
		return nil, err
	}
	if p.Installer.OEMRoots == nil {
		return nil, fmt.Errorf("%w: no OEM roots to check the ecosystem's provisioning certificate of %s against", errNotPushable, pcid)
	}
	var ie *contract.InstallError
	if err := p.Installer.VerifyOEMChain(ctx, leaf, subs); errors.As(err, &ie) {
		return nil, fmt.Errorf("%w: the ecosystem's provisioning certificate of %s leads to no OEM root pncpki trusts: %v", errNotPushable, pcid, ie.Err)
	} else if err != nil {
		return nil, err
	}
	return leaf, nil
}
