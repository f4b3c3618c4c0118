//! The limit stage, between the route and the LLM (DESIGN §10.6): a question over a usage
//! limit gets one short answer saying when the limit resets, and no LLM call. Admins are
//! exempt. The counts live in the shared store, so limits hold across replicas and restarts.

use super::{Context, Disposition, post_failure, reply};
use crate::domain::Outcome;
use crate::pipeline::access::Rights;
use crate::store::StoreError;
use crate::strings;
use crate::usage::{Ledger, Refusal};

/// `None`: the question may go to the LLM.
pub(super) async fn check(
    usage: &Ledger,
    ctx: &Context,
    message_id: &str,
) -> Result<Option<Refusal>, StoreError> {
    if ctx.rights == Rights::Admin {
        return Ok(None);
    }
    usage.check(ctx.who(), message_id).await
}

/// Posts the refusal.
pub(super) async fn refuse(
    post: reply::Poster<'_>,
    progress: reply::Progress,
    ctx: &Context,
    refusal: Refusal,
) -> Disposition {
    tracing::info!(
        sender = %ctx.sender,
        limit = refusal.limit.as_str(),
        resets_in_s = refusal.wait().as_secs(),
        "usage limit reached; not asking the LLM"
    );
    let answer = strings::limit_reached(&refusal);
    match post.post(progress, &ctx.target, &answer).await {
        Ok(()) => Disposition::Done {
            outcome: Outcome::Limited,
            turns: None,
        },
        Err(e) => post_failure(e, "posting the limit answer"),
    }
}
