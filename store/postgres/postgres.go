// Package postgres implements store.Store on PostgreSQL (pgx), the store
// that N pncd replicas share. It passes the same conformance suite as the
// embedded SQLite store.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pncpki/pncpki/policies"
	"github.com/pncpki/pncpki/store"
	"github.com/pncpki/pncpki/store/groupcommit"
)

// DB is a store.Store on PostgreSQL.
type DB struct {
	pool *pgxpool.Pool

	puts      *groupcommit.Queue[*putRequest]
	head      auditHead    // the committer's only
	fallbacks atomic.Int64 // batches putPipelined could not store
	stopped   chan struct{}
	closeOnce sync.Once
}

var _ store.Store = (*DB)(nil)

// Open connects to the database at url (a libpq URL or DSN; a search_path
// parameter selects the schema) and brings its schema up to date.
func Open(ctx context.Context, url string) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	db := &DB{pool: pool, puts: groupcommit.NewQueue[*putRequest](maxPutBatch, CommitDelay), stopped: make(chan struct{})}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	go db.committer()
	return db, nil
}

// Close stops the committer (the certificates queued are committed first)
// and closes the connection pool.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.puts.Close()
		<-db.stopped
		db.pool.Close()
	})
	return nil
}

var migrations = [][]string{
	{
		`CREATE TABLE tenants (
			name TEXT PRIMARY KEY,
			kind TEXT NOT NULL,
			organization TEXT NOT NULL DEFAULT '',
			operator_ids TEXT[] NOT NULL DEFAULT '{}',
			provider_ids TEXT[] NOT NULL DEFAULT '{}',
			dns_domains TEXT[] NOT NULL DEFAULT '{}'
		)`,
		`CREATE TABLE cas (
			name TEXT PRIMARY KEY,
			profile TEXT NOT NULL,
			parent TEXT NOT NULL DEFAULT '',
			cert_der BYTEA,
			key_uri TEXT NOT NULL,
			created_at TIMESTAMPTZ NOT NULL,
			crl_number BIGINT NOT NULL DEFAULT 0
		)`,
		`CREATE SEQUENCE revocation_seq`,
		`CREATE TABLE certificates (
			issuer TEXT NOT NULL REFERENCES cas(name),
			serial TEXT COLLATE "C" NOT NULL,
			profile TEXT NOT NULL,
			tenant TEXT NOT NULL DEFAULT '',
			common_name TEXT NOT NULL DEFAULT '',
			not_before TIMESTAMPTZ NOT NULL,
			not_after TIMESTAMPTZ NOT NULL,
			der BYTEA NOT NULL,
			created_at TIMESTAMPTZ NOT NULL,
			revoked_at TIMESTAMPTZ,
			reason INTEGER NOT NULL DEFAULT 0,
			revocation_seq BIGINT,
			PRIMARY KEY (issuer, serial)
		)`,
		`CREATE INDEX certificates_serial ON certificates(serial)`,
		`CREATE INDEX certificates_tenant ON certificates(tenant, created_at)`,
		`CREATE INDEX certificates_not_after ON certificates(not_after)`,
		`CREATE INDEX certificates_revocation_seq ON certificates(revocation_seq) WHERE revocation_seq IS NOT NULL`,
	},
	{
		`CREATE TABLE audit (
			seq BIGINT PRIMARY KEY,
			time TIMESTAMPTZ NOT NULL,
			actor TEXT NOT NULL,
			action TEXT NOT NULL,
			object TEXT NOT NULL,
			detail TEXT NOT NULL,
			prev_hash BYTEA,
			hash BYTEA NOT NULL
		)`,
	},
	{
		`CREATE TABLE stations (
			id TEXT PRIMARY KEY,
			tenant TEXT NOT NULL REFERENCES tenants(name),
			serial_number TEXT NOT NULL DEFAULT '',
			evse_ids TEXT[] NOT NULL DEFAULT '{}',
			secc_ids TEXT[] NOT NULL DEFAULT '{}',
			ocpp_version TEXT NOT NULL,
			created_at TIMESTAMPTZ NOT NULL,
			updated_at TIMESTAMPTZ NOT NULL
		)`,
		`CREATE INDEX stations_tenant ON stations(tenant, id)`,
	},
	{
		`CREATE TABLE station_calls (
			seq BIGSERIAL PRIMARY KEY,
			station TEXT NOT NULL REFERENCES stations(id) ON DELETE CASCADE,
			id TEXT NOT NULL,
			action TEXT NOT NULL,
			dialect TEXT NOT NULL,
			payload BYTEA NOT NULL,
			created TIMESTAMPTZ NOT NULL,
			UNIQUE (station, id)
		)`,
		`CREATE TABLE station_certificates (
			station TEXT NOT NULL REFERENCES stations(id) ON DELETE CASCADE,
			type TEXT NOT NULL,
			hash_algorithm TEXT NOT NULL,
			issuer_name_hash TEXT NOT NULL,
			issuer_key_hash TEXT NOT NULL,
			serial_number TEXT NOT NULL,
			seen_at TIMESTAMPTZ NOT NULL,
			PRIMARY KEY (station, type, issuer_key_hash, serial_number)
		)`,
	},
	{
		`CREATE TABLE token_revocations (
			id TEXT PRIMARY KEY,
			expires_at TIMESTAMPTZ NOT NULL
		)`,
	},
	{
		`CREATE TABLE contracts (
			emaid TEXT PRIMARY KEY,
			tenant TEXT NOT NULL REFERENCES tenants(name),
			pcid TEXT NOT NULL,
			is_default BOOLEAN NOT NULL DEFAULT false,
			valid_until TIMESTAMPTZ,
			created_at TIMESTAMPTZ NOT NULL,
			cancelled_at TIMESTAMPTZ
		)`,
		`CREATE INDEX contracts_pcid ON contracts(pcid)`,
		`CREATE INDEX contracts_tenant ON contracts(tenant, emaid)`,
	},
	{
		`CREATE TABLE provisioning_certificates (
			pcid TEXT PRIMARY KEY,
			tenant TEXT NOT NULL REFERENCES tenants(name),
			der BYTEA NOT NULL,
			chain BYTEA NOT NULL,
			created_at TIMESTAMPTZ NOT NULL
		)`,
		`CREATE INDEX provisioning_tenant ON provisioning_certificates(tenant, pcid)`,
	},
	{
		`CREATE TABLE oem_sub_cas (
			sha256 TEXT PRIMARY KEY,
			tenant TEXT NOT NULL REFERENCES tenants(name),
			der BYTEA NOT NULL,
			created_at TIMESTAMPTZ NOT NULL
		)`,
	},
	{
		`CREATE TABLE contract_deposits (
			pcid TEXT PRIMARY KEY,
			tenant TEXT NOT NULL REFERENCES tenants(name),
			emaid TEXT NOT NULL,
			chain BYTEA NOT NULL,
			encrypted_key BYTEA NOT NULL,
			dh_public_key BYTEA NOT NULL,
			created_at TIMESTAMPTZ NOT NULL
		)`,
		`CREATE INDEX contract_deposits_tenant ON contract_deposits(tenant, pcid)`,
	},
	{
		`CREATE TABLE oauth_clients (
			id TEXT PRIMARY KEY,
			tenant TEXT NOT NULL DEFAULT '',
			role TEXT NOT NULL,
			secret_sha256 BYTEA NOT NULL,
			created_at TIMESTAMPTZ NOT NULL,
			revoked_at TIMESTAMPTZ
		)`,
	}, {
		`CREATE INDEX certificates_common_name ON certificates(common_name)`,
	}, {
		`CREATE TABLE trust_anchors (
			purpose TEXT NOT NULL,
			sha256 TEXT NOT NULL,
			der BYTEA NOT NULL,
			source TEXT NOT NULL,
			added_at TIMESTAMPTZ NOT NULL,
			PRIMARY KEY (purpose, sha256)
		)`,
		`CREATE TABLE event_endpoints (
			id TEXT PRIMARY KEY,
			tenant TEXT NOT NULL DEFAULT '',
			url TEXT NOT NULL,
			description TEXT NOT NULL DEFAULT '',
			events TEXT[] NOT NULL,
			wmis TEXT[] NOT NULL DEFAULT '{}',
			secret TEXT NOT NULL,
			enabled BOOLEAN NOT NULL,
			created_at TIMESTAMPTZ NOT NULL,
			updated_at TIMESTAMPTZ NOT NULL
		)`,
		`CREATE INDEX event_endpoints_tenant ON event_endpoints(tenant, id)`,
	}, {
		// The primary key leads with the serial, so that it also serves
		// lookups by serial alone: the separate serial index was a second
		// random B-tree insert for every issued certificate.
		`ALTER TABLE certificates DROP CONSTRAINT certificates_pkey, ADD PRIMARY KEY (serial, issuer)`,
		`DROP INDEX certificates_serial`,
	}, {
		// A station's own exiResponse limit (base64 characters, 0: its
		// OCPP version's), registered or reported through FieldLength.
		`ALTER TABLE stations ADD COLUMN exi_response_limit INTEGER NOT NULL DEFAULT 0`,
	}, {
		// When a CA takes over issuance for its profile (rollover); NULL:
		// from its creation.
		`ALTER TABLE cas ADD COLUMN issue_from TIMESTAMPTZ`,
		// The CRLs of offline CAs, signed elsewhere and imported.
		`CREATE TABLE imported_crls (
			issuer TEXT PRIMARY KEY REFERENCES cas(name),
			der BYTEA NOT NULL,
			imported_at TIMESTAMPTZ NOT NULL
		)`,
	}, {
		// AuditActions (the tokens minted, an action's history).
		`CREATE INDEX audit_action ON audit(action, seq)`,
	}, {
		// Listing every tenant's certificates newest first, a page at a
		// time; CN prefixes bytewise.
		`CREATE INDEX certificates_created ON certificates(created_at DESC, issuer, serial)`,
		// What expires when among the unrevoked, of all tenants and of
		// one (the console's counts).
		`CREATE INDEX certificates_live_not_after ON certificates(not_after, issuer) WHERE revoked_at IS NULL`,
		`CREATE INDEX certificates_live_tenant ON certificates(tenant, not_after, issuer) WHERE revoked_at IS NULL`,
		`CREATE INDEX certificates_common_name_c ON certificates((common_name COLLATE "C"))`,
		// When a station last spoke through the proxy; NULL: never.
		`ALTER TABLE stations ADD COLUMN last_seen TIMESTAMPTZ`,
	},
	{
		// The installation log: every answered Get15118EVCertificate.
		`CREATE TABLE installations (
			seq BIGSERIAL PRIMARY KEY,
			at TIMESTAMPTZ NOT NULL,
			station TEXT NOT NULL,
			action TEXT NOT NULL,
			pcid TEXT NOT NULL,
			emaid TEXT NOT NULL,
			emsp TEXT NOT NULL,
			oem TEXT NOT NULL,
			response_code TEXT NOT NULL,
			reason TEXT NOT NULL,
			source TEXT NOT NULL,
			size INTEGER NOT NULL,
			size_limit INTEGER NOT NULL
		)`,
		`CREATE INDEX installations_emsp ON installations(emsp, seq) WHERE emsp <> ''`,
		`CREATE INDEX installations_oem ON installations(oem, seq) WHERE oem <> ''`,
		`CREATE INDEX installations_pcid ON installations(pcid, seq)`,
		`CREATE INDEX installations_emaid ON installations(emaid, seq) WHERE emaid <> ''`,
	},
}

