//! Room leases while one event takes longer than the lease lasts.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

/// An answer that takes over three lease TTLs is posted, once, on the first attempt: the
/// worker renews its room's lease while the event runs (inside its own task). Without the
/// renewals the lease counts as lost 400 ms after the event was taken, the post is
/// refused (`LeaseLost`), and the event never gets an answer.
#[tokio::test]
async fn an_event_longer_than_the_lease_keeps_its_room() {
    let app = TestApp::spawn(
        Spawn::default()
            .lease_ttl(Duration::from_millis(600))
            .env("REPLY_STREAMING", "false")
            .answer(Arc::new(|_: &Value| {
                ollama_answer("Echo: slow").set_delay(Duration::from_millis(2_000))
            })),
    )
    .await;
    app.approve(ALICE).await;
    app.deliver(&direct_message(
        "M-slow-lease",
        "ROOM-slow-lease",
        ALICE,
        "slow",
    ))
    .await;
    assert_eq!(app.wait_handled("M-slow-lease").await, "answered");
    let replies = app.replies().await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["markdown"], "Echo: slow");
    assert_eq!(
        app.llm_requests().await.len(),
        1,
        "answered on the first attempt"
    );
}
