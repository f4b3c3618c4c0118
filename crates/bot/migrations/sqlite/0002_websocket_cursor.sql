-- Websocket mode, per bot, in milliseconds since the epoch: when the last event arrived
-- over the socket (a reconnect or a restart fetches what was sent since then), and when
-- the bot first connected (nothing older is ever fetched: history is not answered).
CREATE TABLE websocket_cursor (
    bot_id         TEXT   PRIMARY KEY,
    last_event_at  BIGINT NOT NULL,
    first_at       BIGINT NOT NULL
);