// migrate applies the missing migrations under an advisory lock, so that
// replicas starting together do not race.
func (db *DB) migrate(ctx context.Context) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockMigrate); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS pncpki_schema (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var v int
	if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM pncpki_schema`).Scan(&v); err != nil {
		return err
	}
	for ; v < len(migrations); v++ {
		for _, s := range migrations[v] {
			if _, err := tx.Exec(ctx, s); err != nil {
				return fmt.Errorf("migration %d: %w", v+1, err)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO pncpki_schema(version) VALUES($1)`, v+1); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// writeTx runs fn in a transaction.
func (db *DB) writeTx(ctx context.Context, fn func(pgx.Tx) error) error {
	tx, err := db.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// Advisory lock keys: migrations, and the audit chain's head (every change
// appends to it, so changes that audit are serialized; revocations then
// also commit in the order of their sequence numbers, so a follower of the
// feed never skips one that commits late).
const (
	lockMigrate = 7351101
	lockAudit   = 7351103
)

// appendAudit chains entries after the log's head inside tx, holding the
// audit lock until tx ends; the inserts go in one round trip.
func appendAudit(ctx context.Context, tx pgx.Tx, entries ...*store.AuditEntry) error {
	if len(entries) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockAudit); err != nil {
		return err
	}
	var seq int64
	var prev []byte
	err := tx.QueryRow(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("audit head: %w", err)
	}
	b := &pgx.Batch{}
	for _, e := range entries {
		store.Chain(e, seq, prev)
		b.Queue(`INSERT INTO audit(seq, time, actor, action, object, detail, prev_hash, hash) VALUES($1,$2,$3,$4,$5,$6,$7,$8)`,
			e.Seq, e.Time, e.Actor, e.Action, e.Object, e.Detail, e.PrevHash, e.Hash)
		seq, prev = e.Seq, e.Hash
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("append audit: %w", err)
	}
	return nil
}

