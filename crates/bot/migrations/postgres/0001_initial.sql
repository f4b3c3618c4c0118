-- Durable inbox: every acknowledged webhook event, deduplicated by message id.
CREATE TABLE inbox (
    seq          BIGSERIAL PRIMARY KEY,
    message_id   TEXT    NOT NULL UNIQUE,
    room_id      TEXT    NOT NULL,
    payload      TEXT    NOT NULL,
    received_at  BIGINT  NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'pending',
    attempts     BIGINT  NOT NULL DEFAULT 0,
    not_before   BIGINT  NOT NULL DEFAULT 0,
    reply        TEXT,
    parts_sent   BIGINT  NOT NULL DEFAULT 0,
    outcome      TEXT,
    finished_at  BIGINT
);
CREATE INDEX inbox_pending ON inbox (state, room_id, seq);
CREATE INDEX inbox_finished ON inbox (finished_at);

-- Which process works on a room right now; keeps one conversation in order across replicas.
CREATE TABLE room_leases (
    room_id     TEXT   PRIMARY KEY,
    owner       TEXT   NOT NULL,
    expires_at  BIGINT NOT NULL
);

CREATE TABLE approved_users (
    email     TEXT   PRIMARY KEY,
    added_by  TEXT,
    added_at  BIGINT NOT NULL
);

CREATE TABLE space_settings (
    room_id      TEXT   PRIMARY KEY,
    personality  TEXT   NOT NULL,
    updated_by   TEXT,
    updated_at   BIGINT NOT NULL
);

CREATE TABLE turns (
    id            BIGSERIAL PRIMARY KEY,
    conversation  TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    content       TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL
);
CREATE INDEX turns_conversation ON turns (conversation, id);
