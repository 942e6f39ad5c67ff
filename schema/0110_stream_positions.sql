-- Workers (docs/workers.md): the position each writer instance has finished on each stream.
-- Written by the writer shortly after its positions advance; read by other processes to catch
-- up after a replication gap (a lost Redis message or a reconnect costs latency, never a row).
CREATE TABLE stream_positions (
    stream TEXT NOT NULL,
    instance TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (stream, instance)
);
