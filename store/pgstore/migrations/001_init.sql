-- Sessions are keyed by the SHA-256 of the cookie value; the fingerprint is
-- the first 16 bytes of that hash, so revoking by fingerprint is a range
-- scan of the primary key.
CREATE TABLE sessions (
	hash            bytea PRIMARY KEY CHECK (length(hash) = 32),
	principal       text NOT NULL,
	data            bytea NOT NULL,
	version         bigint NOT NULL,
	created         timestamptz NOT NULL,
	last_seen       timestamptz NOT NULL,
	idle_deadline   timestamptz NOT NULL,
	expires         timestamptz NOT NULL,
	last_ip         text NOT NULL,
	user_agent      text NOT NULL,
	global_epoch    bigint NOT NULL,
	principal_epoch bigint NOT NULL
);
CREATE INDEX sessions_principal_last_seen ON sessions (principal, last_seen DESC);
CREATE INDEX sessions_last_seen ON sessions (last_seen DESC);

-- One row: the global epoch and the revocation counter that every
-- revocation increments in its own transaction (nodes poll it).
CREATE TABLE meta (
	id             int PRIMARY KEY CHECK (id = 1),
	global_epoch   bigint NOT NULL,
	revocation_seq bigint NOT NULL
);
INSERT INTO meta (id, global_epoch, revocation_seq) VALUES (1, 0, 0);

-- A principal without a row has epoch 0.
CREATE TABLE principal_epochs (
	principal text PRIMARY KEY,
	epoch     bigint NOT NULL
);
