package demo

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Password rules. MinPassword follows OWASP ASVS 5.0 V6.2.1, which requires
// at least 8 characters and strongly recommends 15: the demo takes the
// recommendation. MaxPassword bounds the work one request can ask of the
// hash; 128 characters leaves room for any passphrase or password manager.
const (
	MinPassword = 15
	MaxPassword = 128
)

// Errors of the user store. Check them with errors.Is.
var (
	// ErrUserExists: sign-up with a name that is taken.
	ErrUserExists = errors.New("demo: user name is taken")
	// ErrBadCredentials: unknown user or wrong password; callers must not
	// tell the two apart.
	ErrBadCredentials = errors.New("demo: invalid user name or password")
	// ErrInvalid: a user name or password that breaks the rules; the
	// wrapping error says which rule, never the password.
	ErrInvalid = errors.New("demo: invalid input")
	// ErrBusy: every password-hash slot stayed taken for HashWait; the
	// client should try again shortly.
	ErrBusy = errors.New("demo: too many password checks at once")
)

// ValidateName returns nil if name is 3 to 64 of [a-z0-9_-].
func ValidateName(name string) error {
	if len(name) < 3 || len(name) > 64 {
		return fmt.Errorf("%w: user name must be 3 to 64 characters", ErrInvalid)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: user name may hold only a-z, 0-9, '_' and '-'", ErrInvalid)
		}
	}
	return nil
}

// ValidatePassword returns nil if password is valid UTF-8 of MinPassword to
// MaxPassword characters. The error never contains the password.
func ValidatePassword(password string) error {
	if !utf8.ValidString(password) {
		return fmt.Errorf("%w: password must be valid UTF-8", ErrInvalid)
	}
	n := utf8.RuneCountInString(password)
	if n < MinPassword {
		return fmt.Errorf("%w: password must be at least %d characters", ErrInvalid, MinPassword)
	}
	if n > MaxPassword {
		return fmt.Errorf("%w: password must be at most %d characters", ErrInvalid, MaxPassword)
	}
	return nil
}

// HashParams are argon2id's cost parameters.
type HashParams struct {
	Time    uint32 // passes over memory
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultHashParams are OWASP's Password Storage Cheat Sheet's first
// argon2id setting: 19 MiB of memory, 2 passes, 1 thread (about 30 ms here).
var DefaultHashParams = HashParams{Time: 2, Memory: 19 * 1024, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
)

// hashPassword returns password's argon2id hash in the PHC string format
// ($argon2id$v=19$m=...,t=...,p=...$salt$key), which records its
// parameters so that stronger ones can be chosen later without breaking
// stored hashes.
func hashPassword(password string, p HashParams, rnd io.Reader) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return "", fmt.Errorf("demo: password salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// verifyPassword reports whether password matches the PHC-format hash,
// comparing in constant time.
func verifyPassword(password, encoded string) (bool, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return false, errors.New("demo: stored password hash has an unknown format")
	}
	var p HashParams
	var th uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &th); err != nil || th == 0 || th > 255 || p.Time == 0 || p.Memory == 0 || p.Memory > 4<<20 {
		return false, errors.New("demo: stored password hash has bad parameters")
	}
	p.Threads = uint8(th)
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(key) == 0 || len(key) > 1024 {
		return false, errors.New("demo: stored password hash is not valid base64")
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// UsersOptions configure OpenUsers. The zero value is ready to use.
type UsersOptions struct {
	// Hash is the argon2id cost for new passwords. Zero: DefaultHashParams.
	Hash HashParams
	// Rand is the source of salts. Default crypto/rand.Reader.
	Rand io.Reader
	// Now stamps sign-ups. Default time.Now.
	Now func() time.Time
	// MaxHashes bounds the password hashes computed at once (each takes
	// Hash.Memory KiB while it runs): further sign-ups and log-ins wait
	// for a slot. Default: the number of CPUs Go uses, at most 4.
	MaxHashes int
	// HashWait bounds the wait for a slot; past it the call fails with
	// ErrBusy. Default 10 s.
	HashWait time.Duration
}

// Users is the demo's user database: names and argon2id password hashes in a
// SQLite file (WAL mode), in table demo_users. It may share its file with
// sqlitestore's sessions: its schema version lives in its own table
// (demo_schema), not in PRAGMA user_version, which sqlitestore owns.
type Users struct {
	db    *sql.DB
	opt   UsersOptions
	dummy string // hash of a random password, verified for unknown users
	slots chan struct{}
	// hashing, if set, is called with the number of hashes running when
	// one starts (tests).
	hashing func(running int)
}

// OpenUsers opens (creating if needed) the user database in the SQLite file
// at path and applies the embedded migrations.
func OpenUsers(path string, opt UsersOptions) (*Users, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("demo: open users %q: want the path of a file", path)
	}
	if opt.Hash == (HashParams{}) {
		opt.Hash = DefaultHashParams
	}
	if opt.Hash.Time == 0 || opt.Hash.Memory == 0 || opt.Hash.Threads == 0 {
		return nil, errors.New("demo: open users: hash parameters must all be positive")
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.MaxHashes <= 0 {
		opt.MaxHashes = min(runtime.GOMAXPROCS(0), 4)
	}
	if opt.HashWait <= 0 {
		opt.HashWait = 10 * time.Second
	}
	// The file holds password hashes: create it readable by its owner only
	// (SQLite gives its -wal and -shm files the same mode).
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("demo: open users: %w", err)
	}
	f.Close()
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("demo: open users %s: %w", path, err)
	}
	// One connection: SQLite has one writer, and sign-ups are rare.
	db.SetMaxOpenConns(1)
	u := &Users{db: db, opt: opt, slots: make(chan struct{}, opt.MaxHashes)}
	if err := u.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("demo: open users %s: %w", path, err)
	}
	var pw [24]byte
	if _, err := io.ReadFull(opt.Rand, pw[:]); err != nil {
		db.Close()
		return nil, fmt.Errorf("demo: open users: %w", err)
	}
	if u.dummy, err = hashPassword(base64.RawURLEncoding.EncodeToString(pw[:]), opt.Hash, opt.Rand); err != nil {
		db.Close()
		return nil, err
	}
	return u, nil
}

