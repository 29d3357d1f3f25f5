package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cloudflare/circl/dh/x448"
	"github.com/spf13/cobra"

	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/contract"
	"github.com/pncpki/pncpki/internal/datadir"
	"github.com/pncpki/pncpki/internal/ed448x509"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/policies"
)

// simulateEVCmd plays the vehicle against a running pncd, through the
// OCPP API as a CSMS would forward it.
func (a *app) simulateEVCmd() *cobra.Command {
	var pcid, oemCert, oemKey, oemX448Key, roots, station, version, contractCert, contractKey, save, schema string
	var update bool
	var maxContracts int
	c := &cobra.Command{
		Use:   "simulate-ev",
		Short: "Play a vehicle against a running pncd (--server): build and sign a CertificateInstallationReq (or UpdateReq), send it through Get15118EVCertificate, verify and decrypt the answer, and print a report",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if a.server == "" {
				return errors.New("simulate-ev talks to a running pncd: give --server and --token-file")
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			switch schema {
			case "iso15118-2":
			case "iso15118-20":
				if update {
					return usageError{errors.New("ISO 15118-20 has no certificate update: drop --update")}
				}
				if !cmd.Flags().Changed("ocpp-version") {
					version = "2.1"
				}
				return a.simulateEV20(cmd, cl, sim20{oemCert: oemCert, oemKey: oemKey, oemX448Key: oemX448Key, roots: roots, station: station, version: version, save: save, maxContracts: maxContracts})
			default:
				return usageError{fmt.Errorf("--schema %q: want iso15118-2 or iso15118-20", schema)}
			}
			ev := &contract.EV{}
			var recipient *ecdsa.PrivateKey
			var req []byte
			action := "Install"
			if ev.Roots, err = a.evRoots(cmd, cl, roots); err != nil {
				return err
			}
			if update {
				action = "Update"
				chain, key, err := readCertAndKey(contractCert, contractKey)
				if err != nil {
					return fmt.Errorf("contract: %w", err)
				}
				recipient = key
				if req, err = ev.UpdateRequest(chain, key, chain[0].Subject.CommonName); err != nil {
					return err
				}
			} else {
				chain, key, err := readCertAndKey(oemCert, oemKey)
				if err != nil {
					return fmt.Errorf("OEM provisioning: %w", err)
				}
				if pcid != "" {
					want, err1 := policies.NormalizePCID(pcid)
					got, err2 := policies.NormalizePCID(chain[0].Subject.CommonName)
					if err := errors.Join(err1, err2); err != nil || want != got {
						return fmt.Errorf("--pcid %s is not the PCID of %s (%s): %v", pcid, oemCert, chain[0].Subject.CommonName, err)
					}
				}
				ev.ProvisioningCert, ev.ProvisioningKey, recipient = chain[0], key, key
				if req, err = ev.InstallationRequest(); err != nil {
					return err
				}
			}
			b64 := base64.StdEncoding.EncodeToString(req)
			fmt.Fprintf(a.out, "request    Certificate%sReq, %d bytes of EXI (%d base64 characters), %d roots listed\n",
				map[string]string{"Install": "Installation", "Update": "Update"}[action], len(req), len(b64), len(ev.Roots))
			exiRes, _, err := a.askEVCertificate(cmd, cl, station, version, ocppsec.Get15118EVCertificateRequest{
				ISO15118SchemaVersion: ocppsec.ISO15118v2Schema, Action: action, EXIRequest: b64})
			if err != nil {
				return err
			}
			got, err := ev.ReadResponse(exiRes, recipient)
			if err != nil {
				fmt.Fprintf(a.out, "check      FAILED: %v\n", err)
				return exitError{code: 1}
			}
			fmt.Fprintf(a.out, "CPS chain  %s: verified to a listed root\n", chainNames(got.CPSChain))
			fmt.Fprintf(a.out, "signature  the CPS signature over the four signed elements is valid\n")
			fmt.Fprintln(a.out, contractLine(got.EMAID, got.ContractChain[0]))
			fmt.Fprintf(a.out, "key        decrypted; it is the contract certificate's key\n")
			if save != "" {
				if err := saveContract(save, "contract", got.ContractChain, got.ContractKey, a); err != nil {
					return err
				}
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&pcid, "pcid", "", "the vehicle's PCID (checked against the provisioning certificate)")
	f.StringVar(&oemCert, "oem-cert", "", "PEM OEM provisioning certificate of the vehicle")
	f.StringVar(&oemKey, "oem-key", "", "PEM private key of --oem-cert")
	f.StringVar(&roots, "roots", "", "PEM roots the vehicle lists in ListOfRootCertificateIDs (default: the server's V2G and MO trust anchors)")
	f.StringVar(&station, "station", "", "a station of the token's CPO the request comes through")
	f.StringVar(&version, "ocpp-version", "2.0.1", "OCPP version of the request: 2.0.1, 2.1, or 1.6 (the OCA's Plug and Charge DataTransfer)")
	f.BoolVar(&update, "update", false, "send a CertificateUpdateReq with --contract-cert/--contract-key instead")
	f.StringVar(&contractCert, "contract-cert", "", "PEM contract certificate chain for --update")
	f.StringVar(&contractKey, "contract-key", "", "PEM contract key for --update")
	f.StringVar(&save, "save", "", "directory to write the installed contract certificate chain and key to (the key with mode 0600)")
	f.StringVar(&schema, "schema", "iso15118-2", "the vehicle's ISO 15118 part: iso15118-2, or iso15118-20 (secp521r1 or Ed448, as --oem-cert's key is; over OCPP 2.1; --oem-cert may hold the provisioning certificate's sub-CAs after it)")
	f.StringVar(&oemX448Key, "oem-x448-key", "", "ISO 15118-20 Ed448 vehicles: PEM X448 key of --oem-cert's subjectAltPublicKeyInfo (default: --oem-key with .x448.key for .key)")
	f.IntVar(&maxContracts, "max-contracts", 3, "ISO 15118-20: MaximumContractCertificateChains; the vehicle asks again while contracts remain")
	c.MarkFlagRequired("station")
	return remote(c)
}

// sim20 is what simulate-ev --schema iso15118-20 needs of its flags.
type sim20 struct {
	oemCert, oemKey, oemX448Key, roots, station, version, save string
	maxContracts                                               int
}

// simulateEV20 plays an ISO 15118-20 vehicle: it asks through
// Get15118EVCertificate while contracts remain, and checks each answer
// (CPS signature and chain, contract chain, the decrypted key).
func (a *app) simulateEV20(cmd *cobra.Command, cl *client, o sim20) error {
	chain, key, err := readCertAndSigner(o.oemCert, o.oemKey)
	if err != nil {
		return fmt.Errorf("OEM provisioning: %w", err)
	}
	pcid, err := policies.NormalizePCID(chain[0].Subject.CommonName)
	if err != nil {
		return fmt.Errorf("PCID of %s: %w", o.oemCert, err)
	}
	// A V2G session of its own: the SECC gives each a new SessionID, and
	// pncpki counts a session's contracts by it.
	session := make([]byte, 8)
	rand.Read(session)
	ev := &contract.EV20{ProvisioningChain: chain, ProvisioningKey: key, MaxContracts: o.maxContracts, SessionID: session}
	sigAlg, dhAlg := "ECDSA P-521, SHA-512", "ECDH P-521"
	if ed448x509.PublicKey(chain[0]) != nil {
		sigAlg, dhAlg = "Ed448, SHAKE256", "X448"
		x448File := o.oemX448Key
		if x448File == "" {
			x448File = strings.TrimSuffix(o.oemKey, ".key") + ".x448.key"
		}
		if ev.X448Key, err = readX448Key(x448File); err != nil {
			return fmt.Errorf("the Ed448 vehicle's X448 key (--oem-x448-key): %w", err)
		}
	}
	if ev.Roots, err = a.evRoots(cmd, cl, o.roots); err != nil {
		return err
	}
	for n := 1; n <= 255; n++ {
		req, err := ev.InstallationRequest()
		if err != nil {
			return err
		}
		b64 := base64.StdEncoding.EncodeToString(req)
		fmt.Fprintf(a.out, "request    ISO 15118-20 CertificateInstallationReq %d, %d bytes of EXI (%d base64 characters), %d roots listed\n", n, len(req), len(b64), len(ev.Roots))
		maxChains := int32(o.maxContracts)
		exiRes, out, err := a.askEVCertificate(cmd, cl, o.station, o.version, ocppsec.Get15118EVCertificateRequest{
			ISO15118SchemaVersion: contract.ISO15118v20Schema, Action: "Install", EXIRequest: b64, MaximumContractCertificateChains: &maxChains})
		if err != nil {
			return err
		}
		got, err := ev.ReadResponse20(exiRes, pcid)
		if err != nil {
			fmt.Fprintf(a.out, "check      FAILED: %v\n", err)
			return exitError{code: 1}
		}
		fmt.Fprintf(a.out, "CPS chain  %s: verified to a listed root; the CPS signature (%s) is valid\n", chainNames(got.CPSChain), sigAlg)
		fmt.Fprintln(a.out, contractLine(got.EMAID, got.ContractChain[0]))
		fmt.Fprintf(a.out, "key        decrypted (%s, AES-256-GCM); it is the contract certificate's key; %d more remain\n", dhAlg, got.Remaining)
		if o.save != "" {
			if err := saveContract20(o.save, fmt.Sprintf("contract-%d", n), got, a); err != nil {
				return err
			}
		}
		if out.RemainingContracts == nil || int(*out.RemainingContracts) != got.Remaining {
			fmt.Fprintf(a.out, "check      FAILED: remainingContracts is not the answer's %d\n", got.Remaining)
			return exitError{code: 1}
		}
		if got.Remaining == 0 {
			return nil
		}
	}
	return errors.New("contracts did not run out after 255 answers")
}

// evRoots returns the roots the simulated vehicle lists: a PEM file, or the
// server's V2G and MO trust anchors.
func (a *app) evRoots(cmd *cobra.Command, cl *client, file string) ([]*x509.Certificate, error) {
	if file != "" {
		data, err := readBounded(file, 1<<20)
		if err != nil {
			return nil, err
		}
		return datadir.ParseCertificates(data)
	}
	resp, err := cl.Authorities.ListTrustAnchors(cmd.Context(), call(cl, &pncpkiv1.ListTrustAnchorsRequest{}))
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, an := range resp.Msg.Anchors {
		if an.Use != string(ocppsec.UseV2G) && an.Use != string(ocppsec.UseMO) {
			continue
		}
		cs, err := datadir.ParseCertificates([]byte(an.Pem))
		if err != nil {
			return nil, fmt.Errorf("trust anchor %s: %w", an.Subject, err)
		}
		out = append(out, cs...)
	}
	if len(out) > 20 {
		out = out[:20] // ListOfRootCertificateIDs holds 20
	}
	return out, nil
}

// readCertAndKey reads a PEM certificate chain and its EC private key.
func readCertAndKey(certFile, keyFile string) ([]*x509.Certificate, *ecdsa.PrivateKey, error) {
	chain, key, err := readCertAndSigner(certFile, keyFile)
	if err != nil {
		return nil, nil, err
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, fmt.Errorf("%s is not an ECDSA key", keyFile)
	}
	return chain, ec, nil
}

// readCertAndSigner reads a PEM certificate chain and the PKCS#8 (or EC)
// key of its first certificate: ECDSA, or Ed448 (ISO 15118-20).
func readCertAndSigner(certFile, keyFile string) ([]*x509.Certificate, crypto.Signer, error) {
	if certFile == "" || keyFile == "" {
		return nil, nil, errors.New("give the certificate and the key")
	}
	data, err := readBounded(certFile, 1<<20)
	if err != nil {
		return nil, nil, err
	}
	chain, err := datadir.ParseCertificates(data)
	if err != nil || len(chain) == 0 {
		return nil, nil, fmt.Errorf("%s: no certificate (%v)", certFile, err)
	}
	kb, err := readBounded(keyFile, 1<<16)
	if err != nil {
		return nil, nil, err
	}
	blk, _ := pem.Decode(kb)
	if blk == nil {
		return nil, nil, fmt.Errorf("%s: no PEM key", keyFile)
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(blk.Bytes); err != nil {
		if key, err = ed448x509.ParsePKCS8(blk.Bytes); err != nil {
			if key, err = x509.ParseECPrivateKey(blk.Bytes); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", keyFile, err)
			}
		}
	}
	signer, ok := key.(crypto.Signer)
	if !ok || !publicKeyEqual(signer.Public(), ed448x509.CertificateKey(chain[0])) {
		return nil, nil, fmt.Errorf("%s is not the key of %s", keyFile, certFile)
	}
	return chain, signer, nil
}

// saveContract writes an installed contract chain and key into dir as
// NAME.pem and NAME.key (mode 0600).
func publicKeyEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// readX448Key reads the PKCS#8 X448 key of an ISO 15118-20 Ed448 vehicle.
func readX448Key(file string) (*x448.Key, error) {
	kb, err := readBounded(file, 1<<16)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(kb)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM key", file)
	}
	key, err := ed448x509.ParsePKCS8(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	k, ok := key.(*x448.Key)
	if !ok {
		return nil, fmt.Errorf("%s is not an X448 key", file)
	}
	return k, nil
}

// saveContract20 saves an ISO 15118-20 contract: its chain and P-521 key,
// or, for Ed448, the transported scalar in hex (mode 0600): the vehicle
// gets no RFC 8032 seed to write a key file of.
func saveContract20(dir, name string, got *contract.Installed20, a *app) error {
	if got.ContractKey != nil {
		return saveContract(dir, name, got.ContractChain, got.ContractKey, a)
	}
	if err := saveContract(dir, name, got.ContractChain, nil, a); err != nil {
		return err
	}
	scalarFile := filepath.Join(dir, name+".ed448-scalar")
	os.Remove(scalarFile)
	if err := ca.WriteKeyData(scalarFile, []byte(hex.EncodeToString(got.ContractScalar)+"\n")); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "saved      %s (the Ed448 scalar, hex)\n", scalarFile)
	return nil
}

// saveContract writes a contract chain and, unless key is nil, its key.
func saveContract(dir, name string, chain []*x509.Certificate, key crypto.Signer, a *app) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	var b strings.Builder
	for _, c := range chain {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	certFile, keyFile := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	os.Remove(keyFile) // WriteKeyFile never overwrites
	if err := os.WriteFile(certFile, []byte(b.String()), 0o644); err != nil {
		return err
	}
	if key == nil {
		fmt.Fprintf(a.out, "saved      %s\n", certFile)
		return nil
	}
	if err := ca.WriteKeyFile(keyFile, key); err != nil {
		return err
	}
	fmt.Fprintf(a.out, "saved      %s and %s\n", certFile, keyFile)
	return nil
}

// askEVCertificate sends a Get15118EVCertificate as station through the
// OCPP API (in OCPP 1.6 inside the OCA's Plug and Charge DataTransfer),
// prints how it went, and returns the exiResponse of an accepted answer;
// a refusal is exit 1.
func (a *app) askEVCertificate(cmd *cobra.Command, cl *client, station, version string, req ocppsec.Get15118EVCertificateRequest) ([]byte, *ocppsec.Get15118EVCertificateResponse, error) {
	payload, _ := json.Marshal(req)
	ocppAction := "Get15118EVCertificate"
	if version == "1.6" {
		// The OCA's Plug and Charge profile: the 2.0.1 message inside a
		// DataTransfer.
		ocppAction = "DataTransfer"
		payload, _ = json.Marshal(ocppsec.DataTransfer16{VendorID: ocppsec.VendorOCA, MessageID: "Get15118EVCertificate", Data: string(payload)})
	}
	start := time.Now()
	resp, err := cl.OCPP.HandleRequest(cmd.Context(), call(cl, &pncpkiv1.HandleRequestRequest{
		StationId: station, OcppVersion: version, Action: ocppAction, Payload: string(payload)}))
	if err != nil {
		return nil, nil, err
	}
	took := time.Since(start)
	answer := resp.Msg.Payload
	if version == "1.6" {
		var dt ocppsec.DataTransfer16Response
		if err := json.Unmarshal([]byte(answer), &dt); err != nil || dt.Status != "Accepted" {
			return nil, nil, fmt.Errorf("DataTransfer answer: %s %v", dt.Status, err)
		}
		answer = dt.Data
	}
	var out ocppsec.Get15118EVCertificateResponse
	if err := json.Unmarshal([]byte(answer), &out); err != nil {
		return nil, nil, fmt.Errorf("response payload: %w", err)
	}
	if out.Status != "Accepted" {
		info := ""
		if out.StatusInfo != nil {
			info = out.StatusInfo.ReasonCode + ": " + out.StatusInfo.AdditionalInfo
		}
		fmt.Fprintf(a.out, "response   %s in %s: %s\n", out.Status, took.Round(time.Microsecond), info)
		return nil, nil, exitError{code: 1}
	}
	exiRes, err := base64.StdEncoding.DecodeString(out.EXIResponse)
	if err != nil {
		return nil, nil, fmt.Errorf("exiResponse: %w", err)
	}
	fmt.Fprintf(a.out, "response   Accepted in %s, %d bytes of EXI (%d base64 characters)\n", took.Round(time.Microsecond), len(exiRes), len(out.EXIResponse))
	return exiRes, &out, nil
}

// chainNames is a chain's CNs, leaf first.
func chainNames(chain []*x509.Certificate) string {
	names := make([]string, len(chain))
	for i, c := range chain {
		names[i] = c.Subject.CommonName
	}
	return strings.Join(names, " <- ")
}

// contractLine is the report line of an installed contract certificate.
func contractLine(emaid string, leaf *x509.Certificate) string {
	return fmt.Sprintf("contract   eMAID %s, serial %s, valid %s to %s, issued by %s", emaid, ca.SerialHex(leaf.SerialNumber),
		leaf.NotBefore.UTC().Format(time.DateOnly), leaf.NotAfter.UTC().Format(time.DateOnly), leaf.Issuer.CommonName)
}
