-- Usage and limits (DESIGN 10.6). Tokens of every LLM call, added into one row per UTC day,
-- person, space, provider and model, so `usage`, the daily limits and the export read few
-- rows. The cost is added at the price of the provider that answered, at the time.
CREATE TABLE usage_daily (
    day                TEXT   NOT NULL,
    person             TEXT   NOT NULL,
    space              TEXT   NOT NULL,
    provider           TEXT   NOT NULL,
    model              TEXT   NOT NULL,
    calls              BIGINT NOT NULL DEFAULT 0,
    prompt_tokens      BIGINT NOT NULL DEFAULT 0,
    completion_tokens  BIGINT NOT NULL DEFAULT 0,
    cost_nanos         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, person, space, provider, model)
);
CREATE INDEX usage_daily_space ON usage_daily (day, space);
CREATE INDEX usage_daily_person ON usage_daily (person, day);

-- USER_MESSAGES_PER_MINUTE: one row per message sent to the LLM (a retried event counts
-- once), in the minute it was first checked (minutes since the epoch, UTC). Rows older
-- than an hour are pruned as the same person sends more.
CREATE TABLE usage_messages (
    message_id  TEXT   PRIMARY KEY,
    person      TEXT   NOT NULL,
    minute      BIGINT NOT NULL
);
CREATE INDEX usage_messages_person ON usage_messages (person, minute);
