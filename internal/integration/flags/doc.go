// Package flags tests the flags package against real databases: SQLite
// through modernc.org/sqlite and PostgreSQL through pgx.
package flags
