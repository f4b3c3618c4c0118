//! Approved users.

use super::*;

impl Store {
    pub async fn approved_users(&self) -> Result<Vec<ApprovedUser>> {
        let rows = query("SELECT email, added_by, added_at FROM approved_users ORDER BY email")
            .fetch_all(&mut self.conn().await?)
            .await?;
        rows.iter()
            .map(|r| {
                let raw: String = r.try_get("email")?;
                let email = Email::parse(&raw)
                    .map_err(|_| StoreError::Corrupt(format!("approved user {raw:?}")))?;
                Ok(ApprovedUser {
                    email,
                    added_by: r.try_get("added_by")?,
                    added_at: r.try_get("added_at")?,
                })
            })
            .collect()
    }

    pub async fn is_approved(&self, email: &Email) -> Result<bool> {
        let row = query("SELECT 1 AS one FROM approved_users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(&mut self.conn().await?)
            .await?;
        Ok(row.is_some())
    }

    /// Adds a user; false when they were already approved.
    pub async fn add_user(&self, email: &Email, added_by: Option<&str>) -> Result<bool> {
        let done = query(
            "INSERT INTO approved_users (email, added_by, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(email.as_str())
        .bind(added_by)
        .bind(now_ms())
        .execute(&mut self.conn().await?)
        .await?;
        Ok(done == 1)
    }

    /// Removes a user; false when they were not approved.
    pub async fn remove_user(&self, email: &Email) -> Result<bool> {
        let done = query("DELETE FROM approved_users WHERE email = $1")
            .bind(email.as_str())
            .execute(&mut self.conn().await?)
            .await?;
        Ok(done == 1)
    }

    /// Adds many users in one transaction: all or nothing. Returns how many were new.
    pub async fn add_users(&self, emails: &[Email], added_by: &str) -> Result<u64> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let mut added = 0;
        let now = now_ms();
        for email in emails {
            let done = query(
                "INSERT INTO approved_users (email, added_by, added_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (email) DO NOTHING",
            )
            .bind(email.as_str())
            .bind(added_by)
            .bind(now)
            .execute(&mut tx)
            .await?;
            added += done;
        }
        tx.commit().await?;
        Ok(added)
    }
}
