//! Per-space settings: the chosen personality.

use super::*;

impl Store {
    pub async fn personality_for(&self, room_id: &str) -> Result<Option<String>> {
        let row = query("SELECT personality FROM space_settings WHERE room_id = $1")
            .bind(room_id)
            .fetch_optional(&mut self.conn().await?)
            .await?;
        row.map(|r| r.try_get("personality")).transpose()
    }

    pub async fn set_personality(&self, room_id: &str, name: &str, by: &str) -> Result<()> {
        query(
            "INSERT INTO space_settings (room_id, personality, updated_by, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id) DO UPDATE SET personality = excluded.personality, \
             updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(room_id)
        .bind(name)
        .bind(by)
        .bind(now_ms())
        .execute(&mut self.conn().await?)
        .await?;
        Ok(())
    }
}
