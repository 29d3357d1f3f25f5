package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	pncpkiv1 "github.com/pncpki/pncpki/api/gen/pncpki/v1"
	"github.com/pncpki/pncpki/ocppsec"
	"github.com/pncpki/pncpki/store"
)

func (a *app) stationsCmd() *cobra.Command {
	c := &cobra.Command{Use: "stations", Short: "Manage the charging station registry the OCPP bridge checks CSRs against"}
	var st store.Station
	put := &cobra.Command{
		Use: "put", Short: "Register a station or replace its registration",
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now().UTC()
			st.CreatedAt, st.UpdatedAt = now, now
			if err := ocppsec.NormalizeStation(&st); err != nil {
				return err
			}
			c, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if _, err := c.Stations.PutStation(cmd.Context(), call(c, &pncpkiv1.PutStationRequest{Station: &pncpkiv1.Station{Id: st.ID, Tenant: st.Tenant,
				SerialNumber: st.SerialNumber, EvseIds: st.EVSEIDs, SeccIds: st.SECCIDs, OcppVersion: st.OCPPVersion, ExiResponseLimit: int32(st.EXIResponseLimit)}})); err != nil {
				return err
			}
			a.printStation(&st)
			return nil
		},
	}
	put.Flags().StringVar(&st.ID, "id", "", "OCPP identity (the last segment of the station's WebSocket URL)")
	put.Flags().StringVar(&st.Tenant, "tenant", "", "owning CPO tenant")
	put.Flags().StringVar(&st.SerialNumber, "serial", "", "charge box serial number (CN of its OCPP certificate)")
	put.Flags().StringSliceVar(&st.EVSEIDs, "evse-id", nil, "EVSEIDs of its EVSEs, e.g. DE*ABC*E0001")
	put.Flags().StringSliceVar(&st.SECCIDs, "secc-id", nil, "SECC IDs of its SECCs")
	put.Flags().StringVar(&st.OCPPVersion, "ocpp", "2.0.1", "OCPP version: 1.6, 2.0.1 or 2.1")
	put.Flags().IntVar(&st.EXIResponseLimit, "exi-response-limit", 0, "longest exiResponse (base64 characters) the station takes, e.g. 7500 (default: its OCPP version's, or what it reports)")
	put.MarkFlagRequired("id")
	put.MarkFlagRequired("tenant")
	var tenant, output string
	list := &cobra.Command{
		Use: "list", Short: "List stations",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.checkOutput(output, "table", "json"); err != nil {
				return err
			}
			list, err := a.listStations(cmd, tenant)
			if err != nil {
				return err
			}
			if structured(output) {
				return a.json(list)
			}
			var rows [][]string
			for _, s := range list {
				rows = append(rows, []string{s.ID, s.Tenant, dash(s.SerialNumber), s.OCPPVersion, exiLimitText(s.EXIResponseLimit),
					dash(strings.Join(append(append([]string(nil), s.EVSEIDs...), s.SECCIDs...), ","))})
			}
			a.table("ID\tTENANT\tSERIAL\tOCPP\tEXI LIMIT\tEVSEIDS / SECC IDS", rows)
			return nil
		},
	}
	list.Flags().StringVar(&tenant, "tenant", "", "only this tenant's stations")
	list.Flags().StringVarP(&output, "output", "o", "table", "table, json or yaml")
	var showID, showOut string
	show := &cobra.Command{
		Use: "show", Short: "Show a station with the certificates it holds and pncpki's unanswered calls to it",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.checkOutput(showOut, "table", "json"); err != nil {
				return err
			}
			c, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			resp, err := c.Stations.GetStation(cmd.Context(), call(c, &pncpkiv1.GetStationRequest{Id: showID}))
			if err != nil {
				return err
			}
			st := stationOf(resp.Msg.Station)
			type installed struct {
				Type           string    `json:"type"`
				HashAlgorithm  string    `json:"hash_algorithm"`
				IssuerNameHash string    `json:"issuer_name_hash"`
				IssuerKeyHash  string    `json:"issuer_key_hash"`
				SerialNumber   string    `json:"serial_number"`
				SeenAt         time.Time `json:"seen_at"`
			}
			type pending struct {
				ID      string    `json:"id"`
				Action  string    `json:"action"`
				Created time.Time `json:"created"`
			}
			out := struct {
				*store.Station
				Installed    []installed `json:"installed"`
				PendingCalls []pending   `json:"pending_calls"`
			}{Station: st, Installed: []installed{}, PendingCalls: []pending{}}
			for _, i := range resp.Msg.Installed {
				out.Installed = append(out.Installed, installed{i.Type, i.HashAlgorithm, i.IssuerNameHash, i.IssuerKeyHash, i.SerialNumber, i.SeenAt.AsTime()})
			}
			for _, p := range resp.Msg.PendingCalls {
				out.PendingCalls = append(out.PendingCalls, pending{p.Id, p.Action, p.Created.AsTime()})
			}
			if structured(showOut) {
				return a.json(out)
			}
			a.printStation(st)
			var rows [][]string
			for _, i := range out.Installed {
				rows = append(rows, []string{i.Type, i.SerialNumber, i.IssuerKeyHash, i.SeenAt.Format(time.RFC3339)})
			}
			a.table("INSTALLED\tSERIAL\tISSUER KEY HASH\tSEEN", rows)
			rows = nil
			for _, p := range out.PendingCalls {
				rows = append(rows, []string{p.ID, p.Action, p.Created.Format(time.RFC3339)})
			}
			a.table("PENDING CALL\tACTION\tSENT", rows)
			return nil
		},
	}
	show.Flags().StringVar(&showID, "id", "", "station identity")
	show.Flags().StringVarP(&showOut, "output", "o", "table", "table, json or yaml")
	show.MarkFlagRequired("id")
	var id string
	del := &cobra.Command{
		Use: "delete", Short: "Remove a station from the registry",
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, done, err := a.api(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if _, err := c.Stations.DeleteStation(cmd.Context(), call(c, &pncpkiv1.DeleteStationRequest{Id: id})); err != nil {
				return err
			}
			fmt.Fprintf(a.out, "deleted station %s\n", id)
			return nil
		},
	}
	del.Flags().StringVar(&id, "id", "", "station identity")
	del.MarkFlagRequired("id")
	c.AddCommand(remote(put), remote(list), remote(show), remote(del))
	return c
}