// AppendAudit implements store.Store.
func (db *DB) AppendAudit(ctx context.Context, entries ...*store.AuditEntry) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error { return appendAudit(ctx, tx, entries...) })
}

// AuditLog implements store.Store.
func (db *DB) AuditLog(ctx context.Context, after int64, limit int) ([]*store.AuditEntry, error) {
	return db.audit(ctx, `seq > $1`, after, store.PageLimit(limit))
}

// AuditActions implements store.Store.
func (db *DB) AuditActions(ctx context.Context, actions []string, after int64, limit int) ([]*store.AuditEntry, error) {
	if len(actions) == 0 {
		return nil, nil
	}
	return db.audit(ctx, `seq > $1 AND action = ANY($3)`, after, store.PageLimit(limit), actions)
}

// audit returns up to limit ($2) entries matching where, in order.
func (db *DB) audit(ctx context.Context, where string, args ...any) ([]*store.AuditEntry, error) {
	return queryAll(ctx, db.pool, func(row pgx.Row) (*store.AuditEntry, error) {
		var e store.AuditEntry
		if err := row.Scan(&e.Seq, &e.Time, &e.Actor, &e.Action, &e.Object, &e.Detail, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		e.Time = e.Time.UTC()
		return &e, nil
	}, `SELECT seq, time, actor, action, object, detail, prev_hash, hash FROM audit WHERE `+where+` ORDER BY seq LIMIT $2`, args...)
}

// AuditHead implements store.Store.
func (db *DB) AuditHead(ctx context.Context) (int64, []byte, error) {
	var seq int64
	var hash []byte
	err := db.pool.QueryRow(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&seq, &hash)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil, nil
	}
	return seq, hash, err
}

