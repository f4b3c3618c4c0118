//! Access control (docs/configuration.md, "Who may talk to the bot"): by the sender's email as Webex reports it.

use crate::domain::Email;
use crate::state::AppState;
use crate::store::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rights {
    /// In `ADMIN_EMAILS`: every command.
    Admin,
    /// Approved (by email or domain): the everyday commands and the LLM.
    Approved,
}

/// `Some(rights)` for admins, approved users and people of an approved domain; `None` for
/// everyone else, who is ignored without a reply.
pub async fn rights_of(state: &AppState, sender: &Email) -> Result<Option<Rights>, StoreError> {
    if state.config.is_admin(sender) {
        return Ok(Some(Rights::Admin));
    }
    if state
        .config
        .approved_domains
        .iter()
        .any(|d| d == sender.domain())
    {
        return Ok(Some(Rights::Approved));
    }
    Ok(state
        .store
        .is_approved(sender)
        .await?
        .then_some(Rights::Approved))
}
