//! The handler's per-task files: `handler.log` and `events.jsonl`, both capped in size (the
//! oldest part is rotated to `<name>.1`, replacing an older `.1`). Every line passes through
//! redaction so the API key can never land in them.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use super::command::redact;
use super::log::{self, Level};
use crate::store::{append, nofollow};
use crate::time::now_rfc3339;

/// An append-only text file with a size cap.
#[derive(Debug)]
pub struct CappedFile {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max: u64,
}

impl CappedFile {
    pub fn new(path: PathBuf, max: u64) -> CappedFile {
        CappedFile {
            path,
            file: None,
            size: 0,
            max: max.max(1024),
        }
    }

    fn open(&mut self) -> io::Result<&mut File> {
        if self.file.is_none() {
            let f = append::open(&self.path)?;
            self.size = f.metadata()?.len();
            self.file = Some(f);
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    /// Appends `bytes` (whole lines) in one write, rotating first when the cap is reached.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.open()?;
        if self.size > 0 && self.size + bytes.len() as u64 > self.max {
            self.file = None;
            nofollow::rename_in_dir(&self.path, &rotated(&self.path))?;
            self.open()?;
        }
        self.open()?;
        let f = self.file.as_ref().expect("opened above");
        // The shared primitive: a torn last line (a full disk, a crash) is cut first.
        let done = append::append_to(f, &self.path, bytes, false)?;
        self.size = done.at + bytes.len() as u64;
        Ok(())
    }
}

pub fn rotated(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".1");
    PathBuf::from(s)
}

/// `handler.log` of one task.
#[derive(Debug)]
pub struct HandlerLog {
    file: CappedFile,
    task: String,
    secrets: Vec<String>,
    /// Lines that could not be written are counted, never fatal: the turn matters more.
    pub write_errors: u64,
}

impl HandlerLog {
    pub fn new(path: PathBuf, task: &str, max: u64, secrets: Vec<String>) -> HandlerLog {
        HandlerLog {
            file: CappedFile::new(path, max),
            task: task.to_string(),
            secrets,
            write_errors: 0,
        }
    }

    pub fn write(&mut self, level: Level, turn: u64, event: &str, kv: &[(&str, String)]) {
        self.write_at(&now_rfc3339(), level, turn, event, kv);
    }

    /// A line stamped with the time its event happened (`ts`, RFC 3339 UTC with ms), for
    /// events seen elsewhere and written later (the proxy's warnings).
    pub fn write_at(
        &mut self,
        ts: &str,
        level: Level,
        turn: u64,
        event: &str,
        kv: &[(&str, String)],
    ) {
        let line = log::line(ts, level, &self.task, turn, event, kv);
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        let line = redact(&line, &secrets);
        if self.file.append(line.as_bytes()).is_err() {
            self.write_errors += 1;
        }
    }

    pub fn redact(&self, s: &str) -> String {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        redact(s, &secrets)
    }
}

/// `events.jsonl`: every codex event, as `{"turn":N,"ts":"…","event":{…}}`.
#[derive(Debug)]
pub struct EventsLog {
    file: CappedFile,
    secrets: Vec<String>,
}

impl EventsLog {
    pub fn new(path: PathBuf, max: u64, secrets: Vec<String>) -> EventsLog {
        EventsLog {
            file: CappedFile::new(path, max),
            secrets,
        }
    }

    /// Appends one event. `raw` is codex's line as printed (already checked to be a JSON
    /// object); it is embedded byte for byte, so nothing codex said is reordered or lost.
    pub fn write(&mut self, turn: u64, raw: &str) -> io::Result<()> {
        let mut line = format!(
            "{{\"turn\":{turn},\"ts\":\"{}\",\"event\":{}}}",
            now_rfc3339(),
            raw.trim()
        );
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        if secrets.iter().any(|s| line.contains(s)) {
            line = redact(&line, &secrets);
        }
        line.push('\n');
        self.file.append(line.as_bytes())
    }
}

