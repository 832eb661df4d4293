-- tuilab schema, version 2: a cancel asked for by another process (the lab's UI), for a run whose job
-- runs elsewhere (a Ray Tune trial, a `tuilab train` in a terminal, a torchrun job). The job's runner
-- reads it between updates and stops the run as a cancel from its own controls would.
CREATE TABLE cancel_requests (
    run_id       TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    requested_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
