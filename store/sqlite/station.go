package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

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
		if _, err := tx.ExecContext(ctx, `INSERT INTO stations(id, tenant, serial_number, evse_ids, secc_ids, ocpp_version, exi_response_limit, created_at, updated_at)
			VALUES(?,?,?,?,?,?,?,?,?)
			ON CONFLICT(id) DO UPDATE SET serial_number = excluded.serial_number, evse_ids = excluded.evse_ids,
				secc_ids = excluded.secc_ids, ocpp_version = excluded.ocpp_version, exi_response_limit = excluded.exi_response_limit,
				updated_at = excluded.updated_at`,
			s.ID, s.Tenant, s.SerialNumber, join(s.EVSEIDs), join(s.SECCIDs), s.OCPPVersion, s.EXIResponseLimit, ms(s.CreatedAt), ms(s.UpdatedAt)); err != nil {
			if isForeignKey(err) {
				return fmt.Errorf("station %s: tenant %s: %w", s.ID, s.Tenant, store.ErrNotFound)
			}
			return err
		}
		return db.appendAudit(ctx, tx, store.StationAudit(ctx, s))
	})
}

const stationCols = `id, tenant, serial_number, evse_ids, secc_ids, ocpp_version, exi_response_limit, created_at, updated_at, last_seen`

func scanStation(row scanner) (*store.Station, error) {
	var s store.Station
	var evses, seccs string
	var created, updated, seen int64
	if err := row.Scan(&s.ID, &s.Tenant, &s.SerialNumber, &evses, &seccs, &s.OCPPVersion, &s.EXIResponseLimit, &created, &updated, &seen); err != nil {
		return nil, err
	}
	s.EVSEIDs, s.SECCIDs = split(evses), split(seccs)
	s.CreatedAt, s.UpdatedAt, s.LastSeen = fromMS(created), fromMS(updated), fromMSOrZero(seen)
	return &s, nil
}

// TouchStation implements store.Store.
func (db *DB) TouchStation(ctx context.Context, id string, at time.Time) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE stations SET last_seen = ? WHERE id = ? AND last_seen < ?`, ms(at), id, ms(at))
		return err
	})
}

// Station implements store.Store.
func (db *DB) Station(ctx context.Context, id string) (*store.Station, error) {
	s, err := scanStation(db.queryRow(ctx, `SELECT `+stationCols+` FROM stations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("station %s: %w", id, store.ErrNotFound)
	}
	return s, err
}

// ListStations implements store.Store.
func (db *DB) ListStations(ctx context.Context, tenant string) ([]*store.Station, error) {
	if tenant == "" {
		return queryAll(ctx, db, scanStation, `SELECT `+stationCols+` FROM stations ORDER BY id`)
	}
	return queryAll(ctx, db, scanStation, `SELECT `+stationCols+` FROM stations WHERE tenant = ? ORDER BY id`, tenant)
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

// PutStationCall implements store.Store.
func (db *DB) PutStationCall(ctx context.Context, c *store.StationCall) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO station_calls(station, id, action, dialect, payload, created) VALUES(?,?,?,?,?,?)
			ON CONFLICT(station, id) DO UPDATE SET action = excluded.action, dialect = excluded.dialect, payload = excluded.payload`,
			c.Station, c.ID, c.Action, c.Dialect, c.Payload, ms(c.Created)); err != nil {
			if isForeignKey(err) {
				return fmt.Errorf("station %s: %w", c.Station, store.ErrNotFound)
			}
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM station_calls WHERE station = ? AND seq NOT IN
			(SELECT seq FROM station_calls WHERE station = ? ORDER BY seq DESC LIMIT ?)`, c.Station, c.Station, store.MaxStationCalls)
		return err
	})
}

// StationCall implements store.Store.
func (db *DB) StationCall(ctx context.Context, station, id string) (*store.StationCall, error) {
	c, err := scanStationCall(db.queryRow(ctx, `SELECT `+stationCallCols+` FROM station_calls WHERE station = ? AND id = ?`, station, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("call %s of station %s: %w", id, station, store.ErrNotFound)
	}
	return c, err
}

const stationCallCols = `station, id, action, dialect, payload, created`

func scanStationCall(row scanner) (*store.StationCall, error) {
	var c store.StationCall
	var created int64
	if err := row.Scan(&c.Station, &c.ID, &c.Action, &c.Dialect, &c.Payload, &created); err != nil {
		return nil, err
	}
	c.Created = fromMS(created)
	return &c, nil
}

// StationCalls implements store.Store.
func (db *DB) StationCalls(ctx context.Context, station string) ([]*store.StationCall, error) {
	return queryAll(ctx, db, scanStationCall, `SELECT `+stationCallCols+` FROM station_calls WHERE station = ? ORDER BY seq`, station)
}

// FinishStationCall implements store.Store.
func (db *DB) FinishStationCall(ctx context.Context, station, id string, r store.StationCallResult) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		if id != "" {
			if _, err := tx.ExecContext(ctx, `DELETE FROM station_calls WHERE station = ? AND id = ?`, station, id); err != nil {
				return err
			}
		}
		for _, t := range r.ReplaceTypes {
			if _, err := tx.ExecContext(ctx, `DELETE FROM station_certificates WHERE station = ? AND type = ?`, station, t); err != nil {
				return err
			}
		}
		for _, c := range r.Removed {
			if _, err := tx.ExecContext(ctx, `DELETE FROM station_certificates WHERE station = ? AND issuer_key_hash = ? AND serial_number = ?`,
				station, c.IssuerKeyHash, c.SerialNumber); err != nil {
				return err
			}
		}
		for _, c := range r.Installed {
			_, err := tx.ExecContext(ctx, `INSERT INTO station_certificates(station, type, hash_algorithm, issuer_name_hash, issuer_key_hash, serial_number, seen_at)
				VALUES(?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET hash_algorithm = excluded.hash_algorithm, issuer_name_hash = excluded.issuer_name_hash, seen_at = excluded.seen_at`,
				station, c.Type, c.HashAlgorithm, c.IssuerNameHash, c.IssuerKeyHash, c.SerialNumber, ms(c.SeenAt))
			if isForeignKey(err) {
				return fmt.Errorf("station %s: %w", station, store.ErrNotFound)
			} else if err != nil {
				return err
			}
		}
		return db.appendAudit(ctx, tx, r.Audit...)
	})
}

// InstalledCertificates implements store.Store.
func (db *DB) InstalledCertificates(ctx context.Context, station string) ([]store.InstalledCertificate, error) {
	return queryAll(ctx, db, func(row scanner) (store.InstalledCertificate, error) {
		var c store.InstalledCertificate
		var seen int64
		err := row.Scan(&c.Type, &c.HashAlgorithm, &c.IssuerNameHash, &c.IssuerKeyHash, &c.SerialNumber, &seen)
		c.SeenAt = fromMS(seen)
		return c, err
	}, `SELECT type, hash_algorithm, issuer_name_hash, issuer_key_hash, serial_number, seen_at FROM station_certificates WHERE station = ? ORDER BY type, serial_number`, station)
}
