// Package integration holds tests that run cordon's packages against real
// PostgreSQL, Redis and SQLite servers and drivers. They live in a module of
// their own so that the core module, whose packages need only the standard
// library, requires no database driver even in its tests. Run them through
// ./test.sh, which starts the servers and exports their addresses.
package integration
