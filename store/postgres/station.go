package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

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
		if _, err := tx.Exec(ctx, `INSERT INTO stations(id, tenant, serial_number, evse_ids, secc_ids, ocpp_version, exi_response_limit, created_at, updated_at)
			VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9)
			ON CONFLICT(id) DO UPDATE SET serial_number = excluded.serial_number, evse_ids = excluded.evse_ids,
				secc_ids = excluded.secc_ids, ocpp_version = excluded.ocpp_version, exi_response_limit = excluded.exi_response_limit,
				updated_at = excluded.updated_at`,
			s.ID, s.Tenant, s.SerialNumber, nonNil(s.EVSEIDs), nonNil(s.SECCIDs), s.OCPPVersion, s.EXIResponseLimit, s.CreatedAt, s.UpdatedAt); err != nil {
			if pgCode(err) == foreignKeyViolation {
				return fmt.Errorf("station %s: tenant %s: %w", s.ID, s.Tenant, store.ErrNotFound)
			}
			return err
		}
		return appendAudit(ctx, tx, store.StationAudit(ctx, s))
	})
}

const stationCols = `id, tenant, serial_number, evse_ids, secc_ids, ocpp_version, exi_response_limit, created_at, updated_at, last_seen`

func scanStation(row pgx.Row) (*store.Station, error) {
	var s store.Station
	var seen *time.Time
	if err := row.Scan(&s.ID, &s.Tenant, &s.SerialNumber, &s.EVSEIDs, &s.SECCIDs, &s.OCPPVersion, &s.EXIResponseLimit, &s.CreatedAt, &s.UpdatedAt, &seen); err != nil {
		return nil, err
	}
	if seen != nil {
		s.LastSeen = seen.UTC()
	}
	s.EVSEIDs, s.SECCIDs = nilIfEmpty(s.EVSEIDs), nilIfEmpty(s.SECCIDs)
	s.CreatedAt, s.UpdatedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC()
	return &s, nil
}

// TouchStation implements store.Store.
func (db *DB) TouchStation(ctx context.Context, id string, at time.Time) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE stations SET last_seen = $1 WHERE id = $2 AND (last_seen IS NULL OR last_seen < $1)`, at, id)
		return err
	})
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

// PutStationCall implements store.Store.
func (db *DB) PutStationCall(ctx context.Context, c *store.StationCall) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO station_calls(station, id, action, dialect, payload, created) VALUES($1,$2,$3,$4,$5,$6)
			ON CONFLICT(station, id) DO UPDATE SET action = excluded.action, dialect = excluded.dialect, payload = excluded.payload`,
			c.Station, c.ID, c.Action, c.Dialect, c.Payload, c.Created); err != nil {
			if pgCode(err) == foreignKeyViolation {
				return fmt.Errorf("station %s: %w", c.Station, store.ErrNotFound)
			}
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM station_calls WHERE station = $1 AND seq NOT IN
			(SELECT seq FROM station_calls WHERE station = $1 ORDER BY seq DESC LIMIT $2)`, c.Station, store.MaxStationCalls)
		return err
	})
}

const stationCallCols = `station, id, action, dialect, payload, created`

func scanStationCall(row pgx.Row) (*store.StationCall, error) {
	var c store.StationCall
	if err := row.Scan(&c.Station, &c.ID, &c.Action, &c.Dialect, &c.Payload, &c.Created); err != nil {
		return nil, err
	}
	c.Created = c.Created.UTC()
	return &c, nil
}

// StationCall implements store.Store.
func (db *DB) StationCall(ctx context.Context, station, id string) (*store.StationCall, error) {
	c, err := scanStationCall(db.pool.QueryRow(ctx, `SELECT `+stationCallCols+` FROM station_calls WHERE station = $1 AND id = $2`, station, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("call %s of station %s: %w", id, station, store.ErrNotFound)
	}
	return c, err
}

// StationCalls implements store.Store.
func (db *DB) StationCalls(ctx context.Context, station string) ([]*store.StationCall, error) {
	return queryAll(ctx, db.pool, scanStationCall, `SELECT `+stationCallCols+` FROM station_calls WHERE station = $1 ORDER BY seq`, station)
}

// FinishStationCall implements store.Store.
func (db *DB) FinishStationCall(ctx context.Context, station, id string, r store.StationCallResult) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		if id != "" {
			b.Queue(`DELETE FROM station_calls WHERE station = $1 AND id = $2`, station, id)
		}
		if len(r.ReplaceTypes) > 0 {
			b.Queue(`DELETE FROM station_certificates WHERE station = $1 AND type = ANY($2)`, station, r.ReplaceTypes)
		}
		for _, c := range r.Removed {
			b.Queue(`DELETE FROM station_certificates WHERE station = $1 AND issuer_key_hash = $2 AND serial_number = $3`, station, c.IssuerKeyHash, c.SerialNumber)
		}
		for _, c := range r.Installed {
			b.Queue(`INSERT INTO station_certificates(station, type, hash_algorithm, issuer_name_hash, issuer_key_hash, serial_number, seen_at)
				VALUES($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (station, type, issuer_key_hash, serial_number)
				DO UPDATE SET hash_algorithm = excluded.hash_algorithm, issuer_name_hash = excluded.issuer_name_hash, seen_at = excluded.seen_at`,
				station, c.Type, c.HashAlgorithm, c.IssuerNameHash, c.IssuerKeyHash, c.SerialNumber, c.SeenAt)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			if pgCode(err) == foreignKeyViolation {
				return fmt.Errorf("station %s: %w", station, store.ErrNotFound)
			}
			return err
		}
		return appendAudit(ctx, tx, r.Audit...)
	})
}

// InstalledCertificates implements store.Store.
func (db *DB) InstalledCertificates(ctx context.Context, station string) ([]store.InstalledCertificate, error) {
	return queryAll(ctx, db.pool, func(row pgx.Row) (store.InstalledCertificate, error) {
		var c store.InstalledCertificate
		err := row.Scan(&c.Type, &c.HashAlgorithm, &c.IssuerNameHash, &c.IssuerKeyHash, &c.SerialNumber, &c.SeenAt)
		c.SeenAt = c.SeenAt.UTC()
		return c, err
	}, `SELECT type, hash_algorithm, issuer_name_hash, issuer_key_hash, serial_number, seen_at FROM station_certificates WHERE station = $1 ORDER BY type, serial_number`, station)
}
