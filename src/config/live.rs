//! Which settings a running coordinator applies when `config.toml` changes, and which wait for
//! a restart. Pure: the coordinator (`coordinator/reload.rs`) reads the file and acts on the
//! [`Reload`] computed here. See docs/coordinator.md, "Live configuration".
//!
//! Everything is live (read at the next dispatch, decision or turn) except the few settings a
//! coordinator fixes when it starts; those keep their old value until `wg service restart`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Config;

/// A setting that changed and was applied, with its new value as shown in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub key: String,
    pub value: String,
}

/// A setting whose new value waits for a restart, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeedsRestart {
    pub key: String,
    pub reason: String,
}

/// What a reload does: the config to run on from now, what changed in it, and what the file
/// says that only a restart applies.
#[derive(Debug, Clone)]
pub struct Reload {
    /// The new file's settings, with every restart-only setting kept at its running value.
    pub effective: Config,
    pub applied: Vec<Applied>,
    /// Every restart-only setting whose file value differs from the running one (not only
    /// those changed by this edit: an earlier pending change is still pending).
    pub needs_restart: Vec<NeedsRestart>,
}

/// Why a setting is fixed for a coordinator's run, or `None` when it is live.
pub fn restart_reason(key: &str) -> Option<&'static str> {
    let parts: Vec<&str> = key.split('.').collect();
    match parts.as_slice() {
        ["coordinator", "launcher"] | ["executors", _, "launcher"] => Some(
            "where agents run is fixed for a coordinator's run: its running agents and its \
             recovery after a crash depend on it",
        ),
        ["slurm", "poll_interval"] => {
            Some("the Slurm job monitor keeps the interval it started with")
        }
        ["notify", ..] => Some("the webhook sender keeps the URL and token it started with"),
        ["web", ..] => Some("the board is started with the coordinator"),
        _ => None,
    }
}

/// `new` as the running coordinator would apply it over `running`.
pub fn plan(running: &Config, new: Config) -> Reload {
    let effective = keep_restart_only(running, new.clone());
    let old = flatten(running);
    let eff = flatten(&effective);
    let file = flatten(&new);
    let applied = changed_keys(&old, &eff)
        .into_iter()
        .map(|key| Applied {
            value: shown(eff.get(&key)),
            key,
        })
        .collect();
    let needs_restart = changed_keys(&eff, &file)
        .into_iter()
        .filter_map(|key| {
            restart_reason(&key).map(|r| NeedsRestart {
                key,
                reason: r.to_string(),
            })
        })
        .collect();
    Reload {
        effective,
        applied,
        needs_restart,
    }
}

/// `new` with every restart-only setting set back to its value in `running`.
fn keep_restart_only(running: &Config, mut new: Config) -> Config {
    new.coordinator.launcher = running.coordinator.launcher;
    new.slurm.poll_interval = running.slurm.poll_interval.clone();
    new.notify = running.notify.clone();
    new.web = running.web.clone();
    let names: Vec<String> = new
        .executors
        .keys()
        .chain(running.executors.keys())
        .cloned()
        .collect();
    for name in names {
        match running.executors.get(&name).and_then(|x| x.launcher) {
            Some(l) => new.executors.entry(name).or_default().launcher = Some(l),
            None => {
                if let Some(x) = new.executors.get_mut(&name) {
                    x.launcher = None;
                }
            }
        }
    }
    new
}

/// Every leaf setting as `dotted.key → value` (tables are walked; arrays are leaves).
fn flatten(c: &Config) -> std::collections::BTreeMap<String, Value> {
    fn walk(prefix: &str, v: &Value, out: &mut std::collections::BTreeMap<String, Value>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, v, out);
                }
            }
            _ => {
                out.insert(prefix.to_string(), v.clone());
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    let v = serde_json::to_value(c).expect("a config always serializes");
    walk("", &v, &mut out);
    out
}

fn changed_keys(
    a: &std::collections::BTreeMap<String, Value>,
    b: &std::collections::BTreeMap<String, Value>,
) -> Vec<String> {
    let mut keys: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Why an edit was refused, fit for `coordinator.log` and `wg service status`: a TOML error
/// quotes the offending line of the file, and that line may hold a pasted key, so quoted
/// source lines are dropped, and a quoted value that looks like a key is masked.
pub fn safe_reason(reason: &str) -> String {
    let source_line = |l: &str| {
        let t = l.trim_start();
        let digits = t.chars().take_while(char::is_ascii_digit).count();
        let rest = t[digits..].trim_start();
        (digits > 0 && rest.starts_with('|'))
            || (!t.is_empty() && t.chars().all(|c| matches!(c, '|' | '^' | ' ')))
    };
    let kept: Vec<&str> = reason.lines().filter(|l| !source_line(l)).collect();
    let mut out = String::new();
    for (i, line) in kept.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&mask_quoted(line));
    }
    out
}

