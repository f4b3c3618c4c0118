//! The durable inbox: events in, the next one of a room out, attempts, answers kept across
//! attempts, the done mark.

use super::*;

/// The room whose next step [`Store::finish_then_next`] takes, for whom, and the lease's
/// TTL: [`Store::next_event`]'s arguments.
#[derive(Clone, Copy, Debug)]
pub struct NextIn<'a> {
    pub room_id: &'a str,
    pub owner: &'a str,
    pub ttl: Duration,
}

/// What [`Store::finish_then_next`] did.
#[derive(Debug)]
pub struct Finished {
    /// The done mark applied (false: another worker had finished the event first).
    pub done: bool,
    /// The room's next step, taken in the same round trip: what `next_event` would have
    /// answered. `None` when it was not taken (not asked, or not in one round trip here).
    pub next: Option<Option<PendingEvent>>,
}

impl Finished {
    fn done(done: bool) -> Finished {
        Finished { done, next: None }
    }
}

fn pending_from_row(r: &Row) -> Result<PendingEvent> {
    Ok(PendingEvent {
        seq: r.try_get("seq")?,
        message_id: r.try_get("message_id")?,
        kind: EventKind::from_db(&r.try_get::<String>("kind")?),
        room_id: r.try_get("room_id")?,
        payload: r.try_get("payload")?,
        received_at: r.try_get("received_at")?,
        attempts: r.try_get("attempts")?,
        not_before: r.try_get("not_before")?,
        reply: r.try_get("reply")?,
        parts_sent: r.try_get("parts_sent")?,
        stream_message_id: r.try_get("stream_message_id")?,
        due: r.try_get::<i64>("due")? != 0,
    })
}

impl Store {
    /// Records an event durably. A message id seen before (redelivery, another replica)
    /// is a `Duplicate` and changes nothing.
    ///
    /// Events are inserted in groups by one loop ([`ingest_loop`]), started by the first
    /// call on that caller's runtime: in `serve` the webhook front end's own thread, so an
    /// acknowledgement never waits for the busy workers' runtime to get round to it.
    pub async fn enqueue(&self, ev: &NewEvent<'_>) -> Result<Enqueued> {
        if let Ok(mut start) = self.ingest_start.lock()
            && let Some((pool, jobs)) = start.take()
        {
            tokio::spawn(ingest_loop(pool, jobs));
        }
        let (done, outcome) = oneshot::channel();
        let job = IngestJob {
            message_id: ev.message_id.to_owned(),
            room_id: ev.room_id.to_owned(),
            payload: ev.payload.to_owned(),
            kind: ev.kind,
            received_at: now_ms(),
            done,
        };
        let stopped = || StoreError::Ingest("the store is shutting down".to_owned());
        self.ingest.send(job).await.map_err(|_| stopped())?;
        let enqueued = outcome
            .await
            .map_err(|_| stopped())?
            .map_err(StoreError::Ingest)?;
        if enqueued == Enqueued::New {
            self.pending.add(1);
        }
        Ok(enqueued)
    }

    /// Pending events as last counted and kept current since (no query; for `/metrics`).
    pub fn pending_events(&self) -> i64 {
        self.pending.value.load(Ordering::SeqCst).max(0)
    }

    /// Counts the pending events in the database (one indexed count) and keeps the number
    /// for [`Store::pending_events`], unless this process changed it meanwhile (then the
    /// next count settles it; two racing counts in a row: the second is kept).
    pub async fn recount_pending(&self) -> Result<i64> {
        let before = self.pending.changes.load(Ordering::SeqCst);
        let row = query("SELECT COUNT(*) AS pending FROM inbox WHERE state = 'pending'")
            .fetch_one(&mut self.conn().await?)
            .await?;
        let counted: i64 = row.try_get("pending")?;
        let raced = self.pending.changes.load(Ordering::SeqCst) != before;
        if !raced || self.pending.raced.load(Ordering::SeqCst) {
            self.pending.value.store(counted, Ordering::SeqCst);
        }
        self.pending.raced.store(raced, Ordering::SeqCst);
        Ok(counted)
    }

    /// Rooms with events due now, oldest first.
    pub async fn pending_rooms(&self) -> Result<Vec<String>> {
        let rows = query(self.timed(
            "SELECT room_id, MIN(seq) AS first FROM inbox WHERE state = 'pending' AND not_before <= {now} \
             GROUP BY room_id ORDER BY first",
        ))
        .fetch_all(&mut self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String>("room_id"))
            .collect()
    }