// CreateTenant implements store.Store.
func (db *DB) CreateTenant(ctx context.Context, t *policies.Tenant) error {
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO tenants(name, kind, organization, operator_ids, provider_ids, dns_domains) VALUES($1,$2,$3,$4,$5,$6)`,
			t.Name, string(t.Kind), t.Organization, nonNil(t.OperatorIDs), nonNil(t.ProviderIDs), nonNil(t.DNSDomains)); err != nil {
			return err
		}
		return appendAudit(ctx, tx, store.TenantAudit(ctx, t))
	})
	if pgCode(err) == uniqueViolation {
		return fmt.Errorf("tenant %s: %w", t.Name, store.ErrExists)
	}
	return err
}

const tenantCols = `name, kind, organization, operator_ids, provider_ids, dns_domains`

func scanTenant(row pgx.Row) (*policies.Tenant, error) {
	var t policies.Tenant
	var kind string
	if err := row.Scan(&t.Name, &kind, &t.Organization, &t.OperatorIDs, &t.ProviderIDs, &t.DNSDomains); err != nil {
		return nil, err
	}
	t.Kind = policies.TenantKind(kind)
	t.OperatorIDs, t.ProviderIDs, t.DNSDomains = nilIfEmpty(t.OperatorIDs), nilIfEmpty(t.ProviderIDs), nilIfEmpty(t.DNSDomains)
	return &t, nil
}

// Tenant implements store.Store.
func (db *DB) Tenant(ctx context.Context, name string) (*policies.Tenant, error) {
	t, err := scanTenant(db.pool.QueryRow(ctx, `SELECT `+tenantCols+` FROM tenants WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("tenant %s: %w", name, store.ErrNotFound)
	}
	return t, err
}

// queryAll runs a query and scans every row with scan.
func queryAll[T any](ctx context.Context, db *pgxpool.Pool, scan func(pgx.Row) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// Tenants implements store.Store.
func (db *DB) Tenants(ctx context.Context) ([]*policies.Tenant, error) {
	return queryAll(ctx, db.pool, scanTenant, `SELECT `+tenantCols+` FROM tenants ORDER BY name`)
}

// CreateCA implements store.Store.
func (db *DB) CreateCA(ctx context.Context, ca *store.CA) error {
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO cas(name, profile, parent, cert_der, key_uri, created_at, issue_from) VALUES($1,$2,$3,$4,$5,$6,$7)`,
			ca.Name, ca.Profile, ca.Parent, ca.CertDER, ca.KeyURI, ca.CreatedAt, nullTime(ca.IssueFrom)); err != nil {
			return err
		}
		return appendAudit(ctx, tx, store.CAAudit(ctx, ca))
	})
	if pgCode(err) == uniqueViolation {
		return fmt.Errorf("CA %s: %w", ca.Name, store.ErrExists)
	}
	return err
}

// SetCACertificate implements store.Store.
func (db *DB) SetCACertificate(ctx context.Context, name string, der []byte) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE cas SET cert_der = $1 WHERE name = $2`, der, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("CA %s: %w", name, store.ErrNotFound)
		}
		return appendAudit(ctx, tx, store.CACertificateAudit(ctx, name, der))
	})
}

