-- Flags and their gates, in the shape of Flipper's tables (features, gates):
-- one row per flag, one row per gate value. The SQL is portable between
-- SQLite and PostgreSQL: only TEXT columns, composite primary keys, no
-- engine-specific types.
CREATE TABLE IF NOT EXISTS cordon_flags (
    name TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS cordon_flag_gates (
    flag  TEXT NOT NULL,
    gate  TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (flag, gate, value)
);
