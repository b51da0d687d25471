//! Why a `wg handler` run could not take its turns.

use crate::conversation;
use crate::error::CliError;

/// Why a run could not take its turns. A turn that fails is not one of these: it is an
/// `error` reply in the outbox and [`SessionEnd::error`].
#[derive(Debug)]
pub enum SessionError {
    NotFound(String),
    /// The task cannot take turns here (finished, another executor, no bridge).
    Refused {
        message: String,
        hint: Option<String>,
    },
    /// The configuration cannot run a turn.
    Config {
        message: String,
        hint: Option<String>,
    },
    /// The turn lock could not be read.
    Locked(crate::store::lock::LockError),
    /// The store or a status change refused (already typed by the store layer).
    Store(CliError),
    Io(std::io::Error),
    /// The task's conversation files could not be read or written.
    Conversation(anyhow::Error),
}

impl SessionError {
    pub fn config(message: impl Into<String>) -> SessionError {
        SessionError::Config {
            message: message.into(),
            hint: None,
        }
    }
}

impl From<CliError> for SessionError {
    fn from(e: CliError) -> SessionError {
        SessionError::Store(e)
    }
}

impl From<crate::store::StoreError> for SessionError {
    fn from(e: crate::store::StoreError) -> SessionError {
        SessionError::Store(e.into())
    }
}

impl From<conversation::ConversationError> for SessionError {
    fn from(e: conversation::ConversationError) -> SessionError {
        SessionError::Conversation(e.into())
    }
}

impl From<crate::store::jsonl::ReadError> for SessionError {
    fn from(e: crate::store::jsonl::ReadError) -> SessionError {
        SessionError::Conversation(e.into())
    }
}

impl From<std::io::Error> for SessionError {
    fn from(e: std::io::Error) -> SessionError {
        SessionError::Io(e)
    }
}