// SetCAKey implements store.Store.
func (db *DB) SetCAKey(ctx context.Context, name, keyURI string) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE cas SET key_uri = $1 WHERE name = $2`, keyURI, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("CA %s: %w", name, store.ErrNotFound)
		}
		return appendAudit(ctx, tx, store.CAKeyAudit(ctx, name, keyURI))
	})
}

const caCols = `name, profile, parent, cert_der, key_uri, created_at, issue_from`

func scanCA(row pgx.Row) (*store.CA, error) {
	var ca store.CA
	var from *time.Time
	if err := row.Scan(&ca.Name, &ca.Profile, &ca.Parent, &ca.CertDER, &ca.KeyURI, &ca.CreatedAt, &from); err != nil {
		return nil, err
	}
	ca.CreatedAt = ca.CreatedAt.UTC()
	if from != nil {
		ca.IssueFrom = from.UTC()
	}
	return &ca, nil
}

// CA implements store.Store.
func (db *DB) CA(ctx context.Context, name string) (*store.CA, error) {
	ca, err := scanCA(db.pool.QueryRow(ctx, `SELECT `+caCols+` FROM cas WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("CA %s: %w", name, store.ErrNotFound)
	}
	return ca, err
}

// CAs implements store.Store.
func (db *DB) CAs(ctx context.Context) ([]*store.CA, error) {
	return queryAll(ctx, db.pool, scanCA, `SELECT `+caCols+` FROM cas ORDER BY created_at, name`)
}

