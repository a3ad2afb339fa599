-- Listing a principal's sessions (the profile page, `cordon revoke -user`)
-- reads this index instead of scanning every session. It holds only the
-- principal, which never changes after Create, so Update and Touch (which
-- move last_seen) never write to it; List sorts the principal's few
-- sessions by last_seen itself.
CREATE INDEX sessions_principal ON sessions (principal);
