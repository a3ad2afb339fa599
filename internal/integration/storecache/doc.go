// Package storecache tests store/cache across several nodes sharing a
// PostgreSQL or Redis store: how fast a revocation reaches every node, that
// the nodes agree, and that the cache fails closed while a server is down.
package storecache
