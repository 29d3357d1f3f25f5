package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/pncpki/pncpki/store"
)

// PutStation implements store.Store.
func (db *DB) PutStation(ctx context.Context, s *store.Station) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		var tenant string
		err := tx.QueryRowContext(ctx, `SELECT tenant FROM stations WHERE id = ?`, s.ID).Scan(&tenant)
		switch {
		case err == nil && tenant != s.Tenant:
			return fmt.Errorf("station %s belongs to tenant %s: %w", s.ID, tenant, store.ErrExists)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO stations(id, tenant, serial_number, evse_ids, secc_ids, ocpp_version, created_at, updated_at)
			VALUES(?,?,?,?,?,?,?,?)
			ON CONFLICT(id) DO UPDATE SET serial_number = excluded.serial_number, evse_ids = excluded.evse_ids,
				secc_ids = excluded.secc_ids, ocpp_version = excluded.ocpp_version, updated_at = excluded.updated_at`,
			s.ID, s.Tenant, s.SerialNumber, join(s.EVSEIDs), join(s.SECCIDs), s.OCPPVersion, ms(s.CreatedAt), ms(s.UpdatedAt)); err != nil {
			if isForeignKey(err) {
				return fmt.Errorf("station %s: tenant %s: %w", s.ID, s.Tenant, store.ErrNotFound)
			}
			return err
		}
		return db.appendAudit(ctx, tx, store.StationAudit(ctx, s))
	})
}

const stationCols = `id, tenant, serial_number, evse_ids, secc_ids, ocpp_version, created_at, updated_at`

func scanStation(row scanner) (*store.Station, error) {
	var s store.Station
	var evses, seccs string
	var created, updated int64
	if err := row.Scan(&s.ID, &s.Tenant, &s.SerialNumber, &evses, &seccs, &s.OCPPVersion, &created, &updated); err != nil {
		return nil, err
	}
	s.EVSEIDs, s.SECCIDs = split(evses), split(seccs)
	s.CreatedAt, s.UpdatedAt = fromMS(created), fromMS(updated)
	return &s, nil
}

// Station implements store.Store.
func (db *DB) Station(ctx context.Context, id string) (*store.Station, error) {
	s, err := scanStation(db.r.QueryRowContext(ctx, `SELECT `+stationCols+` FROM stations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("station %s: %w", id, store.ErrNotFound)
	}
	return s, err
}

// ListStations implements store.Store.
func (db *DB) ListStations(ctx context.Context, tenant string) ([]*store.Station, error) {
	if tenant == "" {
		return queryAll(ctx, db.r, scanStation, `SELECT `+stationCols+` FROM stations ORDER BY id`)
	}
	return queryAll(ctx, db.r, scanStation, `SELECT `+stationCols+` FROM stations WHERE tenant = ? ORDER BY id`, tenant)
}

// DeleteStation implements store.Store.
func (db *DB) DeleteStation(ctx context.Context, id string) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM stations WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("station %s: %w", id, store.ErrNotFound)
		}
		return db.appendAudit(ctx, tx, store.StationDeleteAudit(ctx, id))
	})
}
