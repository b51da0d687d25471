//! Live configuration: the running coordinator re-reads `config.toml` when it changes (file
//! events wake it; every tick compares the text), applies the live settings from the next
//! dispatch, keeps the previous settings when the new file is invalid, and names the settings
//! that wait for a restart. What it runs on is written to `.wg/service/config-state.json`
//! for `wg service status`, and the last valid file to `.wg/service/config.toml`, which
//! agents read instead of the project's file (`WG_CONFIG`): an invalid edit never breaks an
//! agent's `wg done` or its next turn. Which settings are live: `config::live`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::Coordinator;
use crate::config::live::{self, Applied, NeedsRestart};
use crate::config::Config;
use crate::store::Layout;
use crate::time::now_rfc3339;

/// An emptied file is read again after this long before it counts: editors that truncate
/// before writing show an empty file for a moment, and an empty file is a valid one (every
/// setting at its default).
const EMPTY_SETTLE: Duration = Duration::from_millis(300);

/// What `wg service status` shows about the configuration a coordinator runs on.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConfigState {
    /// When the file last loaded (at start or on a change).
    pub loaded_at: String,
    /// The settings the last reload changed.
    #[serde(default)]
    pub applied: Vec<Applied>,
    /// Settings the file changes that only a restart applies.
    #[serde(default)]
    pub needs_restart: Vec<NeedsRestart>,
    /// The file as it is now is invalid: the previous settings still run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<Rejected>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Rejected {
    pub at: String,
    pub reason: String,
}

pub fn state_file(layout: &Layout) -> std::path::PathBuf {
    layout.service_dir().join("config-state.json")
}

/// The state a running coordinator last wrote, if any.
pub fn read_state(layout: &Layout) -> Option<ConfigState> {
    std::fs::read_to_string(state_file(layout))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
}

/// What the coordinator last read from the file.
#[derive(Default)]
pub(super) struct Seen {
    /// The text (or why it could not be read); `None` before the first check.
    text: Option<Result<String, String>>,
    /// Since when the file has been empty, while that is not yet believed.
    empty_since: Option<Instant>,
}

impl Coordinator {
    /// Re-reads `config.toml` when its text changed since the last look. Returns when to look
    /// again (an emptied file settling), if that is sooner than the next event.
    pub(super) fn check_config(&mut self) -> Option<Instant> {
        let path = self.layout.config();
        let read = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()));
        if self.config_seen.text.as_ref() == Some(&read) {
            return None;
        }
        let first = self.config_seen.text.is_none();
        let was_empty = matches!(&self.config_seen.text, Some(Ok(t)) if t.trim().is_empty());
        if matches!(&read, Ok(t) if t.trim().is_empty()) && !was_empty {
            let now = Instant::now();
            let since = *self.config_seen.empty_since.get_or_insert(now);
            if now < since + EMPTY_SETTLE {
                return Some(since + EMPTY_SETTLE);
            }
        }
        self.config_seen.empty_since = None;
        self.config_seen.text = Some(read.clone());
        let parsed = read.and_then(|text| {
            Config::from_text(&path, &text)
                .map(|c| (c, text))
                .map_err(|e| e.to_string())
        });
        match parsed {
            Ok((new, text)) => self.apply_config(new, &text, first),
            Err(reason) => {
                let reason = live::safe_reason(&reason);
                // One line per decision in the log.
                self.log.line(&format!(
                    "config: the edit is not valid; still running on the previous settings: {}",
                    reason.replace('\n', " ")
                ));
                self.config_state.rejected = Some(Rejected {
                    at: now_rfc3339(),
                    reason,
                });
                self.write_config_state();
            }
        }
        None
    }

    /// `first`: the check at start, which only records what runs.
    fn apply_config(&mut self, new: Config, text: &str, first: bool) {
        let reload = live::plan(&self.config, new);
        let c = &reload.effective.coordinator;
        (self.poll, self.grace, self.retry_base, self.pause_cap) = (
            c.poll_interval.get(),
            c.grace_period.get(),
            c.retry_backoff.get(),
            c.endpoint_backoff_max.get(),
        );
        self.max_agents = self.opts.max_agents.unwrap_or(c.max_agents).max(1);
        self.store.fsync = reload.effective.fsync();
        self.config = reload.effective;
        // A changed binary or executor table gets a fresh health check at its next dispatch.
        self.health.clear();
        if let Err(e) = crate::store::atomic::write_atomic(
            &self.layout.running_config(),
            text.as_bytes(),
            false,
        ) {
            self.log
                .line(&format!("config: cannot write the agents' copy: {e}"));
        }
        let new_pending: Vec<&NeedsRestart> = reload
            .needs_restart
            .iter()
            .filter(|n| !self.config_state.needs_restart.contains(n))
            .collect();
        // A change that only waits for a restart is said once, below.
        let only_pending = reload.applied.is_empty() && !new_pending.is_empty();
        if !first && !only_pending {
            self.log_reload(&reload.applied);
        }
        for n in new_pending {
            self.log.line(&format!(
                "config: {} needs a restart (`wg service stop` then `wg service start`) to \
                 change: {}",
                n.key, n.reason
            ));
        }
        self.config_state = ConfigState {
            loaded_at: now_rfc3339(),
            applied: reload.applied,
            needs_restart: reload.needs_restart,
            rejected: None,
        };
        self.write_config_state();
    }

    fn log_reload(&self, applied: &[Applied]) {
        if applied.is_empty() {
            self.log.line("config: re-read; no setting changed");
            return;
        }
        let list: Vec<String> = applied
            .iter()
            .map(|a| format!("{} = {}", a.key, a.value))
            .collect();
        self.log.line(&format!(
            "config: applied from the next dispatch: {}",
            list.join(", ")
        ));
        if !self.agents.is_empty() {
            self.log.line(&format!(
                "config: {} running agent(s) keep the settings they started with (endpoint, \
                 model, timeouts) until their turn ends",
                self.agents.len()
            ));
        }
        if let Some(n) = self
            .opts
            .max_agents
            .filter(|_| applied.iter().any(|a| a.key == "coordinator.max_agents"))
        {
            self.log.line(&format!(
                "config: coordinator.max_agents is overridden by --max-agents {n}, given at start"
            ));
        }
    }

    fn write_config_state(&self) {
        let json =
            serde_json::to_vec_pretty(&self.config_state).expect("config state always serializes");
        if let Err(e) = crate::store::atomic::write_atomic(&state_file(&self.layout), &json, false)
        {
            self.log
                .line(&format!("cannot write the config state: {e}"));
        }
    }
}
