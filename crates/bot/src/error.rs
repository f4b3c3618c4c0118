//! The one error the binary's commands end in, with its exit code (DESIGN: 0 ok, 1 a
//! failure at run time, 2 bad configuration, with a message naming the variable).

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Exit 2: a variable is missing or wrong.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// Exit 2: bad configuration or arguments, said in full (naming the variable).
    #[error("{0}")]
    Usage(String),
    /// Exit 1: something failed at run time.
    #[error("{0:#}")]
    Runtime(#[from] anyhow::Error),
}

impl AppError {
    /// Exit 2 for a variable that is wrong (`what` names it, then what is wrong).
    pub fn bad_config(what: impl std::fmt::Display) -> Self {
        AppError::Usage(format!("configuration error: {what}"))
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::Config(_) | AppError::Usage(_) => 2,
            AppError::Runtime(_) => 1,
        }
    }
}
