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
//! - `files`: [`Client::download_file`] fetches a message's file (streamed, bounded,
//!   only from the API host) as a [`Download`] outcome.
//! - [`device`] and [`mercury`]: websocket mode instead of webhooks: register a device
//!   (WDM, found through the U2C catalog), hold its Mercury socket, and translate each
//!   frame into an event with REST ids ([`rest_id`]), the ones a webhook would carry.
//! - [`mention`]: whether a message mentions the bot, and its text without the mention.
//! - [`split`]: split a long markdown answer under Webex's size limit.
//! - `error`: the client's [`Error`].

mod client;
pub mod device;
mod error;
mod event;
mod files;
mod ids;
pub mod mention;
pub mod mercury;
mod retry;
pub mod signature;
pub mod split;
mod types;

pub use client::{Client, ClientConfig};
pub use error::Error;
pub use event::{EventData, EventParseError, WebhookEvent};
pub use files::{Download, DownloadPolicy, FileContent, content_type_of, filename_of, guess_type};
pub use ids::{MessageId, PersonId, RoomId, WebhookId, rest_id};
pub use retry::RetryPolicy;
pub use types::{
    ADAPTIVE_CARD_CONTENT_TYPE, AttachmentAction, CardAttachment, Listing, Message, NewCardMessage,
    NewMessage, NewWebhook, Person, Room, RoomType, UpdateWebhook, Webhook,
};
