package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/pncpki/pncpki/store"
)

// PutStation implements store.Store.
func (db *DB) PutStation(ctx context.Context, s *store.Station) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		var tenant string
		err := tx.QueryRow(ctx, `SELECT tenant FROM stations WHERE id = $1 FOR UPDATE`, s.ID).Scan(&tenant)
		switch {
		case err == nil && tenant != s.Tenant:
			return fmt.Errorf("station %s belongs to tenant %s: %w", s.ID, tenant, store.ErrExists)
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO stations(id, tenant, serial_number, evse_ids, secc_ids, ocpp_version, created_at, updated_at)
			VALUES($1,$2,$3,$4,$5,$6,$7,$8)
			ON CONFLICT(id) DO UPDATE SET serial_number = excluded.serial_number, evse_ids = excluded.evse_ids,
				secc_ids = excluded.secc_ids, ocpp_version = excluded.ocpp_version, updated_at = excluded.updated_at`,
			s.ID, s.Tenant, s.SerialNumber, nonNil(s.EVSEIDs), nonNil(s.SECCIDs), s.OCPPVersion, s.CreatedAt, s.UpdatedAt); err != nil {
			if pgCode(err) == foreignKeyViolation {
				return fmt.Errorf("station %s: tenant %s: %w", s.ID, s.Tenant, store.ErrNotFound)
			}
			return err
		}
		return appendAudit(ctx, tx, store.StationAudit(ctx, s))
	})
}

const stationCols = `id, tenant, serial_number, evse_ids, secc_ids, ocpp_version, created_at, updated_at`

func scanStation(row pgx.Row) (*store.Station, error) {
	var s store.Station
	if err := row.Scan(&s.ID, &s.Tenant, &s.SerialNumber, &s.EVSEIDs, &s.SECCIDs, &s.OCPPVersion, &s.CreatedAt, &s.UpdatedAt); err != nil {
		return nil, err
	}
	s.EVSEIDs, s.SECCIDs = nilIfEmpty(s.EVSEIDs), nilIfEmpty(s.SECCIDs)
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return &s, nil
}

// Station implements store.Store.
func (db *DB) Station(ctx context.Context, id string) (*store.Station, error) {
	s, err := scanStation(db.pool.QueryRow(ctx, `SELECT `+stationCols+` FROM stations WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("station %s: %w", id, store.ErrNotFound)
	}
	return s, err
}

// ListStations implements store.Store.
func (db *DB) ListStations(ctx context.Context, tenant string) ([]*store.Station, error) {
	if tenant == "" {
		return queryAll(ctx, db.pool, scanStation, `SELECT `+stationCols+` FROM stations ORDER BY id`)
	}
	return queryAll(ctx, db.pool, scanStation, `SELECT `+stationCols+` FROM stations WHERE tenant = $1 ORDER BY id`, tenant)
}

// DeleteStation implements store.Store.
func (db *DB) DeleteStation(ctx context.Context, id string) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM stations WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("station %s: %w", id, store.ErrNotFound)
		}
		return appendAudit(ctx, tx, store.StationDeleteAudit(ctx, id))
	})
}
