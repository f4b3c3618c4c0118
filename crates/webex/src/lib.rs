//! Webex REST client and webhook primitives for webex-chatbot; no bot logic.
//!
//! # Layout
//!
//! In the order a message flows through them:
//!
//! - [`signature`]: verify `X-Spark-Signature` over the raw webhook body.
//! - `event`: parse the webhook envelope ([`WebhookEvent`]); it carries no text.
//! - `client`: [`Client`] fetches the message (or a submitted card's inputs) and posts the
//!   answer (text or one Adaptive Card), retrying 429/5xx ([`RetryPolicy`]); also people
//!   and webhook management.
//! - `types` and `ids`: the Webex resources ([`Message`], [`Person`], [`Webhook`], …)
//!   and id newtypes ([`PersonId`] compares base64 and raw-uuid forms).
//! - [`mention`]: whether a message mentions the bot, and its text without the mention.
//! - [`split`]: split a long markdown answer under Webex's size limit.
//! - `error`: the client's [`Error`].

mod client;
mod error;
mod event;
mod ids;
pub mod mention;
mod retry;
pub mod signature;
pub mod split;
mod types;

pub use client::{Client, ClientConfig};
pub use error::Error;
pub use event::{EventData, EventParseError, WebhookEvent};
pub use ids::{MessageId, PersonId, RoomId, WebhookId};
pub use retry::RetryPolicy;
pub use types::{
    ADAPTIVE_CARD_CONTENT_TYPE, AttachmentAction, CardAttachment, Listing, Message, NewCardMessage,
    NewMessage, NewWebhook, Person, Room, RoomType, UpdateWebhook, Webhook,
};
