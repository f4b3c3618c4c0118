//! Room leases: one worker per room across replicas, timed by the database's clock.

use super::*;

impl Store {
    /// Takes the room for `owner` unless another owner holds an unexpired lease. Expiry is
    /// judged by the database's clock.
    pub async fn claim_room(&self, room_id: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let done = query(self.timed(
            "INSERT INTO room_leases (room_id, owner, expires_at) VALUES ($1, $2, {now} + $3) \
             ON CONFLICT (room_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE room_leases.expires_at < {now} OR room_leases.owner = excluded.owner",
        ))
        .bind(room_id)
        .bind(owner)
        .bind(ms(ttl))
        .execute(&mut self.conn().await?)
        .await?;
        Ok(done == 1)
    }

    /// Extends a lease this owner holds; false when it was lost (expired and taken, or
    /// released). Owners are unique per process start, so a lease still under this owner's
    /// name was not used by anybody else even if it expired a moment ago.
    pub async fn renew_room(&self, room_id: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let done = query(self.timed(
            "UPDATE room_leases SET expires_at = {now} + $1 WHERE room_id = $2 AND owner = $3",
        ))
        .bind(ms(ttl))
        .bind(room_id)
        .bind(owner)
        .execute(&mut self.conn().await?)
        .await?;
        Ok(done == 1)
    }

    /// Renews the lease right before part `part` of event `seq`'s answer is posted, and only
    /// if posting it is still this owner's job: the lease is this owner's, the event is
    /// pending, and no other worker recorded that part as posted. False otherwise.
    ///
    /// With `save`, the answer is also kept with the event when the confirmation succeeds
    /// (so an attempt after a crash posts it instead of asking the LLM again): in the same
    /// round trip where the dialect allows ([`dialect::sqlite::confirm_and_save`]).
    pub async fn confirm_post(
        &self,
        room_id: &str,
        owner: &str,
        ttl: Duration,
        seq: i64,
        part: i64,
        save: Option<&str>,
    ) -> Result<bool> {
        const CONFIRM: &str = "UPDATE room_leases SET expires_at = {now} + $1 WHERE room_id = $2 AND owner = $3 \
             AND EXISTS (SELECT 1 FROM inbox WHERE seq = $4 AND state = 'pending' AND parts_sent <= $5)";
        let confirm = self.timed(CONFIRM);
        let one_trip = self.backend.round_trips() == RoundTrips::One;
        let sql = match save {
            Some(_) if one_trip => dialect::sqlite::confirm_and_save(&confirm),
            _ => confirm,
        };
        let mut step = query(sql)
            .bind(ms(ttl))
            .bind(room_id)
            .bind(owner)
            .bind(seq)
            .bind(part);
        if let Some(reply) = save
            && one_trip
        {
            step = step.bind(reply);
        }
        let mut conn = self.conn().await?;
        let confirmed = if one_trip && save.is_some() {
            // A row when the confirmation changed the lease.
            step.script(&mut conn).await?.len() == 1
        } else {
            step.execute(&mut conn).await? == 1
        };
        // Given back before `save_reply` asks for one (on SQLite the one connection).
        drop(conn);
        if confirmed
            && let Some(reply) = save
            && !one_trip
        {
            self.save_reply(seq, reply).await?;
        }
        Ok(confirmed)
    }

    pub async fn release_room(&self, room_id: &str, owner: &str) -> Result<()> {
        query("DELETE FROM room_leases WHERE room_id = $1 AND owner = $2")
            .bind(room_id)
            .bind(owner)
            .execute(&mut self.conn().await?)
            .await?;
        Ok(())
    }

    /// Releases the room unless its oldest pending event is due: true when released,
    /// false when there is work to do (an event recorded while the room was held, perhaps
    /// by another replica) or the lease is not this owner's any more.
    pub async fn release_room_if_idle(&self, room_id: &str, owner: &str) -> Result<bool> {
        let done = query(self.timed(
            "DELETE FROM room_leases WHERE room_id = $1 AND owner = $2 AND NOT EXISTS \
             (SELECT 1 FROM inbox WHERE seq = \
               (SELECT seq FROM inbox WHERE room_id = $1 AND state = 'pending' ORDER BY seq LIMIT 1) \
              AND not_before <= {now})",
        ))
        .bind(room_id)
        .bind(owner)
        .execute(&mut self.conn().await?)
        .await?;
        Ok(done == 1)
    }

    /// Takes back everything an earlier life of the process left held: deletes every room
    /// lease and makes every pending event due now (a retry backoff does not outlive a
    /// restart). Only for the database's one owner (SQLite, holding [`OwnerLock`]): no
    /// other process can be working on a room. Returns the leases released and the
    /// events made due.
    pub async fn take_back_all(&self) -> Result<(u64, u64)> {
        let mut conn = self.conn().await?;
        let leases = query("DELETE FROM room_leases").execute(&mut conn).await?;
        let events =
            query("UPDATE inbox SET not_before = 0 WHERE state = 'pending' AND not_before > 0")
                .execute(&mut conn)
                .await?;
        Ok((leases, events))
    }

    /// Who owns a room's lease, if it has not expired (by the database's clock).
    ///
    /// Tests only (feature `test-support`).
    #[cfg(any(test, feature = "test-support"))]
    pub async fn room_owner(&self, room_id: &str) -> Result<Option<String>> {
        let row = query(
            self.timed("SELECT owner FROM room_leases WHERE room_id = $1 AND expires_at >= {now}"),
        )
        .bind(room_id)
        .fetch_optional(&mut self.conn().await?)
        .await?;
        row.map(|r| r.try_get("owner")).transpose()
    }
}