/// Masks every `"..."` or `` `...` `` segment that looks like a pasted key.
fn mask_quoted(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find(['"', '`']) {
        let q = rest.as_bytes()[open] as char;
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
        let Some(close) = rest.find(q) else { break };
        let inner = &rest[..close];
        match super::key_name::check(inner) {
            Err(e) if e.is_pasted() => out.push_str(&super::key_name::masked(inner)),
            _ => out.push_str(inner),
        }
        out.push(q);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// A value for the log: strings bare, others as JSON, long ones cut.
fn shown(v: Option<&Value>) -> String {
    let s = match v {
        None | Some(Value::Null) => "(unset)".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    if s.chars().count() > 80 {
        format!("{}…", s.chars().take(79).collect::<String>())
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        Config::parse(text).unwrap()
    }

    #[test]
    fn live_settings_are_applied_and_named_with_their_new_value() {
        let old = cfg("[coordinator]\nmax_agents = 1\n");
        let new = cfg("[coordinator]\nmax_agents = 3\nfirst_output_timeout = \"20s\"\n[evaluate]\nauto = true\n");
        let r = plan(&old, new);
        assert_eq!(r.effective.coordinator.max_agents, 3);
        assert!(r.effective.evaluate.auto);
        let keys: Vec<(&str, &str)> = r
            .applied
            .iter()
            .map(|a| (a.key.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            keys,
            [
                ("coordinator.first_output_timeout", "20s"),
                ("coordinator.max_agents", "3"),
                ("evaluate.auto", "true"),
            ]
        );
        assert!(r.needs_restart.is_empty());
    }

    #[test]
    fn restart_only_settings_keep_their_running_value_and_stay_pending() {
        let old = cfg("[executors.mock]\nturn_ms = 5\n");
        let new = cfg("[coordinator]\nlauncher = \"slurm\"\n[executors.mock]\nturn_ms = 9\nlauncher = \"slurm\"\n[notify]\nurl = \"http://hook/x\"\n");
        let r = plan(&old, new.clone());
        assert_eq!(
            r.effective.coordinator.launcher,
            crate::slurm::Launcher::Local
        );
        assert!(r.effective.notify.url.is_none());
        let mock = &r.effective.executors["mock"];
        assert_eq!((mock.launcher, mock.turn_ms), (None, Some(9)));
        let pending: Vec<&str> = r.needs_restart.iter().map(|n| n.key.as_str()).collect();
        assert_eq!(
            pending,
            [
                "coordinator.launcher",
                "executors.mock.launcher",
                "notify.url"
            ]
        );
        assert_eq!(r.applied.len(), 1, "{:?}", r.applied);
        // A later, unrelated edit: the launcher change is still pending.
        let mut again = new.clone();
        again.coordinator.max_agents = 2;
        let r2 = plan(&r.effective, again);
        assert_eq!(r2.needs_restart.len(), 3);
        assert_eq!(r2.applied[0].key, "coordinator.max_agents");
        // Put back: nothing pending any more.
        let r3 = plan(&r2.effective, old.clone());
        assert!(r3.needs_restart.is_empty(), "{:?}", r3.needs_restart);
    }

    #[test]
    fn refusal_reasons_never_quote_a_pasted_key() {
        let key = "sk-live-9f8e7d6c5b4a39281706f5e4d3c2b1a0";
        let text = format!("[coordinator]\nmax_agents = \"{key}\"\n");
        let e = crate::config::Config::from_text(std::path::Path::new("c.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains(key), "the raw error quotes it: {e}");
        let safe = safe_reason(&e);
        assert!(!safe.contains(key) && !safe.contains("9f8e7d6c"), "{safe}");
        assert!(
            safe.contains("max_agents") || safe.contains("line 2"),
            "{safe}"
        );
        // What helps a person stays.
        let e = "c.toml is not valid: coordinator.poll_interval: invalid duration `soon`";
        assert_eq!(safe_reason(e), e);
    }

    #[test]
    fn an_unchanged_file_changes_nothing() {
        let c = cfg("[handler]\nmax_turns = 40\n");
        let r = plan(&c, c.clone());
        assert!(r.applied.is_empty() && r.needs_restart.is_empty());
    }

    #[test]
    fn restart_reasons_cover_only_the_fixed_settings() {
        for key in [
            "coordinator.launcher",
            "executors.claude.launcher",
            "slurm.poll_interval",
            "notify.token_env",
        ] {
            assert!(restart_reason(key).is_some(), "{key}");
        }
        for key in [
            "coordinator.max_agents",
            "handler.idle_timeout",
            "slurm.partition",
            "executors.claude.endpoint",
        ] {
            assert!(restart_reason(key).is_none(), "{key}");
        }
    }
}
