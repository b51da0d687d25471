//! The error a command returns: what happened, its causes, hints, and the exit code.

use std::fmt;

use crate::exit;
use crate::store::lock::LockError;
use crate::store::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A refused change or a failed operation (exit 1).
    User,
    Usage,
    Config,
    NotFound,
    Locked,
    Unavailable,
    Corrupt,
    Internal,
}

impl Kind {
    /// The name `--json` errors carry (`"kind"`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::User => "failed",
            Kind::Usage => "usage",
            Kind::Config => "config",
            Kind::NotFound => "not-found",
            Kind::Locked => "locked",
            Kind::Unavailable => "unavailable",
            Kind::Corrupt => "corrupt",
            Kind::Internal => "internal",
        }
    }

    pub fn exit_code(self) -> u8 {
        match self {
            Kind::User => exit::FAILURE,
            Kind::Usage => exit::USAGE,
            Kind::Config => exit::CONFIG,
            Kind::NotFound => exit::NOT_FOUND,
            Kind::Locked => exit::LOCKED,
            Kind::Unavailable => exit::UNAVAILABLE,
            Kind::Corrupt => exit::CORRUPT,
            Kind::Internal => exit::INTERNAL,
        }
    }
}

pub struct CliError {
    pub kind: Kind,
    pub error: anyhow::Error,
    pub hints: Vec<String>,
}

impl CliError {
    pub fn new(kind: Kind, error: impl Into<anyhow::Error>) -> CliError {
        CliError {
            kind,
            error: error.into(),
            hints: Vec::new(),
        }
    }

    pub fn hinted(mut self, hint: impl Into<String>) -> CliError {
        self.hints.push(hint.into());
        self
    }

    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }

    /// The error as one JSON object, for commands run with `--json` (see docs/exit-codes.md).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "kind": self.kind.name(),
                "exit_code": self.exit_code(),
                "message": self.error.to_string(),
                "causes": self.error.chain().skip(1).map(|c| c.to_string()).collect::<Vec<_>>(),
                "hints": self.hints,
            }
        })
    }
}

impl fmt::Debug for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:#}", self.kind, self.error)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.error)?;
        for cause in self.error.chain().skip(1) {
            write!(f, "\n  caused by: {cause}")?;
        }
        for hint in &self.hints {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

pub fn user_error(msg: impl fmt::Display) -> CliError {
    CliError::new(Kind::User, anyhow::anyhow!("{msg}"))
}
pub fn usage_error(msg: impl fmt::Display) -> CliError {
    CliError::new(Kind::Usage, anyhow::anyhow!("{msg}"))
}
pub fn config_error(msg: impl fmt::Display) -> CliError {
    CliError::new(Kind::Config, anyhow::anyhow!("{msg}"))
}
pub fn not_found(id: &str) -> CliError {
    CliError::new(Kind::NotFound, anyhow::anyhow!("no task `{id}`"))
        .hinted("`wg list` shows every task id")
}
pub fn internal(e: impl Into<anyhow::Error>) -> CliError {
    CliError::new(Kind::Internal, e)
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt { .. } => CliError::new(Kind::Corrupt, e).hinted(
                "nothing was changed; fix or remove that line by hand (the store keeps one JSON task record per line), then run the command again",
            ),
            StoreError::Locked(LockError::Busy { .. }) => CliError::new(Kind::Locked, e)
                .hinted("another wg command is writing; try again, or look for a stuck wg process"),
            StoreError::TooNew { .. } => {
                CliError::new(Kind::Config, e).hinted("upgrade wg to open this project")
            }
            other => CliError::new(Kind::User, other),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::new(Kind::User, e)
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;
