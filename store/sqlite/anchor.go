package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/pncpki/pncpki/store"
)

// AddTrustAnchor implements store.Store.
func (db *DB) AddTrustAnchor(ctx context.Context, a *store.TrustAnchor) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO trust_anchors(purpose, sha256, der, source, added_at) VALUES(?,?,?,?,?)`,
			a.Use, a.SHA256, a.DER, a.Source, ms(a.AddedAt)); err != nil {
			if isUnique(err) {
				return fmt.Errorf("trust anchor %s %s: %w", a.Use, a.SHA256, store.ErrExists)
			}
			return err
		}
		return db.appendAudit(ctx, tx, store.TrustAnchorAudit(ctx, store.AuditTrustAnchorAdd, a))
	})
}

// ListTrustAnchors implements store.Store.
func (db *DB) ListTrustAnchors(ctx context.Context) ([]*store.TrustAnchor, error) {
	return queryAll(ctx, db, func(row scanner) (*store.TrustAnchor, error) {
		var a store.TrustAnchor
		var added int64
		if err := row.Scan(&a.Use, &a.SHA256, &a.DER, &a.Source, &added); err != nil {
			return nil, err
		}
		a.AddedAt = fromMS(added)
		return &a, nil
	}, `SELECT purpose, sha256, der, source, added_at FROM trust_anchors ORDER BY purpose, sha256`)
}

// RemoveTrustAnchor implements store.Store.
func (db *DB) RemoveTrustAnchor(ctx context.Context, use, sha256 string) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		a := &store.TrustAnchor{Use: use, SHA256: sha256}
		err := tx.QueryRowContext(ctx, `DELETE FROM trust_anchors WHERE purpose = ? AND sha256 = ? RETURNING source`, use, sha256).Scan(&a.Source)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("trust anchor %s %s: %w", use, sha256, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, store.TrustAnchorAudit(ctx, store.AuditTrustAnchorRemove, a))
	})
}

const endpointCols = `id, tenant, url, description, events, wmis, secret, enabled, created_at, updated_at`

func scanEndpoint(row scanner) (*store.EventEndpoint, error) {
	var e store.EventEndpoint
	var events, wmis string
	var created, updated int64
	if err := row.Scan(&e.ID, &e.Tenant, &e.URL, &e.Description, &events, &wmis, &e.Secret, &e.Enabled, &created, &updated); err != nil {
		return nil, err
	}
	e.Events, e.WMIs = split(events), split(wmis)
	e.CreatedAt, e.UpdatedAt = fromMS(created), fromMS(updated)
	return &e, nil
}

// PutEventEndpoint implements store.Store.
func (db *DB) PutEventEndpoint(ctx context.Context, e *store.EventEndpoint) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		var tenant string
		err := tx.QueryRowContext(ctx, `SELECT tenant FROM event_endpoints WHERE id = ?`, e.ID).Scan(&tenant)
		switch {
		case err == nil && tenant != e.Tenant:
			return fmt.Errorf("event endpoint %s belongs to another tenant: %w", e.ID, store.ErrExists)
		case err != nil && !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO event_endpoints(`+endpointCols+`) VALUES(?,?,?,?,?,?,?,?,?,?)
			ON CONFLICT(id) DO UPDATE SET url = excluded.url, description = excluded.description, events = excluded.events,
				wmis = excluded.wmis, secret = excluded.secret, enabled = excluded.enabled, updated_at = excluded.updated_at`,
			e.ID, e.Tenant, e.URL, e.Description, join(e.Events), join(e.WMIs), e.Secret, e.Enabled, ms(e.CreatedAt), ms(e.UpdatedAt)); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, store.EventEndpointAudit(ctx, store.AuditEventEndpointPut, e))
	})
}

// EventEndpoint implements store.Store.
func (db *DB) EventEndpoint(ctx context.Context, id string) (*store.EventEndpoint, error) {
	e, err := scanEndpoint(db.queryRow(ctx, `SELECT `+endpointCols+` FROM event_endpoints WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("event endpoint %s: %w", id, store.ErrNotFound)
	}
	return e, err
}

// ListEventEndpoints implements store.Store.
func (db *DB) ListEventEndpoints(ctx context.Context, tenant string) ([]*store.EventEndpoint, error) {
	return queryAll(ctx, db, scanEndpoint, `SELECT `+endpointCols+` FROM event_endpoints WHERE ? = '' OR tenant = ? ORDER BY id`, tenant, tenant)
}

// DeleteEventEndpoint implements store.Store.
func (db *DB) DeleteEventEndpoint(ctx context.Context, id string) error {
	return db.writeTx(ctx, func(tx *sql.Tx) error {
		e, err := scanEndpoint(tx.QueryRowContext(ctx, `SELECT `+endpointCols+` FROM event_endpoints WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("event endpoint %s: %w", id, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM event_endpoints WHERE id = ?`, id); err != nil {
			return err
		}
		return db.appendAudit(ctx, tx, store.EventEndpointAudit(ctx, store.AuditEventEndpointDelete, e))
	})
}
