//! The error a command returns: what happened, its causes, hints, and the exit code.

use std::fmt;

use crate::conversation::ConversationError;
use crate::exit;
use crate::store::jsonl::ReadError;
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
    /// `--until-done` endings (see docs/exit-codes.md).
    TasksFailed,
    Stuck,
    Paused,
    /// A file could not be read or written (a full disk, permissions).
    Io,
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
            Kind::TasksFailed => "tasks-failed",
            Kind::Stuck => "stuck",
            Kind::Paused => "paused",
            Kind::Io => "io",
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
            Kind::TasksFailed => exit::TASKS_FAILED,
            Kind::Stuck => exit::STUCK,
            Kind::Paused => exit::PAUSED,
            Kind::Io => exit::IO,
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

    /// The exit code. A failure or "bug" whose cause is a corrupt line or a full disk says
    /// so, whichever path it came up by.
    pub fn exit_code(&self) -> u8 {
        match self.kind {
            Kind::User | Kind::Internal => self
                .error
                .chain()
                .find_map(cause_kind)
                .unwrap_or(self.kind)
                .exit_code(),
            k => k.exit_code(),
        }
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
        let kind = io_kind(&e).unwrap_or(Kind::User);
        CliError::new(kind, e)
    }
}

/// I/O errors that are the machine's, not the command's: a full disk or quota, a read-only
/// file system, a device error.
fn io_kind(e: &std::io::Error) -> Option<Kind> {
    use std::io::ErrorKind as K;
    let machine = matches!(
        e.kind(),
        K::StorageFull | K::QuotaExceeded | K::ReadOnlyFilesystem | K::PermissionDenied
    ) || e.raw_os_error() == Some(libc::EIO);
    machine.then_some(Kind::Io)
}

/// What a cause in an error chain says about the exit code, if anything.
fn cause_kind(e: &(dyn std::error::Error + 'static)) -> Option<Kind> {
    if let Some(e) = e.downcast_ref::<std::io::Error>() {
        return io_kind(e);
    }
    if let Some(ConversationError::Read(r)) = e.downcast_ref::<ConversationError>() {
        return Some(read_kind(r));
    }
    if let Some(r) = e.downcast_ref::<ReadError>() {
        return Some(read_kind(r));
    }
    if let Some(StoreError::Corrupt { .. }) = e.downcast_ref::<StoreError>() {
        return Some(Kind::Corrupt);
    }
    None
}

fn read_kind(e: &ReadError) -> Kind {
    match e {
        ReadError::Bad(_) => Kind::Corrupt,
        ReadError::Io { source, .. } => io_kind(source).unwrap_or(Kind::Io),
    }
}

const CORRUPT_LINE_HINT: &str = "nothing was changed; fix or remove that line by hand (one JSON record per line), then run the command again";

impl From<ReadError> for CliError {
    fn from(e: ReadError) -> Self {
        let kind = read_kind(&e);
        let err = CliError::new(kind, e);
        if kind == Kind::Corrupt {
            err.hinted(CORRUPT_LINE_HINT)
        } else {
            err
        }
    }
}

impl From<ConversationError> for CliError {
    fn from(e: ConversationError) -> Self {
        match e {
            ConversationError::Read(r) => r.into(),
            ConversationError::Lock(l) => StoreError::Locked(l).into(),
            w @ ConversationError::Write { .. } => {
                let kind = cause_kind_of(&w).unwrap_or(Kind::Io);
                CliError::new(kind, w)
            }
        }
    }
}

fn cause_kind_of(e: &(dyn std::error::Error + 'static)) -> Option<Kind> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(k) = c.downcast_ref::<std::io::Error>().and_then(io_kind) {
            return Some(k);
        }
        cur = c.source();
    }
    None
}

pub type CliResult<T = ()> = Result<T, CliError>;
