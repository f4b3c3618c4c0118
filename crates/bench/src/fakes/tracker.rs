//! What the fakes keep: one slot per benchmark message and per message the bot created
//! (atomics), the ids that name them, and the files the fake Webex serves.

use super::*;

/// A message the bot created on the fake Webex.
#[derive(Default)]
pub(super) struct MessageSlot {
    /// Room number + 1 (0: the slot is unused).
    pub(super) room: AtomicU64,
    /// When it was posted.
    pub(super) post_ns: AtomicU64,
    /// Edits accepted.
    pub(super) edits: AtomicU32,
    pub(super) deleted: AtomicBool,
    /// Index + 1 of the benchmark message whose finished answer it holds (0: none).
    pub(super) answer_of: AtomicU64,
}

/// Per-message timings and Webex call counts, written lock-free by the generator and the
/// fakes.
pub struct Tracker {
    pub start: Instant,
    /// Nanoseconds since `start` when the webhook was sent (0 = not sent).
    pub sent_ns: Vec<AtomicU64>,
    /// When the webhook was answered, and with which status.
    pub ack_ns: Vec<AtomicU64>,
    pub ack_status: Vec<AtomicU32>,
    /// When the finished answer to the message reached the fake Webex (in a post, or in
    /// the edit that finished a streamed message), and how many messages hold it.
    pub reply_ns: Vec<AtomicU64>,
    pub replies: Vec<AtomicU32>,
    /// When the reader first saw something of the answer: the post of the message that
    /// holds it (for a streamed answer: its first, unfinished version), or of an
    /// unfinished message deleted before it in the same room (the bot's fallback when an
    /// edit is refused).
    pub first_post_ns: Vec<AtomicU64>,
    /// Per room (up to `total` rooms): when the last unfinished message deleted there
    /// was posted (0: none waiting for its answer).
    pub(super) deleted_unfinished_ns: Vec<AtomicU64>,
    /// `POST /messages`, `PUT /messages/{id}`, `DELETE /messages/{id}` calls received,
    /// accepted or not.
    pub posts: AtomicU64,
    pub puts: AtomicU64,
    pub deletes: AtomicU64,
    /// Webex calls the fake refused (4xx).
    pub refused: AtomicU64,
    /// The messages the bot created, by the number in their id.
    pub(super) messages: Vec<MessageSlot>,
    pub(super) next_message: AtomicU64,
    /// Posts past the last slot (accepted, not tracked; edits of them answer 404).
    pub untracked: AtomicU64,
    pub llm_in_flight: AtomicU64,
    pub llm_peak: AtomicU64,
}

impl Tracker {
    pub fn new(total: usize) -> Arc<Tracker> {
        let slots = || (0..total).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        // One message per answer, with room for apologies, long answers in parts and
        // streamed messages deleted and posted again.
        let messages = total.saturating_mul(4).saturating_add(1024);
        Arc::new(Tracker {
            start: Instant::now(),
            sent_ns: slots(),
            ack_ns: slots(),
            ack_status: (0..total).map(|_| AtomicU32::new(0)).collect(),
            reply_ns: slots(),
            replies: (0..total).map(|_| AtomicU32::new(0)).collect(),
            first_post_ns: slots(),
            deleted_unfinished_ns: slots(),
            posts: AtomicU64::new(0),
            puts: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            messages: (0..messages).map(|_| MessageSlot::default()).collect(),
            next_message: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
            llm_in_flight: AtomicU64::new(0),
            llm_peak: AtomicU64::new(0),
        })
    }

    /// Nanoseconds since the start, never 0 (0 marks "not yet").
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// Benchmark messages with at least one finished answer.
    pub fn replied(&self) -> usize {
        self.replies
            .iter()
            .filter(|r| r.load(Ordering::Relaxed) > 0)
            .count()
    }

    /// Messages the bot left on the fake Webex that hold no finished answer (an
    /// unfinished streamed version never completed nor deleted, an apology, a stray
    /// post), plus the untracked ones.
    pub fn stray(&self) -> u64 {
        let created = usize::try_from(self.next_message.load(Ordering::Acquire))
            .unwrap_or(usize::MAX)
            .min(self.messages.len());
        let left = self.messages[..created]
            .iter()
            .filter(|m| {
                m.room.load(Ordering::Acquire) != 0
                    && !m.deleted.load(Ordering::Relaxed)
                    && m.answer_of.load(Ordering::Relaxed) == 0
            })
            .count() as u64;
        left + self.untracked.load(Ordering::Relaxed)
    }