// PutCertificate implements store.Store. The insert and its audit entry
// commit together.
func (db *DB) PutCertificate(ctx context.Context, c *store.Certificate) error {
	r := &putRequest{c: c, actor: store.ActorFrom(ctx), done: make(chan error, 1)}
	if err := db.puts.Put(ctx, r); err != nil {
		return err
	}
	// Once queued, the certificate may be committed even if ctx ends
	// first; it is then stored but not returned, never the reverse.
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type putRequest struct {
	c     *store.Certificate
	actor string
	done  chan error
}

// maxPutBatch bounds the certificates committed in one transaction.
const maxPutBatch = 256

// CommitDelay is the longest the committer holds a certificate for others
// to join its transaction; one that comes alone is never held
// (groupcommit). What queues while a transaction runs joins the next one
// in any case, and a transaction costs pncd little CPU (the work is
// PostgreSQL's), so the default is not to linger: bench/api.sh issued
// 4,800 to 5,700 certificates/s with 0 against 4,600 to 5,000 with 1 ms,
// at the same CPU per certificate.
var CommitDelay time.Duration

// committer commits queued certificates in batches, with their audit
// entries, until Close.
func (db *DB) committer() {
	defer close(db.stopped)
	var batch []*putRequest
	for {
		var ok bool
		if batch, ok = db.puts.Next(batch); !ok {
			return
		}
		var errs []error
		if err := db.putPipelined(batch); err == nil {
			errs = make([]error, len(batch))
		} else {
			// A duplicate serial, an unknown issuer, an audit head that
			// moved, or a lost connection: the careful path sorts it out.
			db.head = auditHead{}
			db.fallbacks.Add(1)
			errs = db.putBatch(batch)
		}
		for i, r := range batch {
			r.done <- errs[i]
		}
	}
}

// auditHead is the committer's copy of the audit log's last entry, so that
// it can chain a batch's entries without reading the head inside the
// transaction.
type auditHead struct {
	seq   int64
	hash  []byte
	known bool
}

const (
	insertCertsUnnest = `INSERT INTO certificates(issuer, serial, profile, tenant, common_name, not_before, not_after, der, created_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::bytea[], $9::timestamptz[])`
	insertAuditUnnest = `INSERT INTO audit(seq, time, actor, action, object, detail, prev_hash, hash)
		SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bytea[], $8::bytea[])`
)

// putPipelined stores a batch and its audit entries in one round trip:
// the audit lock, one insert of all certificates and one of all entries,
// chained from the cached head, in one implicit transaction. It fails as a
// whole, storing nothing, if a serial is taken, an issuer is unknown, or
// another writer appended to the audit log since the head was read (the
// first entry's sequence number is then taken). The committer then falls
// back to putBatch. Under load this is a third of the round trips and
// statements a batch takes there, which PostgreSQL's CPU and the issuing
// clients' latency both feel.
func (db *DB) putPipelined(batch []*putRequest) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !db.head.known {
		h := auditHead{known: true}
		err := db.pool.QueryRow(ctx, `SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).Scan(&h.seq, &h.hash)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("audit head: %w", err)
		}
		db.head = h
	}
	n := len(batch)
	var (
		issuer, serial, profile, tenant, cn = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		notBefore, notAfter, created        = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		der                                 = make([][]byte, n)

		seqs                          = make([]int64, n)
		times                         = make([]time.Time, n)
		actor, action, object, detail = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		prevHash, hash                = make([][]byte, n), make([][]byte, n)
	)
	seq, prev := db.head.seq, db.head.hash
	for i, r := range batch {
		c := r.c
		issuer[i], serial[i], profile[i], tenant[i], cn[i] = c.Issuer, c.Serial, c.Profile, c.Tenant, c.CommonName
		notBefore[i], notAfter[i], der[i], created[i] = c.NotBefore, c.NotAfter, c.DER, c.CreatedAt
		e := store.IssueAudit(r.actor, c)
		store.Chain(e, seq, prev)
		seqs[i], times[i], actor[i], action[i], object[i], detail[i] = e.Seq, e.Time, e.Actor, e.Action, e.Object, e.Detail
		prevHash[i], hash[i] = e.PrevHash, e.Hash
		seq, prev = e.Seq, e.Hash
	}
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, lockAudit)
	b.Queue(insertCertsUnnest, issuer, serial, profile, tenant, cn, notBefore, notAfter, der, created)
	b.Queue(insertAuditUnnest, seqs, times, actor, action, object, detail, prevHash, hash)
	if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	db.head = auditHead{seq: seq, hash: prev, known: true}
	return nil
}

// putBatch stores a batch in one transaction; if that fails as a whole
// (an unknown issuer aborts it), each certificate is tried on its own so
// that one bad request fails alone.
func (db *DB) putBatch(batch []*putRequest) []error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errs := make([]error, len(batch))
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, r := range batch {
			c := r.c
			b.Queue(`INSERT INTO certificates(issuer, serial, profile, tenant, common_name, not_before, not_after, der, created_at)
				VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9) ON CONFLICT (serial, issuer) DO NOTHING`,
				c.Issuer, c.Serial, c.Profile, c.Tenant, c.CommonName, c.NotBefore, c.NotAfter, c.DER, c.CreatedAt)
		}
		res := tx.SendBatch(ctx, b)
		var audit []*store.AuditEntry
		for i, r := range batch {
			tag, err := res.Exec()
			if err != nil {
				res.Close()
				return err
			}
			if tag.RowsAffected() == 0 {
				errs[i] = fmt.Errorf("issuer %s serial %s: %w", r.c.Issuer, r.c.Serial, store.ErrDuplicateSerial)
				continue
			}
			audit = append(audit, store.IssueAudit(r.actor, r.c))
		}
		if err := res.Close(); err != nil {
			return err
		}
		return appendAudit(ctx, tx, audit...)
	})
	if err == nil {
		return errs
	}
	if len(batch) == 1 {
		if pgCode(err) == foreignKeyViolation {
			return []error{fmt.Errorf("issuer %s: %w", batch[0].c.Issuer, store.ErrNotFound)}
		}
		return []error{fmt.Errorf("store certificate: %w", err)}
	}
	for i, r := range batch {
		errs[i] = db.putBatch([]*putRequest{r})[0]
	}
	return errs
}

const certCols = `issuer, serial, profile, tenant, common_name, not_before, not_after, der, created_at, revoked_at, reason`

func scanCert(row pgx.Row) (*store.Certificate, error) {
	var c store.Certificate
	var revoked *time.Time
	if err := row.Scan(&c.Issuer, &c.Serial, &c.Profile, &c.Tenant, &c.CommonName, &c.NotBefore, &c.NotAfter, &c.DER, &c.CreatedAt, &revoked, &c.Reason); err != nil {
		return nil, err
	}
	c.NotBefore, c.NotAfter, c.CreatedAt = c.NotBefore.UTC(), c.NotAfter.UTC(), c.CreatedAt.UTC()
	if revoked != nil {
		c.RevokedAt = revoked.UTC()
	}
	return &c, nil
}

// Certificate implements store.Store.
func (db *DB) Certificate(ctx context.Context, issuer, serial string) (*store.Certificate, error) {
	c, err := scanCert(db.pool.QueryRow(ctx, `SELECT `+certCols+` FROM certificates WHERE issuer = $1 AND serial = $2`, issuer, serial))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("certificate %s/%s: %w", issuer, serial, store.ErrNotFound)
	}
	return c, err
}

// Certificates implements store.Store.
func (db *DB) Certificates(ctx context.Context, f store.Filter) ([]*store.Certificate, error) {
	where, args := where(f)
	args = append(args, store.PageLimit(f.Limit), max(f.Offset, 0))
	q := fmt.Sprintf(`SELECT `+certCols+` FROM certificates%s%s LIMIT $%d OFFSET $%d`, where, f.OrderBy(), len(args)-1, len(args))
	return queryAll(ctx, db.pool, scanCert, q, args...)
}

// CountCertificates implements store.Store.
func (db *DB) CountCertificates(ctx context.Context, f store.Filter) (int64, error) {
	where, args := where(f)
	var n int64
	err := db.pool.QueryRow(ctx, `SELECT COUNT(*) FROM certificates`+where, args...).Scan(&n)
	return n, err
}

// ProfileCounts implements store.Store.
func (db *DB) ProfileCounts(ctx context.Context, tenant string, at time.Time) ([]store.ProfileCount, error) {
	w, args := where(store.Filter{Tenant: tenant})
	now := fmt.Sprintf("$%d", len(args)+1)
	return queryAll(ctx, db.pool, func(row pgx.Row) (store.ProfileCount, error) {
		var c store.ProfileCount
		err := row.Scan(&c.Profile, &c.Valid, &c.Expired, &c.Revoked)
		return c, err
	}, `SELECT profile, COUNT(*) FILTER (WHERE revoked_at IS NULL AND not_after >= `+now+`), COUNT(*) FILTER (WHERE revoked_at IS NULL AND not_after < `+now+`),
		COUNT(*) FILTER (WHERE revoked_at IS NOT NULL) FROM certificates`+w+` GROUP BY profile ORDER BY profile`, append(args, at)...)
}

// Histogram implements store.Store.
func (db *DB) Histogram(ctx context.Context, f store.Filter, col store.HistogramColumn, from time.Time, width time.Duration, n int) (map[string][]int64, error) {
	if col != store.HistogramExpiry && col != store.HistogramIssuance || width < time.Millisecond || n <= 0 {
		return nil, fmt.Errorf("histogram of %q in %d buckets of %s", col, n, width)
	}
	w, args := where(f)
	cond := " WHERE "
	if w != "" {
		cond = w + " AND "
	}
	k := len(args)
	args = append(args, from, width.Seconds(), from.Add(width*time.Duration(n)))
	c := string(col)
	rows, err := db.pool.Query(ctx, fmt.Sprintf(`SELECT issuer, floor(extract(epoch FROM %s - $%d) / $%d)::bigint, COUNT(*) FROM certificates%s%s >= $%d AND %s < $%d GROUP BY 1, 2`,
		c, k+1, k+2, cond, c, k+1, c, k+3), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]int64{}
	for rows.Next() {
		var issuer string
		var b, count int64
		if err := rows.Scan(&issuer, &b, &count); err != nil {
			return nil, err
		}
		if out[issuer] == nil {
			out[issuer] = make([]int64, n)
		}
		if b >= 0 && b < int64(n) {
			out[issuer][b] += count
		}
	}
	return out, rows.Err()
}

// where is f's WHERE clause. CN prefixes are compared in the C collation,
// bytewise whatever the database's default, through their own index.
func where(f store.Filter) (string, []any) {
	return f.Where(func(i int) string { return fmt.Sprintf("$%d", i) }, func(t time.Time) any { return t }, `(common_name COLLATE "C")`)
}

// Revoke implements store.Store. The audit lock, taken before the
// sequence number is drawn, makes revocations commit in sequence order.
func (db *DB) Revoke(ctx context.Context, issuer, serial string, reason int, at time.Time) (*store.Certificate, error) {
	var n int64
	err := db.writeTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockAudit); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE certificates SET revoked_at = $1, reason = $2, revocation_seq = nextval('revocation_seq')
			WHERE issuer = $3 AND serial = $4 AND revoked_at IS NULL`, at, reason, issuer, serial)
		if err != nil {
			return err
		}
		if n = tag.RowsAffected(); n == 0 {
			return nil
		}
		return appendAudit(ctx, tx, store.RevokeAudit(ctx, issuer, serial, reason, at))
	})
	if err != nil {
		return nil, fmt.Errorf("revoke %s/%s: %w", issuer, serial, err)
	}
	c, err := db.Certificate(ctx, issuer, serial)
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return c, fmt.Errorf("certificate %s/%s: %w", issuer, serial, store.ErrAlreadyRevoked)
	}
	return c, nil
}

