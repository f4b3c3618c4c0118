-- Cards and space events (DESIGN 10.3): what an inbox event is (a message, a submitted card,
-- the bot added to a space), the answers that got feedback buttons, and the votes on them.
ALTER TABLE inbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'message';

-- A feedback card (thumbs up / down) and the answer it rates, by the card's message id.
CREATE TABLE feedback_answers (
    card_message_id      TEXT   PRIMARY KEY,
    room_id              TEXT   NOT NULL,
    conversation         TEXT   NOT NULL,
    question_message_id  TEXT   NOT NULL,
    answer               TEXT   NOT NULL,
    created_at           BIGINT NOT NULL
);

-- One vote per person and card: a second click replaces the first (the latest wins).
CREATE TABLE feedback_votes (
    card_message_id  TEXT   NOT NULL,
    person           TEXT   NOT NULL,
    value            TEXT   NOT NULL,
    voted_at         BIGINT NOT NULL,
    PRIMARY KEY (card_message_id, person)
);
CREATE INDEX feedback_votes_value ON feedback_votes (value);
