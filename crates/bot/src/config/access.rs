//! Who may talk to the bot besides the approved users the store keeps: `ADMIN_EMAILS`,
//! `APPROVED_DOMAINS` (docs/configuration.md, "Who may talk to the bot").

use super::env::{ConfigError, Reader};
use crate::domain::Email;

/// The access settings, borrowed from the [`super::Config`] (what the access stage and the
/// user commands read).
#[derive(Clone, Copy, Debug)]
pub struct Access<'a> {
    pub admin_emails: &'a [Email],
    /// Lower case, without a leading `@`.
    pub approved_domains: &'a [String],
}

impl Access<'_> {
    /// Whether this email is one of `ADMIN_EMAILS`.
    pub fn is_admin(&self, email: &Email) -> bool {
        self.admin_emails.contains(email)
    }

    /// Whether this email's domain is one of `APPROVED_DOMAINS`.
    pub fn domain_approved(&self, email: &Email) -> bool {
        self.approved_domains.iter().any(|d| d == email.domain())
    }
}

/// `ADMIN_EMAILS`: a comma-separated list of emails.
pub(super) fn admin_emails(r: &Reader<'_>) -> Result<Vec<Email>, ConfigError> {
    let mut admin_emails = Vec::new();
    for raw in r.list("ADMIN_EMAILS") {
        let email = Email::parse(&raw)
            .map_err(|e| ConfigError::new("ADMIN_EMAILS", format!("{raw:?}: {e}")))?;
        admin_emails.push(email);
    }
    Ok(admin_emails)
}

/// `APPROVED_DOMAINS`: a comma-separated list, `@` and case ignored.
pub(super) fn approved_domains(r: &Reader<'_>) -> Vec<String> {
    r.list("APPROVED_DOMAINS")
        .into_iter()
        .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
        .collect()
}
