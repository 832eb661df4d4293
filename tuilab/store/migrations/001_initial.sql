-- tuilab schema, version 1. Applied in one transaction; PRAGMA user_version records it.

CREATE TABLE prompts (
    id          INTEGER PRIMARY KEY,
    -- The conversation up to the turn to answer: JSON list of {"role","content"}.
    messages    TEXT NOT NULL,
    -- A flat rendering for display and search (the last user turn, or the whole text).
    text        TEXT NOT NULL,
    -- sha256 of the canonical messages JSON: duplicates are detected, not doubled.
    text_hash   TEXT NOT NULL UNIQUE,
    split       TEXT NOT NULL DEFAULT 'train' CHECK (split IN ('train', 'test')),
    source      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_prompts_split ON prompts(split);

CREATE TABLE generations (
    id          INTEGER PRIMARY KEY,
    prompt_id   INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
    text        TEXT NOT NULL,
    -- Which model produced it: base model name, adapter (or ''), run and step.
    model       TEXT NOT NULL DEFAULT '',
    adapter     TEXT NOT NULL DEFAULT '',
    run_id      TEXT REFERENCES runs(id) ON DELETE SET NULL,
    step        INTEGER,
    -- 'model' (sampled here), 'import', 'edit' (a human rewrite), 'ppo'.
    origin      TEXT NOT NULL DEFAULT 'model',
    params      TEXT NOT NULL DEFAULT '{}',   -- sampling params, JSON
    n_tokens    INTEGER,
    finished    INTEGER,                      -- 1 if it stopped at EOS
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_generations_prompt ON generations(prompt_id);

CREATE TABLE comparisons (
    id           INTEGER PRIMARY KEY,
    prompt_id    INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
    left_id      INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
    right_id     INTEGER NOT NULL REFERENCES generations(id) ON DELETE CASCADE,
    -- 1 when candidate A was shown on the right (sides randomised per pair).
    swapped      INTEGER NOT NULL DEFAULT 0,
    decision     TEXT NOT NULL CHECK (decision IN ('left', 'right', 'tie', 'both_bad', 'skip')),
    -- 1 = better, 2 = much better.
    strength     INTEGER NOT NULL DEFAULT 1,
    -- TRL margin: imported as given, or derived from strength.
    margin       REAL,
    rationale    TEXT NOT NULL DEFAULT '',
    -- A human rewrite, preferred over both originals.
    edited_id    INTEGER REFERENCES generations(id) ON DELETE SET NULL,
    seconds      REAL,                        -- time to decide
    annotator    TEXT NOT NULL DEFAULT '',
    -- 'human', 'import', 'hacked' (marked in the PPO inspector).
    origin       TEXT NOT NULL DEFAULT 'human',
    run_id       TEXT REFERENCES runs(id) ON DELETE SET NULL,
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_comparisons_prompt ON comparisons(prompt_id);
CREATE INDEX idx_comparisons_decision ON comparisons(decision);
CREATE INDEX idx_comparisons_created ON comparisons(created_at);

CREATE TABLE runs (
    id            TEXT PRIMARY KEY,           -- e.g. rm-20261129-0627-3fa2
    kind          TEXT NOT NULL CHECK (kind IN ('rm', 'ppo', 'dpo')),
    name          TEXT NOT NULL DEFAULT '',
    config        TEXT NOT NULL DEFAULT '{}',  -- JSON of the config dataclass
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'paused', 'completed', 'failed', 'cancelled')),
    parents       TEXT NOT NULL DEFAULT '[]',  -- JSON list of run ids (a PPO run's reward model)
    output_dir    TEXT NOT NULL DEFAULT '',
    error         TEXT NOT NULL DEFAULT '',    -- full traceback
    error_summary TEXT NOT NULL DEFAULT '',    -- its last line, for the screen
    final_metrics TEXT NOT NULL DEFAULT '{}',
    total_steps   INTEGER,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started_at    TEXT,
    finished_at   TEXT
);
CREATE INDEX idx_runs_kind ON runs(kind, created_at);

CREATE TABLE metrics (
    run_id   TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step     INTEGER NOT NULL,
    name     TEXT NOT NULL,
    value    REAL,
    -- One value per (run, step, name): a resumed run overwrites, never duplicates.
    PRIMARY KEY (run_id, name, step)
) WITHOUT ROWID;

CREATE TABLE samples (
    id           INTEGER PRIMARY KEY,
    run_id       TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step         INTEGER NOT NULL,
    prompt_id    INTEGER REFERENCES prompts(id) ON DELETE SET NULL,
    prompt       TEXT NOT NULL,
    response     TEXT NOT NULL,
    ref_response TEXT,                          -- the reference policy's answer to the same prompt
    score        REAL,                          -- reward-model score (ensemble mean)
    spread       REAL,                          -- ensemble std
    gold         REAL,                          -- gold scorer, when configured
    kl           REAL,                          -- per-sequence KL to the reference
    length       INTEGER,                       -- response tokens
    eos          INTEGER,                       -- 1 if it stopped at EOS
    flags        TEXT NOT NULL DEFAULT '[]',    -- JSON list of flag names
    hacked       INTEGER NOT NULL DEFAULT 0,    -- marked hacked in the inspector
    created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_samples_run_step ON samples(run_id, step);

CREATE TABLE checkpoints (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step        INTEGER NOT NULL,
    path        TEXT NOT NULL,
    metrics     TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX idx_checkpoints_run ON checkpoints(run_id, step);
