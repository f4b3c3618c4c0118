//! Websocket mode: where the catch-up after a reconnect or restart starts.

use super::*;

impl Store {
    /// Where catching up after a websocket reconnect or a restart starts, if this bot ever
    /// connected.
    pub async fn websocket_cursor(&self, bot_id: &str) -> Result<Option<WebsocketCursor>> {
        let row = query("SELECT last_event_at, first_at FROM websocket_cursor WHERE bot_id = $1")
            .bind(bot_id)
            .fetch_optional(&mut self.conn().await?)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(WebsocketCursor {
            last_event_at: row.try_get("last_event_at")?,
            first_at: row.try_get("first_at")?,
        }))
    }

    /// Records when the last websocket event arrived; the first call for a bot also records
    /// `at_ms` as its first connection.
    pub async fn set_websocket_cursor(&self, bot_id: &str, at_ms: i64) -> Result<()> {
        query(
            "INSERT INTO websocket_cursor (bot_id, last_event_at, first_at) VALUES ($1, $2, $2) \
             ON CONFLICT (bot_id) DO UPDATE SET last_event_at = excluded.last_event_at",
        )
        .bind(bot_id)
        .bind(at_ms)
        .execute(&mut self.conn().await?)
        .await?;
        Ok(())
    }
}
