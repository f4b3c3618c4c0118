//! Tools over MCP (DESIGN §10.5): pending approvals of `confirm` tools, decided once by a
//! card click on any replica, and the record of every tool call.

use super::*;

/// An approval the bot asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolApproval {
    pub id: String,
    pub room_id: String,
    /// Who asked the question that led to the call: they (or an admin) may decide.
    pub asker_person_id: String,
    pub asker_email: String,
    pub server: String,
    pub tool: String,
    pub arguments_sha256: String,
    pub created_at: i64,
    /// `None` while waiting; `approve`, `deny` or `expired` once decided.
    pub decision: Option<String>,
    pub decided_by: Option<String>,
}

/// One tool call as it is recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolCallRecord {
    pub called_at: i64,
    pub person_email: String,
    pub room_id: String,
    pub server: String,
    pub tool: String,
    /// `ok`, `error`, `timeout` or `denied`.
    pub outcome: String,
    pub duration_ms: i64,
    pub arguments_sha256: String,
    /// The arguments themselves, only with `TOOLS_LOG_ARGUMENTS=true`.
    pub arguments: Option<String>,
}

impl Store {
    pub async fn insert_tool_approval(&self, a: &ToolApproval) -> Result<()> {
        query(
            "INSERT INTO tool_approvals (id, room_id, asker_person_id, asker_email, server, tool, \
             arguments_sha256, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&a.id)
        .bind(&a.room_id)
        .bind(&a.asker_person_id)
        .bind(&a.asker_email)
        .bind(&a.server)
        .bind(&a.tool)
        .bind(&a.arguments_sha256)
        .bind(a.created_at)
        .execute(&mut self.conn().await?)
        .await?;
        Ok(())
    }

    pub async fn tool_approval(&self, id: &str) -> Result<Option<ToolApproval>> {
        let row = query(
            "SELECT id, room_id, asker_person_id, asker_email, server, tool, arguments_sha256, \
             created_at, decision, decided_by FROM tool_approvals WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut self.conn().await?)
        .await?;
        row.map(|r| {
            Ok(ToolApproval {
                id: r.try_get("id")?,
                room_id: r.try_get("room_id")?,
                asker_person_id: r.try_get("asker_person_id")?,
                asker_email: r.try_get("asker_email")?,
                server: r.try_get("server")?,
                tool: r.try_get("tool")?,
                arguments_sha256: r.try_get("arguments_sha256")?,
                created_at: r.try_get("created_at")?,
                decision: r.try_get("decision")?,
                decided_by: r.try_get("decided_by")?,
            })
        })
        .transpose()
    }

    /// Sets the decision when there is none yet; `false` when one was already taken.
    pub async fn decide_tool_approval(
        &self,
        id: &str,
        decision: &str,
        by: Option<&str>,
    ) -> Result<bool> {
        let done = query(
            "UPDATE tool_approvals SET decision = $1, decided_by = $2, decided_at = $3 \
             WHERE id = $4 AND decision IS NULL",
        )
        .bind(decision)
        .bind(by)
        .bind(now_ms())
        .bind(id)
        .execute(&mut self.conn().await?)
        .await?;
        Ok(done == 1)
    }

    pub async fn record_tool_call(&self, c: &ToolCallRecord) -> Result<()> {
        query(
            "INSERT INTO tool_calls (called_at, person_email, room_id, server, tool, outcome, \
             duration_ms, arguments_sha256, arguments) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(c.called_at)
        .bind(&c.person_email)
        .bind(&c.room_id)
        .bind(&c.server)
        .bind(&c.tool)
        .bind(&c.outcome)
        .bind(c.duration_ms)
        .bind(&c.arguments_sha256)
        .bind(c.arguments.as_deref())
        .execute(&mut self.conn().await?)
        .await?;
        Ok(())
    }

    /// The newest recorded tool calls, newest first.
    pub async fn recent_tool_calls(&self, limit: i64) -> Result<Vec<ToolCallRecord>> {
        let rows = query(
            "SELECT called_at, person_email, room_id, server, tool, outcome, duration_ms, \
             arguments_sha256, arguments FROM tool_calls ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&mut self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ToolCallRecord {
                    called_at: r.try_get("called_at")?,
                    person_email: r.try_get("person_email")?,
                    room_id: r.try_get("room_id")?,
                    server: r.try_get("server")?,
                    tool: r.try_get("tool")?,
                    outcome: r.try_get("outcome")?,
                    duration_ms: r.try_get("duration_ms")?,
                    arguments_sha256: r.try_get("arguments_sha256")?,
                    arguments: r.try_get("arguments")?,
                })
            })
            .collect()
    }
}
