-- The outbox is a queue: rows are inserted at its end and deleted once
-- published, so autovacuum keeps finding empty pages at the table's tail and
-- truncates them. Truncating takes an ACCESS EXCLUSIVE lock, and every
-- insert and relay fetch waits behind it: during one such autovacuum under
-- 5,000 share views/s an outbox insert and a relay fetch each took 50 ms,
-- and so did the views committing with them (PostgreSQL log,
-- log_min_duration_statement, 2026-12-04). The next seconds refill those
-- pages anyway; keep them.
ALTER TABLE event_outbox SET (vacuum_truncate = off);
