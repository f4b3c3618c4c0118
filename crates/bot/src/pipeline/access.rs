//! Access control (docs/configuration.md, "Who may talk to the bot"): by the sender's email as Webex reports it.

use crate::domain::Email;
use crate::state::AppState;
use crate::store::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Admin,
    User,
}

/// `Some(role)` for admins, approved users and people of an approved domain; `None` for
/// everyone else, who is ignored without a reply.
pub async fn role_of(state: &AppState, sender: &Email) -> Result<Option<Role>, StoreError> {
    if state.config.is_admin(sender) {
        return Ok(Some(Role::Admin));
    }
    if state
        .config
        .approved_domains
        .iter()
        .any(|d| d == sender.domain())
    {
        return Ok(Some(Role::User));
    }
    Ok(state.store.is_approved(sender).await?.then_some(Role::User))
}