// Revoked implements store.Store.
func (db *DB) Revoked(ctx context.Context, issuer string, notAfterFrom time.Time) ([]*store.Certificate, error) {
	return queryAll(ctx, db.pool, scanCert, `SELECT `+certCols+` FROM certificates WHERE issuer = $1 AND revoked_at IS NOT NULL AND not_after >= $2 ORDER BY revoked_at, serial`,
		issuer, notAfterFrom)
}

// Live implements store.Store.
func (db *DB) Live(ctx context.Context, issuer string, at time.Time, after string, limit int) ([]store.CertStatus, error) {
	limit = store.PageLimit(limit)
	return queryAll(ctx, db.pool, func(row pgx.Row) (store.CertStatus, error) {
		var c store.CertStatus
		var revoked *time.Time
		if err := row.Scan(&c.Serial, &c.Profile, &c.NotAfter, &revoked, &c.Reason); err != nil {
			return c, err
		}
		c.NotAfter = c.NotAfter.UTC()
		if revoked != nil {
			c.RevokedAt = revoked.UTC()
		}
		return c, nil
	}, `SELECT serial, profile, not_after, revoked_at, reason FROM certificates WHERE issuer = $1 AND serial > $2 AND not_after >= $3 ORDER BY serial LIMIT $4`,
		issuer, after, at, limit)
}

