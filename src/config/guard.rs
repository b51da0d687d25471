//! Whether a changed `config.toml` looks deliberate. A file an editor truncated, or half
//! wrote, can still parse; applied at once it swaps the executor or endpoint for defaults and
//! fails every task. So a reload that drops settings the running file has is held as
//! suspect until a person confirms it (`wg config confirm`, or any `wg config set`, which
//! confirms the file it writes). Pure, but for the confirmation file.

use std::path::{Path, PathBuf};

use crate::store::Layout;

/// Every setting the file spells out, as dotted keys (tables walked, arrays are leaves).
pub fn keys_of(text: &str) -> Vec<String> {
    fn walk(prefix: &str, t: &toml::Table, out: &mut Vec<String>) {
        for (k, v) in t {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(sub) => walk(&key, sub, out),
                _ => out.push(key),
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(t) = toml::from_str::<toml::Table>(text) {
        walk("", &t, &mut out);
    }
    out
}

/// The settings `running` spells out that `new` no longer has. Not empty: the reload is held.
pub fn dropped(running: &str, new: &str) -> Vec<String> {
    let kept = keys_of(new);
    keys_of(running)
        .into_iter()
        .filter(|k| !kept.contains(k))
        .collect()
}

/// A fingerprint of a file's text (FNV-1a, 64 bits): stable across processes and versions.
pub fn fingerprint(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

pub fn confirm_file(layout: &Layout) -> PathBuf {
    layout.service_dir().join("config-confirmed")
}

/// Records that a person means `text` as the settings (read by a running coordinator).
pub fn confirm(layout: &Layout, text: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(layout.service_dir())?;
    crate::store::atomic::write_atomic(&confirm_file(layout), fingerprint(text).as_bytes(), false)
}

/// Whether `text` is the file a person last confirmed.
pub fn is_confirmed(path: &Path, text: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|f| f.trim() == fingerprint(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_that_drops_settings_is_found_and_one_that_adds_is_not() {
        let running = "executor = \"mock\"\n[endpoint]\nurl = \"http://a/v1\"\n[executors.mock]\nturn_ms = 50\n";
        assert_eq!(
            dropped(running, ""),
            ["endpoint.url", "executor", "executors.mock.turn_ms"]
        );
        let truncated = "executor = \"mock\"\n[endpoint]\n";
        assert_eq!(
            dropped(running, truncated),
            ["endpoint.url", "executors.mock.turn_ms"]
        );
        let more = format!("{running}[handler]\nmax_turns = 3\n");
        assert!(dropped(running, &more).is_empty());
        let changed = running.replace("turn_ms = 50", "turn_ms = 60");
        assert!(dropped(running, &changed).is_empty());
    }

    #[test]
    fn fingerprints_tell_texts_apart() {
        assert_eq!(fingerprint("a"), fingerprint("a"));
        assert_ne!(fingerprint("a"), fingerprint("a "));
    }
}
