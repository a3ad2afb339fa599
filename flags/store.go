package flags

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cordon-sec/cordon/internal/migrate"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Dialect selects how SQL is written for a database. The queries are plain
// portable SQL; only the placeholder syntax differs.
type Dialect int

const (
	// SQLite (modernc.org/sqlite, driver name "sqlite"): "?" placeholders.
	SQLite Dialect = iota
	// Postgres (github.com/jackc/pgx/v5/stdlib, driver name "pgx"): "$n"
	// placeholders. The tests run against both.
	Postgres
)

// String returns the dialect's name.
func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "dialect(" + strconv.Itoa(int(d)) + ")"
}

// rebind rewrites the "?" placeholders of q for the dialect. cordon's
// queries contain no "?" inside string literals.
func (d Dialect) rebind(q string) string {
	if d != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// Gate kinds, as stored in cordon_flag_gates.gate.
const (
	gateBoolean    = "boolean"
	gateActors     = "actors"
	gatePercentage = "percentage_of_actors"
	gateGroups     = "groups"
)

// Errors returned for bad input.
var (
	ErrBadName       = errors.New("flags: flag name must be 1 to 200 bytes")
	ErrBadActor      = errors.New("flags: actor id must be 1 to 200 bytes")
	ErrBadPercentage = errors.New("flags: percentage must be between 0 and 100")
)

func checkName(s string, err error) error {
	if len(s) == 0 || len(s) > 200 {
		return err
	}
	return nil
}

// Migrate applies the embedded migrations that db has not seen yet, in one
// transaction, recording them in cordon_flags_schema. Open calls it.
func Migrate(ctx context.Context, db *sql.DB, d Dialect) error {
	steps, err := migrate.Load(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("flags: migrate: %w", err)
	}
	book := migrate.Table{Name: "cordon_flags_schema", Dollar: d == Postgres}
	if _, err := migrate.Up(ctx, db, book, steps, migrate.Options{Split: true}); err != nil {
		return fmt.Errorf("flags: migrate: %w", err)
	}
	return nil
}

func inTx(ctx context.Context, db *sql.DB, f func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// write runs f in a transaction after making sure the flag exists.
func (f *Flags) write(ctx context.Context, op, name string, fn func(tx *sql.Tx) error) error {
	if err := checkName(name, ErrBadName); err != nil {
		return err
	}
	err := inTx(ctx, f.db, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, f.q(`INSERT INTO cordon_flags (name) VALUES (?) ON CONFLICT DO NOTHING`), name); err != nil {
			return err
		}
		if fn == nil {
			return nil
		}
		return fn(tx)
	})
	if err != nil {
		return fmt.Errorf("flags: %s %q: %w", op, name, err)
	}
	return nil
}

func (f *Flags) q(query string) string { return f.dialect.rebind(query) }

func (f *Flags) setGate(ctx context.Context, tx *sql.Tx, name, gate, value string) error {
	_, err := tx.ExecContext(ctx,
		f.q(`INSERT INTO cordon_flag_gates (flag, gate, value) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`), name, gate, value)
	return err
}

func (f *Flags) clearGate(ctx context.Context, tx *sql.Tx, name, gate, value string) error {
	_, err := tx.ExecContext(ctx,
		f.q(`DELETE FROM cordon_flag_gates WHERE flag = ? AND gate = ? AND value = ?`), name, gate, value)
	return err
}

func (f *Flags) clearKind(ctx context.Context, tx *sql.Tx, name, gate string) error {
	_, err := tx.ExecContext(ctx, f.q(`DELETE FROM cordon_flag_gates WHERE flag = ? AND gate = ?`), name, gate)
	return err
}

// Changes are written to the database only: they reach Enabled at the next
// refresh (Refresh, or the refresher started by Run).

// Add creates a flag with every gate closed, if it does not exist.
func (f *Flags) Add(ctx context.Context, name string) error {
	return f.write(ctx, "add", name, nil)
}

// Remove deletes a flag and its gates.
func (f *Flags) Remove(ctx context.Context, name string) error {
	return f.write(ctx, "remove", name, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, f.q(`DELETE FROM cordon_flag_gates WHERE flag = ?`), name); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, f.q(`DELETE FROM cordon_flags WHERE name = ?`), name)
		return err
	})
}

// Enable opens the boolean gate: the flag is on for everyone.
func (f *Flags) Enable(ctx context.Context, name string) error {
	return f.write(ctx, "enable", name, func(tx *sql.Tx) error {
		return f.setGate(ctx, tx, name, gateBoolean, "true")
	})
}

