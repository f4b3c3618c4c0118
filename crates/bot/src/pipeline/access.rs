//! Access control (docs/configuration.md, "Who may talk to the bot"): by the sender's email as Webex reports it.

use crate::config::Access;
use crate::domain::Email;
use crate::store::{Store, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rights {
    /// In `ADMIN_EMAILS`: every command.
    Admin,
    /// Approved (by email or domain): the everyday commands and the LLM.
    Approved,
}

/// `Some(rights)` for admins, approved users and people of an approved domain; `None` for
/// everyone else, who is ignored without a reply.
pub async fn rights_of(
    access: Access<'_>,
    store: &Store,
    sender: &Email,
) -> Result<Option<Rights>, StoreError> {
    if access.is_admin(sender) {
        return Ok(Some(Rights::Admin));
    }
    if access.domain_approved(sender) {
        return Ok(Some(Rights::Approved));
    }
    Ok(store.is_approved(sender).await?.then_some(Rights::Approved))
}
