package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pncpki/pncpki/store"
)

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// PutContract implements store.Store.
func (db *DB) PutContract(ctx context.Context, c *store.Contract) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		old, err := scanContract(tx.QueryRow(ctx, `SELECT `+contractCols+` FROM contracts WHERE emaid = $1 FOR UPDATE`, c.EMAID))
		switch {
		case err == nil && old.Tenant != c.Tenant:
			return fmt.Errorf("contract %s belongs to another tenant: %w", c.EMAID, store.ErrExists)
		case err == nil && old.Cancelled():
			return fmt.Errorf("contract %s is cancelled: %w", c.EMAID, store.ErrExists)
		case err == nil:
			c.CreatedAt = old.CreatedAt
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if c.Default {
			if _, err := tx.Exec(ctx, `UPDATE contracts SET is_default = false WHERE pcid = $1 AND emaid <> $2`, c.PCID, c.EMAID); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO contracts(emaid, tenant, pcid, is_default, valid_until, created_at) VALUES($1,$2,$3,$4,$5,$6)
			ON CONFLICT(emaid) DO UPDATE SET pcid = excluded.pcid, is_default = excluded.is_default, valid_until = excluded.valid_until`,
			c.EMAID, c.Tenant, c.PCID, c.Default, nullTime(c.ValidUntil), c.CreatedAt); err != nil {
			if pgCode(err) == foreignKeyViolation {
				return fmt.Errorf("contract %s: tenant %s: %w", c.EMAID, c.Tenant, store.ErrNotFound)
			}
			return err
		}
		return appendAudit(ctx, tx, store.ContractAudit(ctx, c))
	})
}

const contractCols = `emaid, tenant, pcid, is_default, valid_until, created_at, cancelled_at`

func scanContract(row pgx.Row) (*store.Contract, error) {
	var c store.Contract
	var until, cancelled *time.Time
	if err := row.Scan(&c.EMAID, &c.Tenant, &c.PCID, &c.Default, &until, &c.CreatedAt, &cancelled); err != nil {
		return nil, err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	if until != nil {
		c.ValidUntil = until.UTC()
	}
	if cancelled != nil {
		c.CancelledAt = cancelled.UTC()
	}
	return &c, nil
}

// Contract implements store.Store.
func (db *DB) Contract(ctx context.Context, emaid string) (*store.Contract, error) {
	c, err := scanContract(db.pool.QueryRow(ctx, `SELECT `+contractCols+` FROM contracts WHERE emaid = $1`, emaid))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("contract %s: %w", emaid, store.ErrNotFound)
	}
	return c, err
}

// ListContracts implements store.Store.
func (db *DB) ListContracts(ctx context.Context, tenant, pcid string) ([]*store.Contract, error) {
	return queryAll(ctx, db.pool, scanContract, `SELECT `+contractCols+` FROM contracts
		WHERE ($1 = '' OR tenant = $1) AND ($2 = '' OR pcid = $2) ORDER BY emaid`, tenant, pcid)
}

// CancelContract implements store.Store.
func (db *DB) CancelContract(ctx context.Context, emaid string, at time.Time) (*store.Contract, error) {
	var c *store.Contract
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		var err error
		c, err = scanContract(tx.QueryRow(ctx, `SELECT `+contractCols+` FROM contracts WHERE emaid = $1 FOR UPDATE`, emaid))
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("contract %s: %w", emaid, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		if c.Cancelled() {
			return nil
		}
		c.CancelledAt, c.Default = at.UTC().Truncate(time.Microsecond), false
		if _, err := tx.Exec(ctx, `UPDATE contracts SET cancelled_at = $1, is_default = false WHERE emaid = $2`, c.CancelledAt, emaid); err != nil {
			return err
		}
		return appendAudit(ctx, tx, &store.AuditEntry{Actor: store.ActorFrom(ctx), Action: store.AuditContractCancel, Object: emaid, Detail: "{}"})
	})
	return c, err
}

// PutProvisioningCertificate implements store.Store.
func (db *DB) PutProvisioningCertificate(ctx context.Context, p *store.ProvisioningCertificate) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		var tenant string
		err := tx.QueryRow(ctx, `SELECT tenant FROM provisioning_certificates WHERE pcid = $1 FOR UPDATE`, p.PCID).Scan(&tenant)
		switch {
		case err == nil && tenant != p.Tenant:
			return fmt.Errorf("PCID %s belongs to another tenant: %w", p.PCID, store.ErrExists)
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO provisioning_certificates(pcid, tenant, der, chain, created_at) VALUES($1,$2,$3,$4,$5)
			ON CONFLICT(pcid) DO UPDATE SET der = excluded.der, chain = excluded.chain, created_at = excluded.created_at`,
			p.PCID, p.Tenant, p.DER, append([]byte{}, p.Chain...), p.CreatedAt); err != nil {
			if pgCode(err) == foreignKeyViolation {
				return fmt.Errorf("PCID %s: tenant %s: %w", p.PCID, p.Tenant, store.ErrNotFound)
			}
			return err
		}
		return appendAudit(ctx, tx, store.ProvisioningAudit(ctx, store.AuditProvisioningPut, p.PCID, p.Tenant, p.DER))
	})
}

