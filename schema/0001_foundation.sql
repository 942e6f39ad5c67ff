-- Foundation: facts about this server that must survive restarts.

-- Key/value facts about the server itself (e.g. the server name the database was created for).
CREATE TABLE server_facts (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
