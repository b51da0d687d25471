//! `[checks]` and the landing settings of `[workspace]`: what wg runs itself after an agent's
//! `wg done`, and how finished worktree tasks land on the base branch. See docs/landing.md.

use serde::{Deserialize, Serialize};

/// `[checks]` in config.toml: the project's default checks (a task's `--check` replaces them).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChecksConfig {
    /// Shell commands (`sh -c`), run in order in the task's workspace; the first failure stops.
    pub commands: Vec<String>,
    /// Longest one command may run; it is killed (its whole process group) after that.
    pub timeout: String,
    /// Check rounds a task gets: the round that fails last makes the task `needs-input`.
    pub max_rounds: u32,
    /// Characters of output kept per command (its tail) in `checks.jsonl` and messages.
    pub tail_chars: usize,
}

impl Default for ChecksConfig {
    fn default() -> Self {
        ChecksConfig {
            commands: Vec::new(),
            timeout: "10m".into(),
            max_rounds: 3,
            tail_chars: 4_000,
        }
    }
}

/// `workspace.land_by`: how the merge queue puts a task branch onto the base tip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LandBy {
    /// A merge commit (`git merge --no-ff`): the task's own commits stay as they were.
    #[default]
    Merge,
    /// The task's commits replayed onto the tip (`git rebase`): a linear history.
    Rebase,
}

impl LandBy {
    pub fn as_str(self) -> &'static str {
        match self {
            LandBy::Merge => "merge",
            LandBy::Rebase => "rebase",
        }
    }
}

impl ChecksConfig {
    pub fn validate(&self) -> Result<(), String> {
        let d = crate::time::parse_duration(&self.timeout)
            .map_err(|e| format!("checks.timeout: {e}"))?;
        if d.is_zero() {
            return Err(format!(
                "checks.timeout = \"{}\": must be more than zero",
                self.timeout
            ));
        }
        if self.max_rounds == 0 {
            return Err("checks.max_rounds = 0: must be at least 1".into());
        }
        if let Some(i) = self.commands.iter().position(|c| c.trim().is_empty()) {
            return Err(format!("checks.commands[{i}] is empty"));
        }
        Ok(())
    }
}
