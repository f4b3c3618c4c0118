//! The concurrency cap: extra calls queue (never fail) and streams hold their permit.

use std::time::Duration;

use llm::{Llm, Options, ProviderKind};
use wiremock::ResponseTemplate;

use crate::fakes::{Fake, conversation, openai_completion};

fn limited(fake: &Fake, max_concurrency: usize, timeout: Duration) -> Llm {
    let options = Options {
        timeout,
        max_concurrency,
        ..Options::default()
    };
    Llm::new(reqwest::Client::new(), fake.config(), None, options).unwrap()
}

/// Polls `condition` for up to five seconds.
async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    for _ in 0..500 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("never happened: {what}");
}

async fn slow_fake(delay: Duration) -> Fake {
    let fake = Fake::start(ProviderKind::OpenAi).await;
    fake.script(
        ResponseTemplate::new(200)
            .set_body_json(openai_completion("gpt-4o-mini", "slow answer"))
            .set_delay(delay),
    )
    .await;
    fake
}

#[tokio::test]
async fn the_third_call_waits_for_one_of_two_permits() {
    let fake = slow_fake(Duration::from_millis(500)).await;
    let llm = limited(&fake, 2, Duration::from_secs(5));

    let calls: Vec<_> = (0..3)
        .map(|_| {
            let llm = llm.clone();
            tokio::spawn(async move { llm.chat(conversation()).await })
        })
        .collect();

    eventually("two in flight and one queued", async || {
        llm.in_flight() == 2 && llm.queued() == 1
    })
    .await;
    eventually("the two permitted calls reach the server", async || {
        fake.requests().await.len() == 2
    })
    .await;
    assert_eq!(llm.queued(), 1, "the third call is still waiting");
    assert_eq!(fake.requests().await.len(), 2, "and has not been sent");

    for call in calls {
        assert_eq!(call.await.unwrap().unwrap().content, "slow answer");
    }
    assert_eq!(fake.requests().await.len(), 3);
    assert_eq!((llm.in_flight(), llm.queued()), (0, 0));
}

#[tokio::test]
async fn queue_wait_does_not_count_against_the_timeout() {
    // Each call takes 400 ms; the second waits 400 ms for the only permit, then takes
    // 400 ms more: 800 ms in all, more than the 700 ms timeout, and still no timeout.
    let fake = slow_fake(Duration::from_millis(400)).await;
    let llm = limited(&fake, 1, Duration::from_millis(700));
    let (a, b) = tokio::join!(llm.chat(conversation()), llm.chat(conversation()));
    assert!(a.is_ok() && b.is_ok(), "{a:?} {b:?}");
}

#[tokio::test]
async fn an_open_stream_holds_its_permit_until_dropped() {
    let fake = Fake::start(ProviderKind::Anthropic).await;
    let llm = limited(&fake, 1, Duration::from_secs(5));

    let stream = llm.chat_stream(conversation()).await.unwrap();
    assert_eq!(llm.in_flight(), 1);

    let waiting = tokio::spawn({
        let llm = llm.clone();
        async move { llm.chat(conversation()).await }
    });
    eventually("the second call queues", async || llm.queued() == 1).await;
    assert_eq!(fake.requests().await.len(), 1);

    drop(stream);
    assert_eq!(waiting.await.unwrap().unwrap().content, "Hello there!");
    assert_eq!((llm.in_flight(), llm.queued()), (0, 0));
}

#[tokio::test]
async fn a_cancelled_waiter_leaves_the_queue() {
    let fake = slow_fake(Duration::from_millis(300)).await;
    let llm = limited(&fake, 1, Duration::from_secs(5));
    let running = tokio::spawn({
        let llm = llm.clone();
        async move { llm.chat(conversation()).await }
    });
    eventually("the first call runs", async || llm.in_flight() == 1).await;
    let gave_up = tokio::time::timeout(Duration::from_millis(50), llm.chat(conversation())).await;
    assert!(gave_up.is_err());
    assert_eq!(llm.queued(), 0);
    assert!(running.await.unwrap().is_ok());
}
