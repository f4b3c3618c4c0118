//! Conversation turns: history, trimming, forgetting.

use super::*;

pub(super) async fn prune_turns(
    tx: &mut sql::Tx<'_>,
    conversation: &ConversationKey,
    keep_messages: usize,
) -> Result<()> {
    // Keep the newest `keep_messages`: everything up to the one just older than them.
    query(prune_sql(1, 2))
        .bind(conversation.as_str())
        .bind(i64::try_from(keep_messages).unwrap_or(i64::MAX))
        .execute(tx)
        .await?;
    Ok(())
}

/// Deletes all but the newest `$keep` messages of conversation `$conversation` (parameter
/// numbers): those up to the newest one past them (none when there are not that many). A
/// scalar subquery: `id NOT IN (… LIMIT n)` made SQLite build a temporary table of the
/// kept ids each time.
pub(super) fn prune_sql(conversation: usize, keep: usize) -> String {
    format!(
        "DELETE FROM turns WHERE conversation = ${conversation} AND id <= \
         (SELECT id FROM turns WHERE conversation = ${conversation} ORDER BY id DESC LIMIT 1 OFFSET ${keep})"
    )
}

/// The newest `$2` messages of conversation `$1`, newest first.
const HISTORY: &str =
    "SELECT role, content FROM turns WHERE conversation = $1 ORDER BY id DESC LIMIT $2";

/// Turns read newest first ([`HISTORY`]), oldest first.
fn newest_first(rows: &[Row]) -> Result<Vec<Turn>> {
    let mut turns = rows
        .iter()
        .map(|r| {
            let role: String = r.try_get("role")?;
            Ok(Turn {
                role: Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("turn role {role:?}")))?,
                content: r.try_get("content")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    turns.reverse();
    Ok(turns)
}

impl Store {
    /// The newest `limit` messages of a conversation, oldest first.
    pub async fn history(&self, conversation: &ConversationKey, limit: usize) -> Result<Vec<Turn>> {
        let rows = query(HISTORY)
            .bind(conversation.as_str())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&mut self.conn().await?)
            .await?;
        newest_first(&rows)
    }

    /// What answering in a space needs from the store, in one round trip: the space's
    /// personality (if one was chosen) and the newest `limit` messages of the
    /// conversation, oldest first.
    pub async fn chat_context(
        &self,
        room_id: &str,
        conversation: &ConversationKey,
        limit: usize,
    ) -> Result<(Option<String>, Vec<Turn>)> {
        if self.backend.round_trips() == RoundTrips::One {
            // SQLite: two plain statements under one hold of the connection, which cost
            // nothing to send apart; the compound form below makes SQLite build a
            // temporary table each time.
            let mut conn = self.conn().await?;
            let personality = query("SELECT personality FROM space_settings WHERE room_id = $1")
                .bind(room_id)
                .fetch_optional(&mut conn)
                .await?
                .map(|r| r.try_get("personality"))
                .transpose()?;
            let rows = query(HISTORY)
                .bind(conversation.as_str())
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&mut conn)
                .await?;
            return Ok((personality, newest_first(&rows)?));
        }
        let rows = query(
            "SELECT CAST(0 AS BIGINT) AS kind, personality AS a, NULL AS b, CAST(0 AS BIGINT) AS id \
             FROM space_settings WHERE room_id = $1 \
             UNION ALL SELECT * FROM (SELECT CAST(1 AS BIGINT) AS kind, role AS a, content AS b, \
             CAST(id AS BIGINT) AS id FROM turns WHERE conversation = $2 ORDER BY id DESC LIMIT $3) AS recent",
        )
        .bind(room_id)
        .bind(conversation.as_str())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut self.conn().await?)
        .await?;
        let mut personality = None;
        let mut turns = Vec::with_capacity(rows.len());
        for r in &rows {
            let a: String = r.try_get("a")?;
            if r.try_get::<i64>("kind")? == 0 {
                personality = Some(a);
                continue;
            }
            let role =
                Role::parse(&a).ok_or_else(|| StoreError::Corrupt(format!("turn role {a:?}")))?;
            turns.push((
                r.try_get::<i64>("id")?,
                Turn {
                    role,
                    content: r.try_get("b")?,
                },
            ));
        }
        turns.sort_by_key(|(id, _)| *id);
        Ok((personality, turns.into_iter().map(|(_, t)| t).collect()))
    }

    pub async fn clear_history(&self, conversation: &ConversationKey) -> Result<u64> {
        let done = query("DELETE FROM turns WHERE conversation = $1")
            .bind(conversation.as_str())
            .execute(&mut self.conn().await?)
            .await?;
        Ok(done)
    }

    /// Deletes the conversations (all their turns) whose newest turn is older than
    /// `cutoff_ms` (milliseconds since the epoch): `MEMORY_MAX_AGE_DAYS`. Returns how many
    /// turns were deleted.
    pub async fn forget_conversations_untouched_since(&self, cutoff_ms: i64) -> Result<u64> {
        let done = query(
            "DELETE FROM turns WHERE conversation IN \
             (SELECT conversation FROM turns GROUP BY conversation HAVING MAX(created_at) < $1)",
        )
        .bind(cutoff_ms)
        .execute(&mut self.conn().await?)
        .await?;
        Ok(done)
    }

    /// Appends turns outside the inbox (the console chat).
    pub async fn append_turns(
        &self,
        conversation: &ConversationKey,
        turns: &[Turn],
        keep_messages: usize,
    ) -> Result<()> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let now = now_ms();
        for turn in turns {
            query(
                "INSERT INTO turns (conversation, role, content, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(conversation.as_str())
            .bind(turn.role.as_str())
            .bind(turn.content.as_str())
            .bind(now)
            .execute(&mut tx)
            .await?;
        }
        prune_turns(&mut tx, conversation, keep_messages).await?;
        tx.commit().await?;
        Ok(())
    }
}
