package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	xocsp "golang.org/x/crypto/ocsp"

	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract/exi"
	"github.com/pncpki/pncpki/ocsp"
	"github.com/pncpki/pncpki/policies"
)

// maxInspect bounds what inspect reads.
const maxInspect = 4 << 20

// inspectCmd shows what a file holds, whatever PKI object it is.
func (a *app) inspectCmd() *cobra.Command {
	var output string
	c := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Show a certificate, CSR, CRL, OCSP request or response, or ISO 15118-2 EXI message (detected; PEM, DER, base64 or hex), with lint results",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readBounded(args[0], maxInspect)
			if err != nil {
				return err
			}
			forms, err := a.forms()
			if err != nil {
				return err
			}
			objs, err := inspect(data, forms)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			if structured(output) {
				return a.json(objs)
			}
			for i, o := range objs {
				if i > 0 {
					fmt.Fprintln(a.out)
				}
				fmt.Fprintln(a.out, o.Kind)
				for _, f := range o.Fields {
					fmt.Fprintf(a.out, "  %-20s %s\n", f.Name+":", f.Value)
				}
				if o.Profile != "" {
					fmt.Fprintf(a.out, "  %-20s %s, %d violation(s)\n", "profile:", o.Profile, len(o.Violations))
					for _, v := range o.Violations {
						fmt.Fprintf(a.out, "    - %s\n", v)
					}
				}
				if len(o.EXI) > 0 {
					fmt.Fprintf(a.out, "%s\n", o.EXI)
				}
			}
			return nil
		},
	}
	a.outputFlag(c, &output)
	return c
}

// inspected is one object of an inspected file.
type inspected struct {
	Kind       string               `json:"kind"` // certificate, csr, crl, ocsp_request, ocsp_response, exi
	Fields     []field              `json:"fields"`
	Profile    string               `json:"profile,omitempty"`
	Violations []policies.Violation `json:"violations,omitempty"`
	EXI        json.RawMessage      `json:"exi,omitempty"`
}

type field struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

func (o *inspected) add(name, value string) {
	if value != "" {
		o.Fields = append(o.Fields, field{name, value})
	}
}

// inspect detects and describes the objects in data: every PEM block, or
// one DER object, or an EXI message.
func inspect(data []byte, forms policies.SECCForms) ([]*inspected, error) {
	if bytes.Contains(data, []byte("-----BEGIN ")) {
		var out []*inspected
		for rest := data; ; {
			var b *pem.Block
			if b, rest = pem.Decode(rest); b == nil {
				break
			}
			o, err := inspectDER(b.Bytes, forms)
			if err != nil {
				return nil, fmt.Errorf("PEM block %s: %w", b.Type, err)
			}
			out = append(out, o)
		}
		if len(out) == 0 {
			return nil, errors.New("no PEM block")
		}
		return out, nil
	}
	if o, err := inspectDER(data, forms); err == nil {
		return []*inspected{o}, nil
	}
	raw := exiBytes(data)
	if el, err := exiSchemas["iso15118-2"].Decode(raw); err == nil {
		j, err := exi.JSON(el)
		if err != nil {
			return nil, err
		}
		o := &inspected{Kind: "exi", EXI: j}
		o.add("schema", "ISO 15118-2 (urn:iso:15118:2:2013:MsgDef)")
		o.add("size", fmt.Sprintf("%d bytes, %d base64 characters", len(raw), (len(raw)+2)/3*4))
		return []*inspected{o}, nil
	}
	return nil, errors.New("neither a certificate, CSR, CRL, OCSP request or response (PEM or DER) nor an ISO 15118-2 EXI message")
}

