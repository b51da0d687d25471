//! Runaway turns: a model repeating one tool call, or running commands without end, is
//! stopped within the turn instead of at the turn timeout. Pure.

/// Why a turn was stopped for running away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runaway {
    /// The same command `times` times in a row.
    Repeated { command: String, times: u32 },
    /// More commands in one turn than `handler.max_commands_per_turn`.
    TooMany { count: u32 },
}

impl Runaway {
    pub fn describe(&self) -> String {
        match self {
            Runaway::Repeated { command, times } => {
                let shown: String = command.chars().take(200).collect();
                format!("the agent ran the same command {times} times in a row: {shown}")
            }
            Runaway::TooMany { count } => {
                format!(
                    "the agent ran {count} commands in one turn (handler.max_commands_per_turn)"
                )
            }
        }
    }
}

/// Counts a turn's commands as they complete. A limit of 0 is off.
#[derive(Debug, Default)]
pub struct Watch {
    max_repeats: u32,
    max_commands: u32,
    last: Option<String>,
    repeats: u32,
    count: u32,
}

impl Watch {
    pub fn new(max_repeats: u32, max_commands: u32) -> Watch {
        Watch {
            max_repeats,
            max_commands,
            ..Watch::default()
        }
    }

    /// One more completed command; `Some` once a limit is reached.
    pub fn observe(&mut self, command: &str) -> Option<Runaway> {
        self.count += 1;
        if self.last.as_deref() == Some(command) {
            self.repeats += 1;
        } else {
            self.last = Some(command.to_string());
            self.repeats = 1;
        }
        if self.max_repeats > 0 && self.repeats >= self.max_repeats {
            return Some(Runaway::Repeated {
                command: command.to_string(),
                times: self.repeats,
            });
        }
        if self.max_commands > 0 && self.count > self.max_commands {
            return Some(Runaway::TooMany { count: self.count });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_in_a_row_and_totals_are_caught_and_zero_is_off() {
        let mut w = Watch::new(3, 0);
        assert_eq!(w.observe("ls"), None);
        assert_eq!(w.observe("ls"), None);
        assert_eq!(
            w.observe("cat x"),
            None,
            "a different command resets the run"
        );
        assert_eq!(w.observe("cat x"), None);
        let r = w.observe("cat x").unwrap();
        assert_eq!(
            r,
            Runaway::Repeated {
                command: "cat x".into(),
                times: 3
            }
        );
        assert!(r.describe().contains("3 times in a row: cat x"));
        let mut w = Watch::new(0, 2);
        assert_eq!(w.observe("a"), None);
        assert_eq!(w.observe("a"), None);
        assert_eq!(w.observe("b"), Some(Runaway::TooMany { count: 3 }));
        let mut off = Watch::new(0, 0);
        assert!((0..1000).all(|_| off.observe("x").is_none()));
    }
}