func scanProvisioning(row pgx.Row) (*store.ProvisioningCertificate, error) {
	var p store.ProvisioningCertificate
	if err := row.Scan(&p.PCID, &p.Tenant, &p.DER, &p.Chain, &p.CreatedAt); err != nil {
		return nil, err
	}
	p.CreatedAt = p.CreatedAt.UTC()
	return &p, nil
}

// ProvisioningCertificate implements store.Store.
func (db *DB) ProvisioningCertificate(ctx context.Context, pcid string) (*store.ProvisioningCertificate, error) {
	p, err := scanProvisioning(db.pool.QueryRow(ctx, `SELECT pcid, tenant, der, chain, created_at FROM provisioning_certificates WHERE pcid = $1`, pcid))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("PCID %s: %w", pcid, store.ErrNotFound)
	}
	return p, err
}

// ListProvisioningCertificates implements store.Store.
func (db *DB) ListProvisioningCertificates(ctx context.Context, tenant string) ([]*store.ProvisioningCertificate, error) {
	return queryAll(ctx, db.pool, scanProvisioning, `SELECT pcid, tenant, der, chain, created_at FROM provisioning_certificates
		WHERE $1 = '' OR tenant = $1 ORDER BY pcid`, tenant)
}

// DeleteProvisioningCertificate implements store.Store.
func (db *DB) DeleteProvisioningCertificate(ctx context.Context, pcid string) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		var tenant string
		if err := tx.QueryRow(ctx, `DELETE FROM provisioning_certificates WHERE pcid = $1 RETURNING tenant`, pcid).Scan(&tenant); errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("PCID %s: %w", pcid, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		return appendAudit(ctx, tx, store.ProvisioningAudit(ctx, store.AuditProvisioningDelete, pcid, tenant, nil))
	})
}

// PutOEMSubCA implements store.Store.
func (db *DB) PutOEMSubCA(ctx context.Context, c *store.OEMSubCA) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		var tenant string
		err := tx.QueryRow(ctx, `SELECT tenant FROM oem_sub_cas WHERE sha256 = $1 FOR UPDATE`, c.SHA256).Scan(&tenant)
		switch {
		case err == nil && tenant != c.Tenant:
			return fmt.Errorf("sub-CA %s belongs to another tenant: %w", c.SHA256, store.ErrExists)
		case err == nil:
			return nil
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO oem_sub_cas(sha256, tenant, der, created_at) VALUES($1,$2,$3,$4) ON CONFLICT(sha256) DO NOTHING`,
			c.SHA256, c.Tenant, c.DER, c.CreatedAt); err != nil {
			if pgCode(err) == foreignKeyViolation {
				return fmt.Errorf("tenant %s: %w", c.Tenant, store.ErrNotFound)
			}
			return err
		}
		return appendAudit(ctx, tx, store.OEMSubCAAudit(ctx, store.AuditOEMSubCAPut, c))
	})
}

// OEMSubCAs implements store.Store.
func (db *DB) OEMSubCAs(ctx context.Context, tenant string) ([]*store.OEMSubCA, error) {
	return queryAll(ctx, db.pool, func(row pgx.Row) (*store.OEMSubCA, error) {
		var c store.OEMSubCA
		if err := row.Scan(&c.SHA256, &c.Tenant, &c.DER, &c.CreatedAt); err != nil {
			return nil, err
		}
		c.CreatedAt = c.CreatedAt.UTC()
		return &c, nil
	}, `SELECT sha256, tenant, der, created_at FROM oem_sub_cas WHERE $1 = '' OR tenant = $1 ORDER BY sha256`, tenant)
}

// DeleteOEMSubCA implements store.Store.
func (db *DB) DeleteOEMSubCA(ctx context.Context, sha256 string) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		c := &store.OEMSubCA{SHA256: sha256}
		if err := tx.QueryRow(ctx, `DELETE FROM oem_sub_cas WHERE sha256 = $1 RETURNING tenant`, sha256).Scan(&c.Tenant); errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("sub-CA %s: %w", sha256, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		return appendAudit(ctx, tx, store.OEMSubCAAudit(ctx, store.AuditOEMSubCADelete, c))
	})
}

const depositCols = `pcid, tenant, emaid, chain, encrypted_key, dh_public_key, created_at`

func scanDeposit(row pgx.Row) (*store.ContractDeposit, error) {
	var d store.ContractDeposit
	if err := row.Scan(&d.PCID, &d.Tenant, &d.EMAID, &d.Chain, &d.EncryptedKey, &d.DHPublicKey, &d.CreatedAt); err != nil {
		return nil, err
	}
	d.CreatedAt = d.CreatedAt.UTC()
	return &d, nil
}

// PutContractDeposit implements store.Store.
func (db *DB) PutContractDeposit(ctx context.Context, d *store.ContractDeposit) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		var tenant string
		err := tx.QueryRow(ctx, `SELECT tenant FROM contract_deposits WHERE pcid = $1 FOR UPDATE`, d.PCID).Scan(&tenant)
		switch {
		case err == nil && tenant != d.Tenant:
			return fmt.Errorf("PCID %s has a deposit of another tenant: %w", d.PCID, store.ErrExists)
		case err != nil && !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO contract_deposits(`+depositCols+`) VALUES($1,$2,$3,$4,$5,$6,$7)
			ON CONFLICT(pcid) DO UPDATE SET emaid = excluded.emaid, chain = excluded.chain, encrypted_key = excluded.encrypted_key,
			dh_public_key = excluded.dh_public_key, created_at = excluded.created_at`,
			d.PCID, d.Tenant, d.EMAID, d.Chain, d.EncryptedKey, d.DHPublicKey, d.CreatedAt); err != nil {
			if pgCode(err) == foreignKeyViolation {
				return fmt.Errorf("tenant %s: %w", d.Tenant, store.ErrNotFound)
			}
			return err
		}
		return appendAudit(ctx, tx, store.DepositAudit(ctx, store.AuditDepositPut, d))
	})
}

