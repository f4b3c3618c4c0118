-- Tools over MCP (DESIGN 10.5): approvals of calls to `confirm` tools, decided by a card
-- click on any replica, and a record of every tool call.
CREATE TABLE tool_approvals (
    id                TEXT   PRIMARY KEY,
    room_id           TEXT   NOT NULL,
    asker_person_id   TEXT   NOT NULL,
    asker_email       TEXT   NOT NULL,
    server            TEXT   NOT NULL,
    tool              TEXT   NOT NULL,
    arguments_sha256  TEXT   NOT NULL,
    created_at        BIGINT NOT NULL,
    -- NULL while waiting; then 'approve', 'deny' or 'expired', set once.
    decision          TEXT,
    decided_by        TEXT,
    decided_at        BIGINT
);
CREATE INDEX tool_approvals_created ON tool_approvals (created_at);

-- One row per call the model asked for. Arguments only as a digest unless
-- TOOLS_LOG_ARGUMENTS=true.
CREATE TABLE tool_calls (
    id                BIGSERIAL PRIMARY KEY,
    called_at         BIGINT NOT NULL,
    person_email      TEXT   NOT NULL,
    room_id           TEXT   NOT NULL,
    server            TEXT   NOT NULL,
    tool              TEXT   NOT NULL,
    outcome           TEXT   NOT NULL,
    duration_ms       BIGINT NOT NULL,
    arguments_sha256  TEXT   NOT NULL,
    arguments         TEXT
);
CREATE INDEX tool_calls_called_at ON tool_calls (called_at);