// Disable turns the flag fully off, as Flipper's disable does: it clears
// every gate (boolean, actors, percentage and groups).
func (f *Flags) Disable(ctx context.Context, name string) error {
	return f.write(ctx, "disable", name, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, f.q(`DELETE FROM cordon_flag_gates WHERE flag = ?`), name)
		return err
	})
}

// EnableActor adds an actor to the flag's actor gate.
func (f *Flags) EnableActor(ctx context.Context, name, actor string) error {
	if err := checkName(actor, ErrBadActor); err != nil {
		return err
	}
	return f.write(ctx, "enable actor", name, func(tx *sql.Tx) error {
		return f.setGate(ctx, tx, name, gateActors, actor)
	})
}

// DisableActor removes an actor from the flag's actor gate.
func (f *Flags) DisableActor(ctx context.Context, name, actor string) error {
	if err := checkName(actor, ErrBadActor); err != nil {
		return err
	}
	return f.write(ctx, "disable actor", name, func(tx *sql.Tx) error {
		return f.clearGate(ctx, tx, name, gateActors, actor)
	})
}

// EnableGroup adds a group to the flag's group gate. The group's predicate
// is registered in code (Options.Groups); a group stored without a
// registered predicate enables nobody.
func (f *Flags) EnableGroup(ctx context.Context, name, group string) error {
	if err := checkName(group, ErrBadName); err != nil {
		return err
	}
	return f.write(ctx, "enable group", name, func(tx *sql.Tx) error {
		return f.setGate(ctx, tx, name, gateGroups, group)
	})
}

// DisableGroup removes a group from the flag's group gate.
func (f *Flags) DisableGroup(ctx context.Context, name, group string) error {
	if err := checkName(group, ErrBadName); err != nil {
		return err
	}
	return f.write(ctx, "disable group", name, func(tx *sql.Tx) error {
		return f.clearGate(ctx, tx, name, gateGroups, group)
	})
}

// SetPercentage sets the percentage of actors gate (0 to 100, up to three
// decimals are significant; 0 closes it). Which actors are in is decided by
// hashing flag name and actor id, so raising the percentage only adds
// actors.
func (f *Flags) SetPercentage(ctx context.Context, name string, percent float64) error {
	if math.IsNaN(percent) || percent < 0 || percent > 100 {
		return fmt.Errorf("%w: %v", ErrBadPercentage, percent)
	}
	return f.write(ctx, "set percentage", name, func(tx *sql.Tx) error {
		if err := f.clearKind(ctx, tx, name, gatePercentage); err != nil {
			return err
		}
		if percent == 0 {
			return nil
		}
		return f.setGate(ctx, tx, name, gatePercentage, strconv.FormatFloat(percent, 'f', -1, 64))
	})
}

// load reads every flag and gate with one statement, so the result is one
// consistent state of the database, and builds an immutable Snapshot.
func (f *Flags) load(ctx context.Context) (*Snapshot, error) {
	rows, err := f.db.QueryContext(ctx, `SELECT f.name, g.gate, g.value
FROM cordon_flags f LEFT JOIN cordon_flag_gates g ON g.flag = f.name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	s := &Snapshot{flags: make(map[string]*flag)}
	for rows.Next() {
		var name string
		var gate, value sql.NullString
		if err := rows.Scan(&name, &gate, &value); err != nil {
			return nil, err
		}
		fl := s.flags[name]
		if fl == nil {
			fl = &flag{name: name, nameCRC: crcString(0, name)}
			s.flags[name] = fl
		}
		if !gate.Valid {
			continue
		}
		switch gate.String {
		case gateBoolean:
			fl.boolean = value.String == "true"
		case gateActors:
			if fl.actors == nil {
				fl.actors = make(map[string]struct{})
			}
			fl.actors[value.String] = struct{}{}
		case gatePercentage:
			p, err := strconv.ParseFloat(value.String, 64)
			if err != nil || math.IsNaN(p) || p < 0 || p > 100 {
				return nil, fmt.Errorf("flag %q: bad percentage %q", name, value.String)
			}
			fl.percent = p
			fl.scaled = uint32(math.Round(p * scale))
		case gateGroups:
			fl.groupNames = append(fl.groupNames, value.String)
			if pred := f.groups[value.String]; pred != nil {
				fl.groups = append(fl.groups, pred)
			} else {
				s.unknownGroups++
			}
		default:
			s.unknownGates++
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return s, nil
}
