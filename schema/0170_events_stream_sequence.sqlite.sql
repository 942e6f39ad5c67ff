-- Multi-writer events stream: PostgreSQL only (a sequence). SQLite is single-process; nothing to create.
SELECT 1;
