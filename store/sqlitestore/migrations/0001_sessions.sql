-- Sessions, keyed by the SHA-256 of the cookie value (never the token).
-- Times are microseconds since the Unix epoch.
CREATE TABLE sessions (
	hash            BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),
	principal       TEXT NOT NULL,
	data            BLOB NOT NULL,
	version         INTEGER NOT NULL,
	created         INTEGER NOT NULL,
	last_seen       INTEGER NOT NULL,
	idle_deadline   INTEGER NOT NULL,
	expires         INTEGER NOT NULL,
	last_ip         TEXT NOT NULL,
	user_agent      TEXT NOT NULL,
	global_epoch    INTEGER NOT NULL,
	principal_epoch INTEGER NOT NULL
);

-- The store's global epoch: one row. RevokeAll increments it.
CREATE TABLE global_epoch (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	epoch INTEGER NOT NULL
);
INSERT INTO global_epoch (id, epoch) VALUES (1, 0);

-- Per-principal epochs. A principal without a row is at epoch 0;
-- RevokePrincipal increments it.
CREATE TABLE principal_epochs (
	principal TEXT PRIMARY KEY NOT NULL,
	epoch     INTEGER NOT NULL
) WITHOUT ROWID;
