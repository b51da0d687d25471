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
use crate::config::guard;
use crate::config::live::{self, Applied, NeedsRestart};
use crate::config::Config;
use crate::store::Layout;
use crate::time::now_rfc3339;

/// A changed file counts once its text has stayed the same this long: an editor that
/// truncates and then writes shows a half-written file for a moment.
const SETTLE: Duration = Duration::from_millis(500);

/// How often a held (suspect) file is looked at again for its confirmation.
const HELD_POLL: Duration = Duration::from_millis(500);

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
    /// The file as it is now drops settings the running one has: held until confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held: Option<Held>,
}

/// A valid edit that is not applied, because it drops settings the running file has.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Held {
    pub at: String,
    /// The settings the running file has and the new one does not.
    pub dropped: Vec<String>,
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
    /// The text last judged (or why it could not be read); `None` before the first check.
    text: Option<Result<String, String>>,
    /// A new text and since when it has stayed the same, while it settles.
    settling: Option<(Result<String, String>, Instant)>,
    /// The text the running settings came from.
    running: Option<String>,
}

impl Coordinator {
    /// Re-reads `config.toml` when its text changed since the last look. Returns when to look
    /// again (an emptied file settling), if that is sooner than the next event.
    pub(super) fn check_config(&mut self) -> Option<Instant> {
        let path = self.layout.config();
        let read = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()));
        let first = self.config_seen.text.is_none();
        if self.config_seen.text.as_ref() == Some(&read) {
            self.config_seen.settling = None;
            return self.recheck_held(&path);
        }
        if !first {
            // A new text counts once it has stopped changing.
            let now = Instant::now();
            let since = match &self.config_seen.settling {
                Some((t, since)) if *t == read => *since,
                _ => {
                    self.config_seen.settling = Some((read, now));
                    return Some(now + SETTLE);
                }
            };
            if now < since + SETTLE {
                return Some(since + SETTLE);
            }
        }
        self.config_seen.settling = None;
        self.config_seen.text = Some(read.clone());
        let parsed = read.and_then(|text| {
            Config::from_text(&path, &text)
                .map(|c| (c, text))
                .map_err(|e| e.to_string())
        });
        match parsed {
            Ok((_, text)) if !first && self.holds(&text) => {
                return Some(Instant::now() + HELD_POLL);
            }
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

    /// Whether the valid edit `text` is held as suspect: it drops settings the running file
    /// has, and no one confirmed it. Said once per held edit, in the log and the state file.
    fn holds(&mut self, text: &str) -> bool {
        let Some(running) = &self.config_seen.running else {
            return false;
        };
        let dropped = guard::dropped(running, text);
        if dropped.is_empty() || guard::is_confirmed(&guard::confirm_file(&self.layout), text) {
            return false;
        }
        if self.config_state.held.as_ref().map(|h| &h.dropped) != Some(&dropped) {
            self.log.line(&format!(
                "config: the edit drops {} setting(s) the running file has ({}); held, not \
                 applied: the previous settings still run until `wg config confirm` (or a \
                 `wg config set`) confirms the file",
                dropped.len(),
                short_list(&dropped)
            ));
            self.config_state.held = Some(Held {
                at: now_rfc3339(),
                dropped,
            });
            self.write_config_state();
        }
        true
    }

    /// A held edit that has since been confirmed is applied.
    fn recheck_held(&mut self, path: &std::path::Path) -> Option<Instant> {
        self.config_state.held.as_ref()?;
        let Some(Ok(text)) = self.config_seen.text.clone() else {
            return None;
        };
        if !guard::is_confirmed(&guard::confirm_file(&self.layout), &text) {
            return Some(Instant::now() + HELD_POLL);
        }
        if let Ok(new) = Config::from_text(path, &text) {
            self.log.line("config: the held edit was confirmed");
            self.apply_config(new, &text, false);
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
        // A re-read that changed nothing (a comment edited) keeps showing the last reload
        // that did change something.
        let (loaded_at, applied) = if reload.applied.is_empty() && !first {
            let old = std::mem::take(&mut self.config_state);
            (old.loaded_at, old.applied)
        } else {
            (now_rfc3339(), reload.applied)
        };
        self.config_state = ConfigState {
            loaded_at,
            applied,
            needs_restart: reload.needs_restart,
            rejected: None,
            held: None,
        };
        self.config_seen.running = Some(text.to_string());
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

/// Up to eight names, then how many more.
fn short_list(keys: &[String]) -> String {
    let mut s = keys.iter().take(8).cloned().collect::<Vec<_>>().join(", ");
    if keys.len() > 8 {
        s.push_str(&format!(" and {} more", keys.len() - 8));
    }
    s
}
