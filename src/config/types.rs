//! The value types of settings: durations (`Dur`, read once at load) and the modes as enums. A bad
//! value is refused by serde while the file is read; `setting_at` names the setting in the
//! message, so `wg config set`, a load and a live reload all say the same thing.

use serde::{Deserialize, Serialize};

pub use crate::time::Dur;

/// Declares a settings enum stored as fixed words: serde, `as_str` and `Display` from one list.
macro_rules! words {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vm])* #[serde(rename = $s)] $v),+
        }
        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s),+ }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

words!(
    /// `codex.sandbox`: what codex lets the agent's commands touch.
    Sandbox {
        ReadOnly = "read-only",
        WorkspaceWrite = "workspace-write",
        DangerFullAccess = "danger-full-access",
        /// No sandbox and no approvals (`--dangerously-bypass-approvals-and-sandbox`).
        #[serde(alias = "none")]
        Bypass = "bypass",
    }
);

words!(
    /// `claude.auth`: how the key is sent.
    ClaudeAuth {
        /// ANTHROPIC_API_KEY, the `x-api-key` header.
        ApiKey = "api-key",
        /// ANTHROPIC_AUTH_TOKEN, `Authorization: Bearer`.
        Bearer = "bearer",
    }
);

words!(
    /// `endpoint.wire_api`, `evaluate.wire_api`: which API the endpoint serves.
    WireApi {
        Responses = "responses",
        /// Only `/v1/chat/completions` (codex then talks through wg's bridge).
        Chat = "chat",
    }
);

words!(
    /// `workspace.mode`: where agents work.
    WorkspaceMode {
        /// Every agent in the project root.
        Shared = "shared",
        /// A git worktree and branch per task.
        Worktree = "worktree",
    }
);

words!(
    /// `workspace.on_done`: what `wg done` does with uncommitted changes in a worktree.
    OnDone {
        Commit = "commit",
        Refuse = "refuse",
    }
);

words!(
    /// `workspace.merge`: what happens to a done task's branch.
    MergeMode {
        /// Keep the branch for review.
        None = "none",
        /// Fast-forward the base branch.
        Ff = "ff",
        /// The merge queue (docs/landing.md): checked, then landed onto the base tip.
        Queue = "queue",
    }
);

words!(
    /// `durability`: when an append counts as written.
    Durability {
        /// Once the OS has it (survives a killed process).
        Os = "os",
        /// Also fsync'd (survives power loss).
        Fsync = "fsync",
    }
);

/// The dotted name of the setting whose value covers byte `at` of `text`, for naming it in a
/// parse error. `None` when `at` is not inside a value (an unknown key, a syntax error).
pub fn setting_at(text: &str, at: usize) -> Option<String> {
    let doc = toml_edit::Document::parse(text).ok()?;
    find_in_table(doc.as_table(), "", at)
}

fn find_in_table(t: &toml_edit::Table, prefix: &str, at: usize) -> Option<String> {
    t.iter().find_map(|(k, item)| {
        let key = if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        };
        match item {
            toml_edit::Item::Table(sub) => find_in_table(sub, &key, at),
            toml_edit::Item::ArrayOfTables(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, sub)| find_in_table(sub, &format!("{key}[{i}]"), at)),
            toml_edit::Item::Value(v) => find_in_value(v, &key, at),
            toml_edit::Item::None => None,
        }
    })
}

fn find_in_value(v: &toml_edit::Value, key: &str, at: usize) -> Option<String> {
    let span = v.span()?;
    if !span.contains(&at) {
        return None;
    }
    if let toml_edit::Value::InlineTable(t) = v {
        let inner = t
            .iter()
            .find_map(|(k, v)| find_in_value(v, &format!("{key}.{k}"), at));
        return inner.or_else(|| Some(key.to_string()));
    }
    Some(key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setting_under_an_offset_is_named() {
        let text =
            "model = \"m\"\n[codex]\nsandbox = \"weird\"\n[executors.mock]\nturn_ms = \"fast\"\n";
        let at = |s: &str| text.find(s).unwrap();
        assert_eq!(
            setting_at(text, at("\"weird")).as_deref(),
            Some("codex.sandbox")
        );
        assert_eq!(
            setting_at(text, at("\"fast")).as_deref(),
            Some("executors.mock.turn_ms")
        );
        assert_eq!(setting_at(text, at("[codex]")), None);
    }
}
