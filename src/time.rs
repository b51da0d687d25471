//! Wall-clock timestamps as RFC 3339 UTC with milliseconds, the one format in every wg file.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub fn now_rfc3339() -> String {
    format_rfc3339(SystemTime::now())
}

pub fn format_rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339_weak(s).ok()
}

/// Parses a duration such as `30s`, `15m`, `2h`, `1h 30m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration `{s}`: {e} (examples: 30s, 15m, 2h)"))
}

/// A duration setting (config, a task's `timeout`): humantime text in the file (`90s`, `15m`, `2h`, or bare seconds), a
/// `Duration` once loaded. The text is kept so a setting shows (and writes back) as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dur {
    value: Duration,
    text: String,
}

impl Dur {
    pub fn parse(text: &str) -> Result<Dur, String> {
        Ok(Dur {
            value: parse_duration(text)?,
            text: text.trim().to_string(),
        })
    }

    /// A default, written as `text` (which must parse).
    pub fn of(text: &str) -> Dur {
        Dur::parse(text).expect("a default duration parses")
    }

    pub fn get(&self) -> Duration {
        self.value
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Dur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Secs(u64),
        }
        match Raw::deserialize(d).map_err(|_| {
            serde::de::Error::custom("expected a duration such as \"30s\", \"15m\" or \"2h\"")
        })? {
            Raw::Text(t) => Dur::parse(&t).map_err(serde::de::Error::custom),
            Raw::Secs(s) => Dur::parse(&s.to_string()).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_keep_their_text_and_refuse_words() {
        let d = Dur::parse("90s").unwrap();
        assert_eq!((d.get(), d.text()), (Duration::from_secs(90), "90s"));
        assert_eq!(Dur::parse("30").unwrap().get(), Duration::from_secs(30));
        assert!(Dur::parse("soon")
            .unwrap_err()
            .contains("invalid duration `soon`"));
    }
}
