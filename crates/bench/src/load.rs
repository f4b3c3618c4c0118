//! The load generator: correctly signed `messages`/`created` webhooks from many simulated
//! users, open loop at a set rate (or as fast as `concurrency` allows), bounded in count
//! and time.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::sync::Semaphore;

use crate::fakes::{self, Tracker};

pub struct Load {
    /// `http://host:port/webhook`
    pub url: String,
    pub secret: String,
    /// Messages to send; message `i` goes to room `i % rooms`.
    pub total: usize,
    pub rooms: usize,
    /// Webhooks per second; 0 = as fast as `concurrency` allows (closed loop).
    pub rate: f64,
    /// Requests in flight at most.
    pub concurrency: usize,
    /// Stop sending after this long whatever is left.
    pub deadline: Duration,
}

pub struct Sent {
    pub wall: Duration,
    /// How far behind schedule the generator fell at worst (it should stay near 0).
    pub max_lag: Duration,
    pub transport_errors: usize,
}

/// The webhook body for message `idx` (what Webex sends: ids only, no text).
pub fn body(idx: usize, room: usize) -> Vec<u8> {
    json!({
        "id": "WEBHOOK-BENCH", "name": "webex-chatbot", "targetUrl": "http://127.0.0.1/webhook",
        "resource": "messages", "event": "created", "orgId": "ORG", "createdBy": "CREATOR",
        "appId": "APP", "ownedBy": "creator", "status": "active",
        "created": "2026-11-20T09:00:00.000Z", "actorId": format!("PERSON-{room}"),
        "data": {
            "id": fakes::message_id(idx, room), "roomId": fakes::room_id(room),
            "roomType": "direct", "personId": format!("PERSON-{room}"),
            "personEmail": fakes::person_email(room), "created": "2026-11-20T09:15:04.191Z"
        }
    })
    .to_string()
    .into_bytes()
}

pub async fn run(load: &Load, tracker: &Arc<Tracker>) -> anyhow::Result<Sent> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(load.concurrency)
        .timeout(Duration::from_secs(10))
        .build()?;
    let permits = Arc::new(Semaphore::new(load.concurrency));
    let errors = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let begin = Instant::now();
    let mut max_lag = Duration::ZERO;
    let mut tasks = tokio::task::JoinSet::new();
    for idx in 0..load.total {
        if begin.elapsed() > load.deadline {
            break;
        }
        if load.rate > 0.0 {
            let due = begin + Duration::from_secs_f64(idx as f64 / load.rate);
            let now = Instant::now();
            if due > now {
                tokio::time::sleep_until(due.into()).await;
            } else {
                max_lag = max_lag.max(now - due);
            }
        }
        let permit = permits.clone().acquire_owned().await?;
        let room = idx % load.rooms.max(1);
        let body = body(idx, room);
        let signature = webex::signature::sign(load.secret.as_bytes(), &body);
        let request = http
            .post(&load.url)
            .header("content-type", "application/json")
            .header("x-spark-signature", signature)
            .body(body);
        let tracker = tracker.clone();
        let errors = errors.clone();
        tasks.spawn(async move {
            tracker.sent_ns[idx].store(tracker.now_ns(), Ordering::Relaxed);
            match request.send().await {
                Ok(res) => {
                    tracker.ack_ns[idx].store(tracker.now_ns(), Ordering::Relaxed);
                    tracker.ack_status[idx]
                        .store(u32::from(res.status().as_u16()), Ordering::Relaxed);
                    // Read the (tiny) body so the connection goes back to the pool.
                    let _ = res.bytes().await;
                }
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            drop(permit);
        });
        // Reap finished tasks as we go so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    Ok(Sent {
        wall: begin.elapsed(),
        max_lag,
        transport_errors: errors.load(Ordering::Relaxed),
    })
}
