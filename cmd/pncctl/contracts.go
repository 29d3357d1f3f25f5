package main

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/ca"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/store"
)

func (a *app) contractsCmd() *cobra.Command {
	c := &cobra.Command{Use: "contracts", Short: "The contract pool: eMSP contracts (EMAID) bound to vehicles (PCID)"}
	var in store.Contract
	var days int
	put := &cobra.Command{
		Use: "put", Short: "Create a contract or change it",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if days > 0 {
				in.ValidUntil = time.Now().Add(time.Duration(days) * 24 * time.Hour).UTC()
			}
			cl, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			msg := &pncpkiv1.Contract{Emaid: in.EMAID, Tenant: in.Tenant, Pcid: in.PCID, Default: in.Default}
			if !in.ValidUntil.IsZero() {
				msg.ValidUntil = timestamppb.New(in.ValidUntil)
			}
			resp, err := cl.Contracts.PutContract(cmd.Context(), call(cl, &pncpkiv1.PutContractRequest{Contract: msg}))
			if err != nil {
				return err
			}
			out := contractOf(resp.Msg.Contract)
			fmt.Fprintf(a.out, "contract %s of %s for %s%s\n", out.EMAID, out.Tenant, out.PCID, map[bool]string{true: " (default)"}[out.Default])
			return nil
		},
	}
	put.Flags().StringVar(&in.EMAID, "emaid", "", "the contract's EMAID (the check digit is computed when 14 characters are given)")
	put.Flags().StringVar(&in.Tenant, "tenant", "", "the eMSP tenant")
	put.Flags().StringVar(&in.PCID, "pcid", "", "the vehicle's provisioning certificate ID")
	put.Flags().BoolVar(&in.Default, "default", false, "the vehicle's default contract")
	put.Flags().IntVar(&days, "days", 0, "the contract ends after this many days (0: open-ended)")
	put.MarkFlagRequired("emaid")
	put.MarkFlagRequired("pcid")

	var tenant, pcid, output string
	list := &cobra.Command{
		Use: "list", Short: "List contracts",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.checkOutput(output, "table", "json"); err != nil {
				return err
			}
			var list []*store.Contract
			cl, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := cl.Contracts.ListContracts(cmd.Context(), call(cl, &pncpkiv1.ListContractsRequest{Tenant: tenant, Pcid: pcid}))
			if err != nil {
				return err
			}
			for _, p := range resp.Msg.Contracts {
				list = append(list, contractOf(p))
			}
			if structured(output) {
				return a.json(list)
			}
			var rows [][]string
			for _, c := range list {
				status := "active"
				if c.Cancelled() {
					status = "cancelled " + c.CancelledAt.Format(time.RFC3339)
				}
				until := "-"
				if !c.ValidUntil.IsZero() {
					until = c.ValidUntil.Format("2006-01-02")
				}
				rows = append(rows, []string{c.EMAID, c.Tenant, c.PCID, map[bool]string{true: "yes", false: "-"}[c.Default], until, status})
			}
			a.table("EMAID\tTENANT\tPCID\tDEFAULT\tVALID UNTIL\tSTATUS", rows)
			return nil
		},
	}
	list.Flags().StringVar(&tenant, "tenant", "", "only this eMSP's contracts")
	list.Flags().StringVar(&pcid, "pcid", "", "only this vehicle's contracts")
	list.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")

	var emaid string
	cancel := &cobra.Command{
		Use: "cancel", Short: "Cancel a contract and revoke its certificates (Authorize then answers ContractCancelled)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := cl.Contracts.CancelContract(cmd.Context(), call(cl, &pncpkiv1.CancelContractRequest{Emaid: emaid}))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "cancelled contract %s; %d certificates revoked\n", emaid, len(resp.Msg.Revoked))
			return nil
		},
	}
	cancel.Flags().StringVar(&emaid, "emaid", "", "the contract's EMAID")
	cancel.MarkFlagRequired("emaid")
	c.AddCommand(remote(put), remote(list), remote(cancel), remote(a.installationsCmd()), a.simulateEVCmd(), a.depositCmd(), a.budgetCmd())
	return c
}