// hash runs f in one of the MaxHashes slots, waiting at most HashWait for
// one. Bounding the hashes that run at once bounds their memory: a flood
// of log-ins queues instead of allocating Hash.Memory each.
func (u *Users) hash(ctx context.Context, f func()) error {
	t := time.NewTimer(u.opt.HashWait)
	defer t.Stop()
	select {
	case u.slots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return ErrBusy
	}
	defer func() { <-u.slots }()
	if u.hashing != nil {
		u.hashing(len(u.slots))
	}
	f()
	return nil
}

// Close closes the database.
func (u *Users) Close() error { return u.db.Close() }

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") {
			return nil, fmt.Errorf("migration %q: name must be NNNN_description.sql", e.Name())
		}
		b, err := fs.ReadFile(fsys, path.Join("migrations", e.Name()))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{v, e.Name(), string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %q: version %d, want %d", m.name, m.version, i+1)
		}
	}
	return ms, nil
}

// migrate applies the embedded migrations not yet applied, in one immediate
// transaction, so two processes opening a new file cannot both apply one.
func (u *Users) migrate(ctx context.Context) error {
	ms, err := loadMigrations(migrationFiles)
	if err != nil {
		return err
	}
	tx, err := u.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS demo_schema (version INTEGER NOT NULL)`); err != nil {
		return err
	}
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM demo_schema`).Scan(&cur); err != nil {
		return err
	}
	if cur > len(ms) {
		return fmt.Errorf("user schema version %d is newer than this build knows (%d)", cur, len(ms))
	}
	for _, m := range ms[cur:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO demo_schema (version) VALUES (?)`, m.version); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Create signs up a user. It returns an error matching ErrInvalid for a
// name or password that breaks the rules, ErrUserExists if the name is taken.
func (u *Users) Create(ctx context.Context, name, password string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	if err := ValidatePassword(password); err != nil {
		return err
	}
	var h string
	var err error
	if werr := u.hash(ctx, func() { h, err = hashPassword(password, u.opt.Hash, u.opt.Rand) }); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	res, err := u.db.ExecContext(ctx, `INSERT INTO demo_users (name, password, created) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING`,
		name, h, u.opt.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("demo: create user: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("demo: create user: %w", err)
	} else if n == 0 {
		return ErrUserExists
	}
	return nil
}

// Authenticate checks name and password. An unknown (or invalid) name and
// a wrong password both return ErrBadCredentials after the same work: for
// a name with no stored hash, a dummy hash made at start-up with the same
// parameters is verified instead, so the time taken does not tell which.
func (u *Users) Authenticate(ctx context.Context, name, password string) error {
	encoded := u.dummy
	known := false
	if ValidateName(name) == nil && len(password) <= 4*MaxPassword {
		var h string
		err := u.db.QueryRowContext(ctx, `SELECT password FROM demo_users WHERE name = ?`, name).Scan(&h)
		switch {
		case err == nil:
			encoded, known = h, true
		case errors.Is(err, sql.ErrNoRows):
		default:
			return fmt.Errorf("demo: authenticate: %w", err)
		}
	} else if len(password) > 4*MaxPassword {
		password = password[:4*MaxPassword] // bound the work; it fails anyway
	}
	var ok bool
	var err error
	if werr := u.hash(ctx, func() { ok, err = verifyPassword(password, encoded) }); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	if !ok || !known {
		return ErrBadCredentials
	}
	return nil
}

// Delete removes the user; removing an absent user is not an error.
func (u *Users) Delete(ctx context.Context, name string) error {
	if _, err := u.db.ExecContext(ctx, `DELETE FROM demo_users WHERE name = ?`, name); err != nil {
		return fmt.Errorf("demo: delete user: %w", err)
	}
	return nil
}

// Exists reports whether a user with that name is signed up.
func (u *Users) Exists(ctx context.Context, name string) (bool, error) {
	var n int
	err := u.db.QueryRowContext(ctx, `SELECT count(*) FROM demo_users WHERE name = ?`, name).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("demo: user exists: %w", err)
	}
	return n > 0, nil
}

// First returns the name of the account signed up first ("" when there is
// none): the demo's administrator unless one is named.
func (u *Users) First(ctx context.Context) (string, error) {
	var name string
	err := u.db.QueryRowContext(ctx, `SELECT name FROM demo_users ORDER BY created, name LIMIT 1`).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("demo: first user: %w", err)
	}
	return name, nil
}