    /// Edits the fake Webex accepted, over all messages.
    pub fn edits(&self) -> u64 {
        self.messages
            .iter()
            .map(|m| u64::from(m.edits.load(Ordering::Relaxed)))
            .sum()
    }

    /// The message `REPLY-{n}` if the bot created it here.
    pub(super) fn message(&self, id: &str) -> Option<&MessageSlot> {
        let n: usize = id.strip_prefix("REPLY-")?.parse().ok()?;
        let slot = self.messages.get(n)?;
        (slot.room.load(Ordering::Acquire) != 0).then_some(slot)
    }

    /// `text` now stands in `slot`: if it is a finished answer, the slot holds it (once).
    pub(super) fn credit(&self, slot: &MessageSlot, text: &str, now: u64) {
        let Some((idx, room)) = finished_answer(text).filter(|(idx, _)| *idx < self.replies.len())
        else {
            return;
        };
        if slot
            .answer_of
            .compare_exchange(0, idx as u64 + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let posted = slot.post_ns.load(Ordering::Relaxed);
        // An unfinished message of this answer, deleted before this one was posted.
        let deleted = self
            .deleted_unfinished_ns
            .get(room)
            .map_or(0, |d| d.swap(0, Ordering::Relaxed));
        let first = if deleted >= self.sent_ns[idx].load(Ordering::Relaxed) && deleted > 0 {
            deleted.min(posted)
        } else {
            posted
        };
        if self.replies[idx].fetch_add(1, Ordering::Relaxed) == 0 {
            self.reply_ns[idx].store(now, Ordering::Relaxed);
            self.first_post_ns[idx].store(first, Ordering::Relaxed);
        }
    }
}

/// The message id of benchmark message `idx` in room `room`.
pub fn message_id(idx: usize, room: usize) -> String {
    format!("BENCH-{idx}-{room}")
}

/// `BENCH-{idx}-{room}` anywhere in `text` → (idx, room).
pub(super) fn parse_id(text: &str) -> Option<(usize, usize)> {
    let rest = &text[text.find("BENCH-")? + 6..];
    let (idx, rest) = rest.split_once('-')?;
    let room: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((idx.parse().ok()?, room.parse().ok()?))
}

/// The benchmark message a finished answer (one ending with [`ANSWER_END`]) is for.
pub(super) fn finished_answer(text: &str) -> Option<(usize, usize)> {
    if text.trim_end().ends_with(ANSWER_END) {
        parse_id(text)
    } else {
        None
    }
}

pub fn room_id(room: usize) -> String {
    format!("ROOM-{room}")
}

/// `ROOM-{room}` → room.
pub(super) fn parse_room(id: &str) -> Option<usize> {
    id.strip_prefix("ROOM-")?.parse().ok()
}

pub fn person_email(room: usize) -> String {
    format!("user{room}@{EMAIL_DOMAIN}")
}

/// A status and message Webex would refuse a call with.
pub(super) type Refusal = (StatusCode, &'static str);

/// A file every benchmark message carries (files mode), served at `/contents/{id}`.
#[derive(Clone)]
pub struct FileSpec {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: Bytes,
}

impl FileSpec {
    /// `mib` MiB of plain text (no benchmark ids in it).
    pub fn text(mib: usize) -> Self {
        Self {
            name: "bench.log",
            content_type: "text/plain",
            bytes: Bytes::from("log line without ids\n".repeat(mib * 1024 * 1024 / 21 + 1))
                .slice(..mib * 1024 * 1024),
        }
    }

    /// `mib` MiB starting with the PNG signature (the bot sends it to the model as an image).
    pub fn image(mib: usize) -> Self {
        let mut bytes = vec![0x5Au8; mib * 1024 * 1024];
        bytes[..8].copy_from_slice(b"\x89PNG\r\n\x1a\n");
        Self {
            name: "bench.png",
            content_type: "image/png",
            bytes: Bytes::from(bytes),
        }
    }
}
