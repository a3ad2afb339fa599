// Package migrate tests the schema migration runner (internal/migrate) on
// SQLite, which the root module, where the runner lives, does not require.
package migrate