// installationsCmd lists the installation log, newest first.
func (a *app) installationsCmd() *cobra.Command {
	var f pncpkiv1.ListInstallationsRequest
	var output string
	var limit int
	cmd := &cobra.Command{
		Use: "installations", Short: "List answered Get15118EVCertificate requests, newest first: ResponseCode, reason and answer size",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.checkOutput(output, "table", "json"); err != nil {
				return err
			}
			if limit < 1 {
				return usageError{fmt.Errorf("--limit %d: want at least 1", limit)}
			}
			cl, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			var list []*store.InstallationRecord
			for len(list) < limit {
				f.PageSize = int32(min(limit-len(list), 500))
				resp, err := cl.Contracts.ListInstallations(cmd.Context(), call(cl, &f))
				if err != nil {
					return err
				}
				for _, r := range resp.Msg.Installations {
					list = append(list, &store.InstallationRecord{Seq: r.Seq, At: r.Time.AsTime(), Station: r.Station, Action: r.Action, PCID: r.Pcid,
						EMAID: r.Emaid, EMSP: r.Emsp, OEM: r.Oem, ResponseCode: r.ResponseCode, Reason: r.Reason, Source: r.Source,
						Size: int(r.Size), Limit: int(r.SizeLimit)})
				}
				if f.PageToken = resp.Msg.NextPageToken; f.PageToken == "" {
					break
				}
			}
			if structured(output) {
				return a.json(list)
			}
			var rows [][]string
			for _, r := range list {
				size := strconv.Itoa(r.Size)
				if r.Limit > 0 {
					size += "/" + strconv.Itoa(r.Limit)
				}
				rows = append(rows, []string{r.At.Format(time.RFC3339), dash(r.Station), r.Action, dash(r.PCID), dash(r.EMAID), r.ResponseCode, dash(r.Reason), dash(r.Source), size})
			}
			a.table("TIME\tSTATION\tACTION\tPCID\tEMAID\tRESPONSE CODE\tREASON\tANSWER\tSIZE", rows)
			return nil
		},
	}
	cmd.Flags().StringVar(&f.Tenant, "tenant", "", "only this eMSP's or OEM's installations")
	cmd.Flags().StringVar(&f.Pcid, "pcid", "", "only this vehicle's")
	cmd.Flags().StringVar(&f.Emaid, "emaid", "", "only this contract's")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many")
	cmd.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")
	return cmd
}

func contractOf(p *pncpkiv1.Contract) *store.Contract {
	c := &store.Contract{EMAID: p.Emaid, Tenant: p.Tenant, PCID: p.Pcid, Default: p.Default, CreatedAt: p.CreatedAt.AsTime()}
	if p.ValidUntil != nil {
		c.ValidUntil = p.ValidUntil.AsTime()
	}
	if p.CancelledAt != nil {
		c.CancelledAt = p.CancelledAt.AsTime()
	}
	return c
}

func (a *app) provisioningCmd() *cobra.Command {
	c := &cobra.Command{Use: "provisioning", Short: "The provisioning certificate pool: OEM provisioning certificates by PCID"}
	var file, tenant string
	put := &cobra.Command{
		Use: "put", Short: "Register a provisioning certificate (PEM file: the certificate, then up to two sub-CAs)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := readBounded(file, 64<<10)
			if err != nil {
				return err
			}
			certs, err := ocppsec.ParsePEMChain(data)
			if err != nil {
				return err
			}
			cl, done, err := a.apiAnchored(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer done()
			resp, err := cl.Provisioning.PutProvisioningCertificate(cmd.Context(), call(cl, &pncpkiv1.PutProvisioningCertificateRequest{
				Pcid: certs[0].Subject.CommonName, Pem: string(data), Tenant: tenant}))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.out, "provisioning certificate of %s registered for %s\n", resp.Msg.Certificate.Pcid, tenant)
			return nil
		},
	}
	put.Flags().StringVar(&file, "cert", "", "PEM file, - for stdin")
	put.Flags().StringVar(&tenant, "tenant", "", "the OEM tenant")
	put.MarkFlagRequired("cert")
	put.MarkFlagRequired("tenant")
	var listTenant, provOut string
	list := &cobra.Command{
		Use: "list", Short: "List registered provisioning certificates",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rows [][]string
			cl, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := cl.Provisioning.ListProvisioningCertificates(cmd.Context(), call(cl, &pncpkiv1.ListProvisioningCertificatesRequest{Tenant: listTenant}))
			if err != nil {
				return err
			}
			for _, p := range resp.Msg.Certificates {
				rows = append(rows, certRow(p.Pcid, p.Tenant, leafDER(p.Pem)))
			}
			return a.rows(provOut, "PCID\tTENANT\tSUBJECT\tNOT AFTER", rows)
		},
	}
	a.outputFlag(list, &provOut)
	list.Flags().StringVar(&listTenant, "tenant", "", "only this OEM's")
	var pcid string
	del := &cobra.Command{
		Use: "delete", Short: "Remove the provisioning certificate of a PCID",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if _, err := cl.Provisioning.DeleteProvisioningCertificate(cmd.Context(), call(cl, &pncpkiv1.DeleteProvisioningCertificateRequest{Pcid: pcid})); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "removed the provisioning certificate of %s\n", pcid)
			return nil
		},
	}
	del.Flags().StringVar(&pcid, "pcid", "", "the vehicle's PCID")
	del.MarkFlagRequired("pcid")
	c.AddCommand(remote(put), remote(list), remote(del), a.subCACmd())
	return c
}