// Revocations implements store.Store.
func (db *DB) Revocations(ctx context.Context, after int64, limit int) ([]store.Revocation, error) {
	limit = store.PageLimit(limit)
	return queryAll(ctx, db.pool, func(row pgx.Row) (store.Revocation, error) {
		var r store.Revocation
		return r, row.Scan(&r.Seq, &r.Issuer, &r.Serial)
	}, `SELECT revocation_seq, issuer, serial FROM certificates WHERE revocation_seq > $1 ORDER BY revocation_seq LIMIT $2`, after, limit)
}

// RevocationCursor implements store.Store.
func (db *DB) RevocationCursor(ctx context.Context) (int64, error) {
	var n int64
	err := db.pool.QueryRow(ctx, `SELECT COALESCE(MAX(revocation_seq), 0) FROM certificates`).Scan(&n)
	return n, err
}

// NextCRLNumber implements store.Store.
func (db *DB) NextCRLNumber(ctx context.Context, issuer string) (int64, error) {
	var n int64
	err := db.pool.QueryRow(ctx, `UPDATE cas SET crl_number = crl_number + 1 WHERE name = $1 RETURNING crl_number`, issuer).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("CA %s: %w", issuer, store.ErrNotFound)
	}
	return n, err
}

// RevokeToken implements store.Store.
func (db *DB) RevokeToken(ctx context.Context, id string, expiresAt time.Time) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO token_revocations(id, expires_at) VALUES($1,$2) ON CONFLICT(id) DO NOTHING`, id, expiresAt); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM token_revocations WHERE expires_at < now()`); err != nil {
			return err
		}
		return appendAudit(ctx, tx, &store.AuditEntry{Actor: store.ActorFrom(ctx), Action: store.AuditTokenRevoke, Object: id,
			Detail: fmt.Sprintf(`{"expires_at":%q}`, expiresAt.UTC().Format(time.RFC3339))})
	})
}

// PutImportedCRL implements store.Store.
func (db *DB) PutImportedCRL(ctx context.Context, issuer string, der []byte, audit *store.AuditEntry) error {
	return db.writeTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO imported_crls(issuer, der, imported_at) VALUES($1,$2,now())
			ON CONFLICT(issuer) DO UPDATE SET der = excluded.der, imported_at = excluded.imported_at`, issuer, der); err != nil {
			return err
		}
		return appendAudit(ctx, tx, audit)
	})
}

// ImportedCRL implements store.Store.
func (db *DB) ImportedCRL(ctx context.Context, issuer string) ([]byte, error) {
	var der []byte
	err := db.pool.QueryRow(ctx, `SELECT der FROM imported_crls WHERE issuer = $1`, issuer).Scan(&der)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("imported CRL of %s: %w", issuer, store.ErrNotFound)
	}
	return der, err
}

// RevokedTokens implements store.Store.
func (db *DB) RevokedTokens(ctx context.Context, at time.Time) ([]string, error) {
	return queryAll(ctx, db.pool, func(row pgx.Row) (string, error) {
		var id string
		return id, row.Scan(&id)
	}, `SELECT id FROM token_revocations WHERE expires_at > $1`, at)
}
