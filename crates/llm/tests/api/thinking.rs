//! `<think>` blocks are removed from answers, whole and streamed, unless asked to keep them.

use futures_util::StreamExt;
use llm::{Llm, LlmError, Options, ProviderKind};

use crate::fakes::{Fake, collect, conversation, deltas};

#[tokio::test]
async fn whole_answers_lose_their_thinking() {
    let fake = Fake::answering(
        ProviderKind::Ollama,
        &["<think>\nThe user wants X.\n</think>\n\n", "X it is."],
    )
    .await;
    assert_eq!(
        fake.llm().chat(conversation()).await.unwrap().content,
        "X it is."
    );
}

#[tokio::test]
async fn streamed_answers_lose_thinking_split_across_chunks() {
    let pieces = [
        "<thi",
        "nk>secret plan",
        "</th",
        "ink>",
        "\n\nDone",
        " here.",
    ];
    for kind in [ProviderKind::OpenAiCompatible, ProviderKind::Ollama] {
        let fake = Fake::answering(kind, &pieces).await;
        let deltas = deltas(fake.llm().chat_stream(conversation()).await.unwrap()).await;
        assert_eq!(deltas.concat(), "Done here.", "{kind}");
        assert!(
            deltas
                .iter()
                .all(|d| !d.contains("secret") && !d.contains('<')),
            "{deltas:?}"
        );
    }
}

#[tokio::test]
async fn show_thinking_keeps_the_blocks() {
    let fake = Fake::answering(
        ProviderKind::OpenAiCompatible,
        &["<think>why</think>", "Because."],
    )
    .await;
    let options = Options {
        show_thinking: true,
        ..Options::default()
    };
    let llm = Llm::new(reqwest::Client::new(), fake.config(), None, options).unwrap();
    assert_eq!(
        llm.chat(conversation()).await.unwrap().content,
        "<think>why</think>Because."
    );
    let streamed = collect(llm.chat_stream(conversation()).await.unwrap()).await;
    assert_eq!(streamed.unwrap(), "<think>why</think>Because.");
}

#[tokio::test]
async fn an_answer_that_is_only_thinking_is_empty() {
    let fake = Fake::answering(
        ProviderKind::Ollama,
        &["<think>cut off while still thinking"],
    )
    .await;
    let err = fake.llm().chat(conversation()).await.unwrap_err();
    assert!(matches!(err, LlmError::Malformed { .. }), "{err:?}");

    let mut stream = fake.llm().chat_stream(conversation()).await.unwrap();
    assert!(matches!(
        stream.next().await,
        Some(Err(LlmError::Malformed { .. }))
    ));
    assert!(stream.next().await.is_none());
}

#[test]
fn strip_thinking_is_public_and_trims() {
    assert_eq!(llm::strip_thinking("  <think>a</think> b  "), "b");
}