// subCACmd manages the OEM sub-CA registry.
func (a *app) subCACmd() *cobra.Command {
	c := &cobra.Command{Use: "subca", Short: "OEM sub-CAs: registered once, they let every vehicle of the OEM install without a provisioning certificate per PCID"}
	var file, tenant string
	put := &cobra.Command{
		Use: "put", Short: "Register an OEM Sub-CA 1 or 2 certificate (register Sub-CA 1 first when there are OEM trust anchors)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := readBounded(file, 64<<10)
			if err != nil {
				return err
			}
			certs, err := ocppsec.ParsePEMChain(data)
			if err != nil {
				return err
			}
			if len(certs) != 1 {
				return fmt.Errorf("%s holds %d certificates: register one sub-CA at a time", file, len(certs))
			}
			cl, done, err := a.apiAnchored(cmd.Context(), "")
			if err != nil {
				return err
			}
			defer done()
			resp, err := cl.Provisioning.RegisterOEMSubCA(cmd.Context(), call(cl, &pncpkiv1.RegisterOEMSubCARequest{Pem: string(data), Tenant: tenant}))
			if err != nil {
				return err
			}
			fp := resp.Msg.SubCa.Sha256
			fmt.Fprintf(a.out, "OEM sub-CA %s (%s) registered for %s\n", certs[0].Subject, fp, tenant)
			return nil
		},
	}
	put.Flags().StringVar(&file, "cert", "", "PEM file of the sub-CA, - for stdin")
	put.Flags().StringVar(&tenant, "tenant", "", "the OEM tenant")
	put.MarkFlagRequired("cert")
	put.MarkFlagRequired("tenant")
	var listTenant string
	list := &cobra.Command{
		Use: "list", Short: "List registered OEM sub-CAs",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rows [][]string
			cl, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := cl.Provisioning.ListOEMSubCAs(cmd.Context(), call(cl, &pncpkiv1.ListOEMSubCAsRequest{Tenant: listTenant}))
			if err != nil {
				return err
			}
			for _, s := range resp.Msg.SubCas {
				rows = append(rows, certRow(s.Sha256, s.Tenant, leafDER(s.Pem)))
			}
			a.table("SHA256\tTENANT\tSUBJECT\tNOT AFTER", rows)
			return nil
		},
	}
	list.Flags().StringVar(&listTenant, "tenant", "", "only this OEM's")
	var fp string
	del := &cobra.Command{
		Use: "delete", Short: "Remove a registered OEM sub-CA",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if _, err := cl.Provisioning.DeleteOEMSubCA(cmd.Context(), call(cl, &pncpkiv1.DeleteOEMSubCARequest{Sha256: fp})); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "removed OEM sub-CA %s\n", fp)
			return nil
		},
	}
	del.Flags().StringVar(&fp, "sha256", "", "the sub-CA's SHA-256 fingerprint (from list)")
	del.MarkFlagRequired("sha256")
	c.AddCommand(remote(put), remote(list), remote(del))
	return c
}

