//! The agent CLIs behind the turn loop: codex and claude, one module each, behind one small
//! trait. The loop (`session`) builds the prompt, spawns, records; an agent says how its
//! command looks and what its failure was. Its event stream is read by [`TurnEvents`],
//! which the dialect picks.

use serde_json::{Map, Value};

use super::error::SessionError;
use super::events::{Dialect, TurnEvents};
use super::files::HandlerLog;
use super::resolve::Resolved;
use crate::config::Config;
use crate::conversation::Usage;
use crate::outcome::ErrorKind;

/// The command of one turn, after the binary.
#[derive(Debug, Default)]
pub struct Invocation {
    pub args: Vec<String>,
    /// Set on top of wg's own variables (WG_DIR, WG_TASK_ID, PATH...) and the allowlist;
    /// nothing else of the handler's environment is inherited.
    pub env: Vec<(String, String)>,
    /// What `handler.log`'s `spawn` line names as the agent's home: (key, value).
    pub home: (&'static str, String),
}

pub trait AgentCli {
    fn dialect(&self) -> Dialect;

    /// The command line and environment of one turn; may prepare per-task files.
    fn invocation(
        &self,
        r: &Resolved,
        config: &Config,
        log: &mut HandlerLog,
        turn: u64,
    ) -> Result<Invocation, SessionError>;

    /// The kind of a failed turn, from its events and its final message.
    fn classify(&self, events: &TurnEvents, detail: &str) -> ErrorKind;

    /// Fields of an assistant record beyond the common ones.
    fn reply_extra(
        &self,
        _r: &Resolved,
        _config: &Config,
        _version: Option<&str>,
        _usage: &Usage,
        _extra: &mut Map<String, Value>,
    ) {
    }
}