func (a *app) listStations(cmd *cobra.Command, tenant string) ([]*store.Station, error) {
	c, done, err := a.api(cmd.Context())
	if err != nil {
		return nil, err
	}
	defer done()
	resp, err := c.Stations.ListStations(cmd.Context(), call(c, &pncpkiv1.ListStationsRequest{Tenant: tenant}))
	if err != nil {
		return nil, err
	}
	var out []*store.Station
	for _, s := range resp.Msg.Stations {
		out = append(out, stationOf(s))
	}
	return out, nil
}

// stationOf is the registry record of an API station.
func stationOf(s *pncpkiv1.Station) *store.Station {
	st := &store.Station{ID: s.Id, Tenant: s.Tenant, SerialNumber: s.SerialNumber, EVSEIDs: s.EvseIds, SECCIDs: s.SeccIds,
		OCPPVersion: s.OcppVersion, EXIResponseLimit: int(s.ExiResponseLimit), CreatedAt: s.CreatedAt.AsTime(), UpdatedAt: s.UpdatedAt.AsTime()}
	if s.LastSeen != nil {
		st.LastSeen = s.LastSeen.AsTime()
	}
	return st
}

// printStation prints a station's registration on one line.
func (a *app) printStation(st *store.Station) {
	fmt.Fprintf(a.out, "station %s of %s: serial %s, EVSEIDs %s, SECC IDs %s, OCPP %s, exiResponse limit %s\n", st.ID, st.Tenant, dash(st.SerialNumber),
		dash(strings.Join(st.EVSEIDs, ",")), dash(strings.Join(st.SECCIDs, ",")), st.OCPPVersion, exiLimitText(st.EXIResponseLimit))
}

// exiLimitText shows a station's exiResponse limit; 0 is its OCPP
// version's.
func exiLimitText(n int) string {
	if n == 0 {
		return "default"
	}
	return fmt.Sprint(n)
}