// inspectDER tries each DER form in turn.
func inspectDER(der []byte, forms policies.SECCForms) (*inspected, error) {
	if c, err := x509.ParseCertificate(der); err == nil {
		o := &inspected{Kind: "certificate"}
		o.add("subject", ca.FormatName(c.RawSubject))
		o.add("issuer", ca.FormatName(c.RawIssuer))
		o.add("serial", strings.ToUpper(ca.SerialHex(c.SerialNumber)))
		o.add("not before", c.NotBefore.UTC().Format(time.RFC3339))
		o.add("not after", c.NotAfter.UTC().Format(time.RFC3339))
		o.add("key", keyDescription(c.PublicKey))
		o.add("signature", c.SignatureAlgorithm.String())
		if c.BasicConstraintsValid {
			bc := "CA:false"
			if c.IsCA {
				bc = "CA:true"
				if c.MaxPathLen > 0 || c.MaxPathLenZero {
					bc += fmt.Sprintf(", pathlen %d", c.MaxPathLen)
				}
			}
			o.add("basic constraints", bc)
		}
		o.add("key usage", policies.KeyUsageString(c.KeyUsage))
		o.add("ocsp", strings.Join(c.OCSPServer, " "))
		o.add("crl", strings.Join(c.CRLDistributionPoints, " "))
		o.add("subject key id", hex.EncodeToString(c.SubjectKeyId))
		o.add("authority key id", hex.EncodeToString(c.AuthorityKeyId))
		o.add("size", fmt.Sprintf("%d bytes", len(der)))
		o.add("sha256", sha256Hex(der))
		p, vs := policies.Detect(c, forms)
		o.Profile, o.Violations = p.Name, vs
		return o, nil
	}
	if r, err := x509.ParseCertificateRequest(der); err == nil {
		o := &inspected{Kind: "csr"}
		o.add("subject", ca.FormatName(r.RawSubject))
		o.add("key", keyDescription(r.PublicKey))
		o.add("signature", r.SignatureAlgorithm.String())
		sig := "valid"
		if err := r.CheckSignature(); err != nil {
			sig = "INVALID: " + err.Error()
		}
		o.add("self-signature", sig)
		o.add("sha256", sha256Hex(der))
		return o, nil
	}
	if l, err := x509.ParseRevocationList(der); err == nil {
		o := &inspected{Kind: "crl"}
		o.add("issuer", ca.FormatName(l.RawIssuer))
		if l.Number != nil {
			o.add("number", l.Number.String())
		}
		o.add("this update", l.ThisUpdate.UTC().Format(time.RFC3339))
		o.add("next update", l.NextUpdate.UTC().Format(time.RFC3339))
		o.add("entries", fmt.Sprint(len(l.RevokedCertificateEntries)))
		for i, e := range l.RevokedCertificateEntries {
			if i == 20 {
				o.add("...", fmt.Sprintf("%d more", len(l.RevokedCertificateEntries)-20))
				break
			}
			o.add("revoked", fmt.Sprintf("%s at %s (%s)", strings.ToUpper(ca.SerialHex(e.SerialNumber)), e.RevocationTime.UTC().Format(time.RFC3339), ca.ReasonName(e.ReasonCode)))
		}
		o.add("signature", l.SignatureAlgorithm.String())
		return o, nil
	}
	if r, err := xocsp.ParseResponse(der, nil); err == nil {
		o := &inspected{Kind: "ocsp_response"}
		o.add("status", [...]string{"good", "revoked", "unknown"}[min(r.Status, 2)])
		o.add("serial", strings.ToUpper(ca.SerialHex(r.SerialNumber)))
		o.add("produced at", r.ProducedAt.UTC().Format(time.RFC3339))
		o.add("this update", r.ThisUpdate.UTC().Format(time.RFC3339))
		if !r.NextUpdate.IsZero() {
			o.add("next update", r.NextUpdate.UTC().Format(time.RFC3339))
		}
		if r.Status == xocsp.Revoked {
			o.add("revoked at", r.RevokedAt.UTC().Format(time.RFC3339))
			o.add("reason", ca.ReasonName(r.RevocationReason))
		}
		if r.Certificate != nil {
			o.add("signer", ca.FormatName(r.Certificate.RawSubject))
		}
		return o, nil
	}
	if r, err := ocsp.ParseRequest(der); err == nil {
		o := &inspected{Kind: "ocsp_request"}
		o.add("hash", r.Hash.String())
		o.add("issuer name hash", hex.EncodeToString(r.IssuerNameHash))
		o.add("issuer key hash", hex.EncodeToString(r.IssuerKeyHash))
		o.add("serial", strings.ToUpper(ca.SerialHex(r.Serial)))
		if r.Nonce != nil {
			o.add("nonce", hex.EncodeToString(r.Nonce))
		}
		return o, nil
	}
	return nil, errors.New("not a certificate, CSR, CRL or OCSP request or response")
}

func keyDescription(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