// depositCmd manages the signed contract data eMSPs with their own MO PKI
// deposit for vehicles.
func (a *app) depositCmd() *cobra.Command {
	c := &cobra.Command{Use: "deposit", Short: "Signed contract data of eMSPs with their own MO PKI: pncpki answers the vehicle with it as the CPS"}
	var pcid, chainFile, encKey, dhKey, tenant, anchorsDir string
	put := &cobra.Command{
		Use: "put", Short: "Deposit a vehicle's contract chain, encrypted key and DH public key",
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := readBounded(chainFile, 64<<10)
			if err != nil {
				return err
			}
			if _, err := ocppsec.ParsePEMChain(data); err != nil {
				return err
			}
			enc, err1 := hexOrBase64(encKey)
			dh, err2 := hexOrBase64(dhKey)
			if err := errors.Join(err1, err2); err != nil {
				return err
			}
			cl, done, err := a.apiAnchored(cmd.Context(), anchorsDir)
			if err != nil {
				return err
			}
			defer done()
			resp, err := cl.Contracts.PutContractDeposit(cmd.Context(), call(cl, &pncpkiv1.PutContractDepositRequest{
				Pcid: pcid, ChainPem: string(data), EncryptedKey: enc, DhPublicKey: dh, Tenant: tenant}))
			if err != nil {
				return err
			}
			emaid := resp.Msg.Deposit.Emaid
			fmt.Fprintf(a.out, "contract data of %s deposited for %s by %s\n", emaid, pcid, tenant)
			return nil
		},
	}
	put.Flags().StringVar(&pcid, "pcid", "", "the vehicle's PCID")
	put.Flags().StringVar(&chainFile, "chain", "", "PEM file: the contract certificate, then up to two sub-CAs")
	put.Flags().StringVar(&encKey, "encrypted-key", "", "ContractSignatureEncryptedPrivateKey, 48 bytes in hex or base64")
	put.Flags().StringVar(&dhKey, "dh-public-key", "", "DHpublickey, 65 bytes in hex or base64")
	put.Flags().StringVar(&tenant, "tenant", "", "the eMSP tenant")
	put.Flags().StringVar(&anchorsDir, "trust-anchors", "", "pncd's --trust-anchors directory: the chain must lead to an MO root there or of the data directory")
	for _, f := range []string{"pcid", "chain", "encrypted-key", "dh-public-key", "tenant"} {
		put.MarkFlagRequired(f)
	}
	var listTenant string
	list := &cobra.Command{
		Use: "list", Short: "List deposits",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var rows [][]string
			cl, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := cl.Contracts.ListContractDeposits(cmd.Context(), call(cl, &pncpkiv1.ListContractDepositsRequest{Tenant: listTenant}))
			if err != nil {
				return err
			}
			for _, d := range resp.Msg.Deposits {
				rows = append(rows, []string{d.Pcid, d.Emaid, d.Tenant, d.CreatedAt.AsTime().Format(time.RFC3339)})
			}
			a.table("PCID\tEMAID\tTENANT\tDEPOSITED", rows)
			return nil
		},
	}
	list.Flags().StringVar(&listTenant, "tenant", "", "only this eMSP's")
	var delPCID string
	del := &cobra.Command{
		Use: "delete", Short: "Remove the deposit of a PCID",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cl, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if _, err := cl.Contracts.DeleteContractDeposit(cmd.Context(), call(cl, &pncpkiv1.DeleteContractDepositRequest{Pcid: delPCID})); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "removed the deposit for %s\n", delPCID)
			return nil
		},
	}
	del.Flags().StringVar(&delPCID, "pcid", "", "the vehicle's PCID")
	del.MarkFlagRequired("pcid")
	c.AddCommand(remote(put), remote(list), remote(del))
	return c
}

// hexOrBase64 decodes a value given in hex or standard base64.
func hexOrBase64(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil {
		return b, nil
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%q is neither hex nor base64", s)
	}
	return b, nil
}

// certRow is a list row of a registered certificate: its key (PCID or
// fingerprint), tenant, subject and end, "-" for what does not parse.
func certRow(key, tenant string, der []byte) []string {
	subject, notAfter := "-", "-"
	if c, err := x509.ParseCertificate(der); err == nil {
		subject, notAfter = ca.FormatName(c.RawSubject), c.NotAfter.Format("2006-01-02")
	}
	return []string{key, tenant, subject, notAfter}
}

// leafDER is the first certificate of a PEM chain as the API returns it
// (nil when there is none).
func leafDER(pemText string) []byte {
	certs, _ := ocppsec.ParsePEMChain([]byte(pemText))
	if len(certs) == 0 {
		return nil
	}
	return certs[0].Raw
}
