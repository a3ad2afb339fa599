-- Listing a principal's sessions newest first (the profile page, the admin
-- page) reads this index instead of scanning every session.
CREATE INDEX sessions_principal_last_seen ON sessions (principal, last_seen DESC);