    /// The oldest pending event of a room, due or not: a later event must not overtake it.
    ///
    /// Tests only (feature `test-support`).
    #[cfg(any(test, feature = "test-support"))]
    pub async fn next_pending(&self, room_id: &str) -> Result<Option<PendingEvent>> {
        let row = query(self.timed(
            "SELECT seq, message_id, kind, room_id, payload, received_at, attempts, not_before, reply, parts_sent, stream_message_id, \
             CAST(CASE WHEN not_before <= {now} THEN 1 ELSE 0 END AS BIGINT) AS due \
             FROM inbox WHERE room_id = $1 AND state = 'pending' ORDER BY seq LIMIT 1",
        ))
        .bind(room_id)
        .fetch_optional(&mut self.conn().await?)
        .await?;
        row.map(|r| pending_from_row(&r)).transpose()
    }

    /// The next event of a room for `owner`'s worker, taking (or keeping) the room's lease
    /// and counting the attempt: `Some` while the lease is held and the oldest pending event
    /// is due; `None` when the room is another owner's, or when nothing is due, in which
    /// case the lease is released in the same step. A worker calls it until `None`.
    ///
    /// One round trip where the dialect allows ([`dialect::sqlite::next_event`]: claim;
    /// release if idle; take), else the same steps as separate statements.
    pub async fn next_event(
        &self,
        room_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<PendingEvent>> {
        if self.backend.round_trips() == RoundTrips::PerStatement {
            // A few rounds at most: only an event arriving between the take and the release
            // makes the release refuse while the lease is still ours.
            for _ in 0..3 {
                if !self.claim_room(room_id, owner, ttl).await? {
                    return Ok(None);
                }
                if let Some(event) = self.take_next(room_id).await? {
                    return Ok(Some(event));
                }
                if self.release_room_if_idle(room_id, owner).await? {
                    return Ok(None);
                }
            }
            return Ok(None);
        }
        let rows = query(self.timed(&dialect::sqlite::next_event(1)))
            .bind(room_id)
            .bind(owner)
            .bind(ms(ttl))
            .script(&mut self.conn().await?)
            .await?;
        rows.first().map(pending_from_row).transpose()
    }

    /// Takes the oldest pending event of a room for an attempt, counting the attempt in the
    /// same statement: `None` when the room has nothing pending or its oldest event is
    /// not due yet (backing off after a failure; later events wait behind it to keep the
    /// order). The returned `attempts` includes this one. Counting before the work starts
    /// means an event that crashes the process every time is eventually given up.
    pub async fn take_next(&self, room_id: &str) -> Result<Option<PendingEvent>> {
        let row = query(self.timed(
            "UPDATE inbox SET attempts = attempts + 1 \
             WHERE seq = (SELECT seq FROM inbox WHERE room_id = $1 AND state = 'pending' ORDER BY seq LIMIT 1) \
             AND not_before <= {now} \
             RETURNING seq, message_id, kind, room_id, payload, received_at, attempts, not_before, reply, parts_sent, stream_message_id, \
             CAST(1 AS BIGINT) AS due",
        ))
        .bind(room_id)
        .fetch_optional(&mut self.conn().await?)
        .await?;
        row.map(|r| pending_from_row(&r)).transpose()
    }

    pub async fn save_reply(&self, seq: i64, reply: &str) -> Result<()> {
        query("UPDATE inbox SET reply = $1, parts_sent = 0 WHERE seq = $2 AND state = 'pending'")
            .bind(reply)
            .bind(seq)
            .execute(&mut self.conn().await?)
            .await?;
        Ok(())
    }

    /// Records (or forgets, with `None`) the message a streamed answer is written into.
    pub async fn set_stream_message(&self, seq: i64, message_id: Option<&str>) -> Result<()> {
        query("UPDATE inbox SET stream_message_id = $1 WHERE seq = $2 AND state = 'pending'")
            .bind(message_id)
            .bind(seq)
            .execute(&mut self.conn().await?)
            .await?;
        Ok(())
    }

    /// Records how many parts of the answer are posted. Only ever grows: a late write from
    /// a worker that lost the room cannot make the next one post a part again.
    pub async fn set_parts_sent(&self, seq: i64, parts: i64) -> Result<()> {
        query("UPDATE inbox SET parts_sent = $1 WHERE seq = $2 AND parts_sent < $1")
            .bind(parts)
            .bind(seq)
            .execute(&mut self.conn().await?)
            .await?;
        Ok(())
    }

    /// Leaves the event pending but not before `delay` from now (Webex down, say), by the
    /// database's clock like every time the replicas compare.
    pub async fn postpone(&self, seq: i64, delay: Duration) -> Result<()> {
        query(self.timed(
            "UPDATE inbox SET not_before = {now} + $1 WHERE seq = $2 AND state = 'pending'",
        ))
        .bind(ms(delay))
        .bind(seq)
        .execute(&mut self.conn().await?)
        .await?;
        Ok(())
    }

    /// Marks the event handled and, in the same transaction, stores the conversation turns,
    /// so a crash leaves either both or neither. The state changes first and only from
    /// `pending`: an event that another worker already finished is left as it is (false),
    /// and its turns are not stored a second time.
    pub async fn finish(&self, seq: i64, finish: Finish<'_>) -> Result<bool> {
        Ok(self.finish_then_next(seq, finish, None).await?.done)
    }

    /// [`Store::finish`], then with `next` the room's next step ([`Store::next_event`]
    /// for that room and owner) in the same round trip where the dialect allows (SQLite:
    /// [`dialect::sqlite::finish_then_next`]): a worker going on to the room's next
    /// event saves a hand-off to the connection's thread and back per event. Elsewhere
    /// (PostgreSQL) only the done mark is stored and [`Finished::next`] is `None`: the
    /// worker asks `next_event` itself.
    pub async fn finish_then_next(
        &self,
        seq: i64,
        finish: Finish<'_>,
        next: Option<NextIn<'_>>,
    ) -> Result<Finished> {
        let finished = self.mark_done(seq, finish, next).await?;
        if finished.done {
            self.pending.add(-1);
        }
        Ok(finished)
    }

    async fn mark_done(
        &self,
        seq: i64,
        finish: Finish<'_>,
        next: Option<NextIn<'_>>,
    ) -> Result<Finished> {
        let now = now_ms();
        let turns = finish.turns.filter(|(_, turns)| !turns.is_empty());
        // Changes one row if it applies. On SQLite a row of one column follows if it did
        // (`next_event`'s rows have twelve).
        const DONE: &str = "UPDATE inbox SET state = 'done', outcome = $1, finished_at = $2, reply = NULL \
             WHERE seq = $3 AND state = 'pending'";
        if self.backend.round_trips() == RoundTrips::One {
            // One script, the transaction included: the done mark (and a row if it
            // applied), the turns only if it did, the pruning; then,
            // after the commit, the room's next step if asked.
            let count = turns.map_or(0, |(_, t)| t.len());
            let sql = match next {
                Some(_) => self.timed(&dialect::sqlite::finish_then_next(DONE, count)),
                None => dialect::sqlite::done_with_turns(DONE, count),
            };
            let mut step = query(sql).bind(finish.outcome).bind(now).bind(seq);
            if let Some((conversation, turns)) = turns {
                step = step
                    .bind(conversation.as_str())
                    .bind(i64::try_from(finish.keep_messages).unwrap_or(i64::MAX));
                for turn in turns {
                    step = step.bind(turn.role.as_str()).bind(turn.content.as_str());
                }
            }
            if let Some(next) = &next {
                step = step.bind(next.room_id).bind(next.owner).bind(ms(next.ttl));
            }
            // If the next step fails, the done mark is committed all the same: the
            // worker's own `next_event` then finds the event done, and the pending count
            // is corrected at its next recount.
            let rows = step.script(&mut self.conn().await?).await?;
            let (marks, events): (Vec<&Row>, Vec<&Row>) = rows.iter().partition(|r| r.len() == 1);
            return Ok(Finished {
                done: !marks.is_empty(),
                next: match next {
                    Some(_) => Some(events.first().map(|r| pending_from_row(r)).transpose()?),
                    None => None,
                },
            });
        }
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let done = query(DONE)
            .bind(finish.outcome)
            .bind(now)
            .bind(seq)
            .execute(&mut tx)
            .await?;
        if done == 0 {
            tx.rollback().await?;
            return Ok(Finished::done(false));
        }
        if let Some((conversation, turns)) = turns {
            // One statement for all the turns: `($1, $2, $3, $4), ($1, $2, $5, $6), …`.
            let mut sql =
                String::from("INSERT INTO turns (conversation, created_at, role, content) VALUES ");
            for i in 0..turns.len() {
                let n = 3 + 2 * i;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("($1, $2, ${n}, ${})", n + 1));
            }
            let mut insert = query(sql).bind(conversation.as_str()).bind(now);
            for turn in turns {
                insert = insert.bind(turn.role.as_str()).bind(turn.content.as_str());
            }
            insert.execute(&mut tx).await?;
            prune_turns(&mut tx, conversation, finish.keep_messages).await?;
        }
        tx.commit().await?;
        Ok(Finished::done(true))
    }

    /// Forgets finished events older than `keep` (at least 7 days: Webex redelivers).
    pub async fn prune_inbox(&self, keep: Duration) -> Result<u64> {
        let done = query("DELETE FROM inbox WHERE state = 'done' AND finished_at < $1")
            .bind(now_ms().saturating_sub(ms(keep)))
            .execute(&mut self.conn().await?)
            .await?;
        Ok(done)
    }

    /// The state and outcome of an event, by its id.
    ///
    /// Tests only (feature `test-support`).
    #[cfg(any(test, feature = "test-support"))]
    pub async fn event_outcome(
        &self,
        message_id: &str,
    ) -> Result<Option<(String, Option<String>)>> {
        let row = query("SELECT state, outcome FROM inbox WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(&mut self.conn().await?)
            .await?;
        row.map(|r| Ok((r.try_get("state")?, r.try_get("outcome")?)))
            .transpose()
    }
}
