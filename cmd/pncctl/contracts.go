package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/contract"
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
			var out *store.Contract
			if a.server != "" {
				cl, err := a.client()
				if err != nil {
					return err
				}
				msg := &pncpkiv1.Contract{Emaid: in.EMAID, Tenant: in.Tenant, Pcid: in.PCID, Default: in.Default}
				if !in.ValidUntil.IsZero() {
					msg.ValidUntil = timestamppb.New(in.ValidUntil)
				}
				resp, err := cl.contracts.PutContract(cmd.Context(), call(cl, &pncpkiv1.PutContractRequest{Contract: msg}))
				if err != nil {
					return err
				}
				out = contractOf(resp.Msg.Contract)
			} else {
				d, err := a.open(cmd.Context(), false)
				if err != nil {
					return err
				}
				defer d.Close()
				if out, err = (&contract.Pool{Store: d.Store, CA: d.CA}).Put(cmd.Context(), "", in); err != nil {
					return err
				}
			}
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
			if err := checkOutput(output, "table", "json"); err != nil {
				return err
			}
			var list []*store.Contract
			if a.server != "" {
				cl, err := a.client()
				if err != nil {
					return err
				}
				resp, err := cl.contracts.ListContracts(cmd.Context(), call(cl, &pncpkiv1.ListContractsRequest{Tenant: tenant, Pcid: pcid}))
				if err != nil {
					return err
				}
				for _, p := range resp.Msg.Contracts {
					list = append(list, contractOf(p))
				}
			} else {
				d, err := a.open(cmd.Context(), false)
				if err != nil {
					return err
				}
				defer d.Close()
				if list, err = d.Store.ListContracts(cmd.Context(), tenant, pcid); err != nil {
					return err
				}
			}
			if output == "json" {
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
	list.Flags().StringVarP(&output, "output", "o", "table", "table or json")

	var emaid string
	cancel := &cobra.Command{
		Use: "cancel", Short: "Cancel a contract and revoke its certificates (Authorize then answers ContractCancelled)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			var n int
			if a.server != "" {
				cl, err := a.client()
				if err != nil {
					return err
				}
				resp, err := cl.contracts.CancelContract(cmd.Context(), call(cl, &pncpkiv1.CancelContractRequest{Emaid: emaid}))
				if err != nil {
					return err
				}
				n = len(resp.Msg.Revoked)
			} else {
				d, err := a.open(cmd.Context(), false)
				if err != nil {
					return err
				}
				defer d.Close()
				_, revoked, err := (&contract.Pool{Store: d.Store, CA: d.CA}).Cancel(cmd.Context(), "", emaid)
				if err != nil {
					return err
				}
				n = len(revoked)
			}
			fmt.Fprintf(a.out, "cancelled contract %s; %d certificates revoked\n", emaid, n)
			return nil
		},
	}
	cancel.Flags().StringVar(&emaid, "emaid", "", "the contract's EMAID")
	cancel.MarkFlagRequired("emaid")
	c.AddCommand(remote(put), remote(list), remote(cancel))
	return c
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