/// The events of one turn, in order, from `events.jsonl` and its rotated `.1` (a turn's
/// events may straddle a rotation). Lines are matched on the `{"turn":N,` prefix the writer
/// above puts first, so only the turn's own lines are parsed.
pub fn turn_events(path: &Path, turn: u64) -> Vec<serde_json::Value> {
    let prefix = format!("{{\"turn\":{turn},");
    [rotated(path), path.to_path_buf()]
        .iter()
        .filter_map(|p| nofollow::read_to_string(p).ok())
        .flat_map(|text| {
            text.lines()
                .filter(|l| l.starts_with(&prefix))
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|mut v| v.get_mut("event").map(serde_json::Value::take))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `codex --version`, cached by binary path, size and mtime in `cache`: running it costs a
/// process start of a 300 MB binary, too much to pay every turn.
pub fn codex_version(binary: &Path, cache: &Path) -> Option<String> {
    let meta = std::fs::metadata(binary).ok()?;
    let stamp = format!(
        "{}|{}|{:?}",
        binary.display(),
        meta.len(),
        meta.modified().ok()
    );
    if let Ok(text) = std::fs::read_to_string(cache) {
        if let Some((s, v)) = text.trim_end().split_once('\n') {
            if s == stamp {
                return Some(v.to_string());
            }
        }
    }
    let out = crate::executor::process::version_command(binary)
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || v.is_empty() {
        return None;
    }
    if let Some(dir) = cache.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let _ = crate::store::atomic::write_atomic(cache, format!("{stamp}\n{v}\n").as_bytes(), false);
    Some(v)
}

/// Keeps the shared CODEX_HOME from growing without bound. Turns are `--ephemeral`, so no
/// session files pile up; what still grows is codex's own log database (`logs_*.sqlite*`).
/// Past `cap` bytes it is removed (codex recreates it; a codex that has it open keeps
/// writing to the unlinked file). Returns the bytes freed.
pub fn prune_codex_home(home: &Path, cap: u64) -> u64 {
    let Ok(rd) = std::fs::read_dir(home) else {
        return 0;
    };
    let logs: Vec<(PathBuf, u64)> = rd
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("logs_"))
        .filter_map(|e| Some((e.path(), e.metadata().ok()?.len())))
        .collect();
    let total: u64 = logs.iter().map(|(_, n)| n).sum();
    if total <= cap {
        return 0;
    }
    logs.iter()
        .filter(|(p, _)| std::fs::remove_file(p).is_ok())
        .map(|(_, n)| n)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_file_rotates_the_oldest_part() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("handler.log");
        let mut f = CappedFile::new(p.clone(), 1024);
        for i in 0..100 {
            f.append(format!("line {i:04} {}\n", "x".repeat(40)).as_bytes())
                .unwrap();
        }
        let cur = std::fs::read_to_string(&p).unwrap();
        let old = std::fs::read_to_string(rotated(&p)).unwrap();
        assert!(cur.len() <= 1024 && old.len() <= 1024);
        assert!(cur.ends_with(&format!("line 0099 {}\n", "x".repeat(40))));
        assert!(!old.contains("line 0000"));
    }

    #[test]
    fn a_turns_events_are_read_across_a_rotation() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("events.jsonl");
        let mut e = EventsLog::new(p.clone(), 4096, vec![]);
        for i in 0..40 {
            let turn = if i < 20 {
                1
            } else if i < 35 {
                12
            } else {
                13
            };
            e.write(
                turn,
                &format!(r#"{{"type":"x","i":{i},"pad":"{}"}}"#, "p".repeat(60)),
            )
            .unwrap();
        }
        assert!(rotated(&p).exists());
        let evs = turn_events(&p, 12);
        let ids: Vec<u64> = evs.iter().map(|v| v["i"].as_u64().unwrap()).collect();
        assert_eq!(ids, (20..35).collect::<Vec<_>>());
        let rotated_text = std::fs::read_to_string(rotated(&p)).unwrap();
        assert!(
            rotated_text.contains(r#"{"turn":12,"#),
            "the turn straddles the rotation"
        );
        assert!(turn_events(&p, 2).is_empty());
    }

    #[test]
    fn codex_home_logs_are_pruned_past_the_cap() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("logs_2.sqlite"), vec![0u8; 2000]).unwrap();
        std::fs::write(d.path().join("state_5.sqlite"), vec![0u8; 5000]).unwrap();
        assert_eq!(prune_codex_home(d.path(), 4000), 0);
        assert_eq!(prune_codex_home(d.path(), 1000), 2000);
        assert!(
            !d.path().join("logs_2.sqlite").exists() && d.path().join("state_5.sqlite").exists()
        );
    }

    #[test]
    fn logs_never_hold_the_secret() {
        let d = tempfile::tempdir().unwrap();
        let mut l = HandlerLog::new(
            d.path().join("h.log"),
            "t",
            1 << 20,
            vec!["sk-very-secret".into()],
        );
        l.write(
            Level::Error,
            1,
            "error",
            &[("message", "bad key sk-very-secret".into())],
        );
        let mut e = EventsLog::new(
            d.path().join("e.jsonl"),
            1 << 20,
            vec!["sk-very-secret".into()],
        );
        e.write(1, r#"{"type":"error","message":"sk-very-secret"}"#)
            .unwrap();
        for f in ["h.log", "e.jsonl"] {
            let s = std::fs::read_to_string(d.path().join(f)).unwrap();
            assert!(
                !s.contains("sk-very-secret") && s.contains("[REDACTED]"),
                "{s}"
            );
        }
    }
}