// ContractDeposit implements store.Store.
func (db *DB) ContractDeposit(ctx context.Context, pcid string) (*store.ContractDeposit, error) {
	d, err := scanDeposit(db.pool.QueryRow(ctx, `SELECT `+depositCols+` FROM contract_deposits WHERE pcid = $1`, pcid))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("deposit for %s: %w", pcid, store.ErrNotFound)
	}
	return d, err
}

// ListContractDeposits implements store.Store.
func (db *DB) ListContractDeposits(ctx context.Context, tenant string) ([]*store.ContractDeposit, error) {
	return queryAll(ctx, db.pool, scanDeposit, `SELECT `+depositCols+` FROM contract_deposits WHERE $1 = '' OR tenant = $1 ORDER BY pcid`, tenant)
}

// DeleteContractDeposit implements store.Store.
func (db *DB) DeleteContractDeposit(ctx context.Context, pcid string) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		d := &store.ContractDeposit{PCID: pcid}
		if err := tx.QueryRow(ctx, `DELETE FROM contract_deposits WHERE pcid = $1 RETURNING tenant, emaid`, pcid).Scan(&d.Tenant, &d.EMAID); errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("deposit for %s: %w", pcid, store.ErrNotFound)
		} else if err != nil {
			return err
		}
		return appendAudit(ctx, tx, store.DepositAudit(ctx, store.AuditDepositDelete, d))
	})
}

const installationCols = `seq, at, station, action, pcid, emaid, emsp, oem, response_code, reason, source, size, size_limit`

// PutInstallation implements store.Store.
func (db *DB) PutInstallation(ctx context.Context, r *store.InstallationRecord) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO installations(at, station, action, pcid, emaid, emsp, oem, response_code, reason, source, size, size_limit)
			VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12) RETURNING seq`,
			r.At, r.Station, r.Action, r.PCID, r.EMAID, r.EMSP, r.OEM, r.ResponseCode, r.Reason, r.Source, r.Size, r.Limit).Scan(&r.Seq)
	})
}

func scanInstallation(row pgx.Row) (*store.InstallationRecord, error) {
	var r store.InstallationRecord
	if err := row.Scan(&r.Seq, &r.At, &r.Station, &r.Action, &r.PCID, &r.EMAID, &r.EMSP, &r.OEM, &r.ResponseCode, &r.Reason, &r.Source, &r.Size, &r.Limit); err != nil {
		return nil, err
	}
	r.At = r.At.UTC()
	return &r, nil
}

// ListInstallations implements store.Store.
func (db *DB) ListInstallations(ctx context.Context, f store.InstallationFilter) ([]*store.InstallationRecord, error) {
	where, args := f.Where(func(i int) string { return fmt.Sprintf("$%d", i) })
	return queryAll(ctx, db.pool, scanInstallation, `SELECT `+installationCols+` FROM installations`+where+
		fmt.Sprintf(` ORDER BY seq DESC LIMIT $%d`, len(args)+1), append(args, f.Limit)...)
}
