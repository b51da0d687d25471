//! `handler.log` lines: `<RFC 3339 UTC ms> <LEVEL> task=<id> turn=<n> <event> key=value ...`.
//! A value is written bare when it is a plain token, else as a JSON string literal, so a line
//! splits on spaces outside quotes and every value unescapes with any JSON parser.
//! Format and events: docs/handler-log.md. Pure.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// A value as it appears after `key=`.
pub fn value(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && c != '"' && c != '\\')
        && !v.contains('=');
    if plain {
        v.to_string()
    } else {
        serde_json::Value::String(v.to_string()).to_string()
    }
}

/// One line, with its newline. `turn` 0 is written for events outside a turn.
pub fn line(
    ts: &str,
    level: Level,
    task: &str,
    turn: u64,
    event: &str,
    kv: &[(&str, String)],
) -> String {
    let mut s = format!("{ts} {:<5} task={task} turn={turn} {event}", level.as_str());
    for (k, v) in kv {
        s.push(' ');
        s.push_str(k);
        s.push('=');
        s.push_str(&value(v));
    }
    s.push('\n');
    s
}

/// A parsed `handler.log` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub ts: String,
    pub level: String,
    pub task: String,
    pub turn: u64,
    pub event: String,
    pub pairs: Vec<(String, String)>,
}

impl Parsed {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a line back into its parts; for tests and tools.
pub fn parse(line: &str) -> Option<Parsed> {
    let mut rest = line.trim_end_matches('\n');
    let mut word = || -> Option<String> {
        rest = rest.trim_start();
        let end = rest.find(' ').unwrap_or(rest.len());
        let w = rest[..end].to_string();
        rest = &rest[end..];
        (!w.is_empty()).then_some(w)
    };
    let ts = word()?;
    let level = word()?;
    let task = word()?.strip_prefix("task=")?.to_string();
    let turn = word()?.strip_prefix("turn=")?.parse().ok()?;
    let event = word()?;
    let mut pairs = Vec::new();
    let mut s = rest.trim_start();
    while !s.is_empty() {
        let eq = s.find('=')?;
        let key = s[..eq].to_string();
        s = &s[eq + 1..];
        if s.starts_with('"') {
            let mut de = serde_json::Deserializer::from_str(s).into_iter::<String>();
            let v = de.next()?.ok()?;
            let used = de.byte_offset();
            pairs.push((key, v));
            s = s[used..].trim_start();
        } else {
            let end = s.find(' ').unwrap_or(s.len());
            pairs.push((key, s[..end].to_string()));
            s = s[end..].trim_start();
        }
    }
    Some(Parsed {
        ts,
        level,
        task,
        turn,
        event,
        pairs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_greppable_and_round_trip() {
        let l = line(
            "2026-11-21T12:00:00.123Z",
            Level::Info,
            "fix-parser",
            3,
            "turn.end",
            &[
                ("status", "ok".into()),
                ("message", "hi \"there\"\nx".into()),
                ("empty", String::new()),
                ("eq", "a=b".into()),
            ],
        );
        assert_eq!(
            l,
            "2026-11-21T12:00:00.123Z INFO  task=fix-parser turn=3 turn.end status=ok message=\"hi \\\"there\\\"\\nx\" empty=\"\" eq=\"a=b\"\n"
        );
        let p = parse(&l).unwrap();
        let kv = p.pairs.clone();
        assert_eq!(p.get("status"), Some("ok"));
        assert_eq!(
            (
                p.ts.as_str(),
                p.level.as_str(),
                p.task.as_str(),
                p.turn,
                p.event.as_str()
            ),
            (
                "2026-11-21T12:00:00.123Z",
                "INFO",
                "fix-parser",
                3,
                "turn.end"
            )
        );
        assert_eq!(
            kv[1],
            ("message".to_string(), "hi \"there\"\nx".to_string())
        );
        assert_eq!(kv[3].1, "a=b");
        let e = line("t", Level::Error, "x", 1, "error", &[]);
        assert!(e.contains(" ERROR task=x turn=1 error"));
    }
}
