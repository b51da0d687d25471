//! Tokens and money: what the turns of a task used, the share of input a prefix cache served,
//! and its cost at the prices in `[pricing."MODEL"]`. Pure.
//!
//! wg has no price list of its own: prices change and differ by provider, so a cost is only
//! shown for a model the project gave a price.

use serde::{Deserialize, Serialize};

use crate::conversation::{OutboxRecord, Usage};

/// `[pricing."MODEL"]`: USD per million tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Price {
    pub input_per_mtok: f64,
    /// Input served from the provider's prompt cache; the input price when unset.
    pub cached_input_per_mtok: Option<f64>,
    /// Output, reasoning included (codex and claude count reasoning in output tokens).
    pub output_per_mtok: f64,
}

impl Price {
    /// The cost of `u` in USD. `input_tokens` is all input, cached included (as codex reports
    /// it and as wg records claude's), so the cached part is priced apart.
    pub fn cost(&self, u: &Usage) -> f64 {
        let cached = u.cached_input_tokens.min(u.input_tokens);
        let fresh = u.input_tokens - cached;
        (fresh as f64 * self.input_per_mtok
            + cached as f64 * self.cached_input_per_mtok.unwrap_or(self.input_per_mtok)
            + u.output_tokens as f64 * self.output_per_mtok)
            / 1_000_000.0
    }

    /// Negative or non-finite prices are typos.
    pub fn validate(&self) -> Result<(), String> {
        let all = [
            ("input_per_mtok", Some(self.input_per_mtok)),
            ("cached_input_per_mtok", self.cached_input_per_mtok),
            ("output_per_mtok", Some(self.output_per_mtok)),
        ];
        for (key, v) in all {
            if let Some(v) = v.filter(|v| !v.is_finite() || *v < 0.0) {
                return Err(format!("{key} = {v}: expected a price of 0 or more"));
            }
        }
        Ok(())
    }
}

/// Token counts summed over turns, with the cache-hit share and the cost.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Tokens {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_output_tokens: u64,
    /// cached / input; `None` without input.
    pub cached_share: Option<f64>,
    /// USD at the configured price; `None` when the model has no price.
    pub cost_usd: Option<f64>,
    /// Some turn had no price: the cost stays unknown.
    #[serde(skip)]
    unpriced: bool,
}

impl Tokens {
    pub fn of(u: &Usage, price: Option<&Price>) -> Tokens {
        let mut t = Tokens::default();
        t.add(u, price);
        t
    }

    /// Adds one turn's usage; the cost stays `None` once a turn had no price.
    pub fn add(&mut self, u: &Usage, price: Option<&Price>) {
        self.input_tokens += u.input_tokens;
        self.cached_input_tokens += u.cached_input_tokens;
        self.output_tokens += u.output_tokens;
        self.reasoning_output_tokens += u.reasoning_output_tokens;
        self.cached_share = share(self.cached_input_tokens, self.input_tokens);
        self.unpriced |= price.is_none();
        self.cost_usd = match price.filter(|_| !self.unpriced) {
            Some(p) => Some(self.cost_usd.unwrap_or(0.0) + p.cost(u)),
            None => None,
        };
    }

    /// `1,234 in (56% cached), 345 out (12 reasoning), $0.0123`.
    pub fn human(&self) -> String {
        let mut s = format!("{} in", self.input_tokens);
        if let Some(c) = self.cached_share {
            s.push_str(&format!(" ({:.0}% cached)", c * 100.0));
        }
        s.push_str(&format!(", {} out", self.output_tokens));
        if self.reasoning_output_tokens > 0 {
            s.push_str(&format!(" ({} reasoning)", self.reasoning_output_tokens));
        }
        if let Some(c) = self.cost_usd {
            s.push_str(&format!(", {}", usd(c)));
        }
        s
    }
}

/// Rounded to 3 decimals: a share is a figure for people, not an exact ratio.
fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| (part as f64 / whole as f64 * 1000.0).round() / 1000.0)
}

/// `$0.0123`: four decimals below a dollar, where per-turn costs live.
pub fn usd(c: f64) -> String {
    if c < 1.0 {
        format!("${c:.4}")
    } else {
        format!("${c:.2}")
    }
}

/// One turn's usage, for `wg show`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnTokens {
    pub turn: u64,
    pub role: crate::conversation::Role,
    #[serde(flatten)]
    pub tokens: Tokens,
}

/// A task's usage per turn and in total.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TaskTokens {
    pub turns: Vec<TurnTokens>,
    pub total: Tokens,
}

pub fn task_tokens(outbox: &[OutboxRecord], price: Option<&Price>) -> TaskTokens {
    let mut t = TaskTokens::default();
    for (i, r) in outbox.iter().enumerate() {
        let u = r.usage.clone().unwrap_or_default();
        t.total.add(&u, price);
        t.turns.push(TurnTokens {
            turn: r.turn.unwrap_or(i as u64 + 1),
            role: r.role,
            tokens: Tokens::of(&u, price),
        });
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(input: u64, cached: u64, output: u64) -> Usage {
        Usage {
            input_tokens: input,
            cached_input_tokens: cached,
            output_tokens: output,
            reasoning_output_tokens: 0,
        }
    }

    #[test]
    fn cached_input_is_priced_apart_and_defaults_to_the_input_price() {
        let p = Price {
            input_per_mtok: 2.0,
            cached_input_per_mtok: Some(0.5),
            output_per_mtok: 8.0,
        };
        // 600k fresh * 2 + 400k cached * 0.5 + 100k out * 8 = 1.2 + 0.2 + 0.8
        assert!((p.cost(&u(1_000_000, 400_000, 100_000)) - 2.2).abs() < 1e-9);
        let flat = Price {
            cached_input_per_mtok: None,
            ..p.clone()
        };
        assert!((flat.cost(&u(1_000_000, 400_000, 0)) - 2.0).abs() < 1e-9);
        assert!(Price {
            input_per_mtok: -1.0,
            ..p
        }
        .validate()
        .is_err());
    }

    #[test]
    fn totals_carry_share_and_cost_only_with_a_price() {
        let p = Price {
            input_per_mtok: 1.0,
            cached_input_per_mtok: Some(0.1),
            output_per_mtok: 1.0,
        };
        let mut t = Tokens::default();
        t.add(&u(1000, 0, 10), Some(&p));
        t.add(&u(1000, 900, 10), Some(&p));
        assert_eq!(t.cached_share, Some(0.45));
        assert!((t.cost_usd.unwrap() - (1000.0 + 100.0 + 90.0 + 20.0) / 1e6).abs() < 1e-12);
        assert_eq!(t.human(), "2000 in (45% cached), 20 out, $0.0012");
        let none = Tokens::of(&u(5, 0, 1), None);
        assert_eq!((none.cost_usd, none.cached_share), (None, Some(0.0)));
        assert_eq!(Tokens::default().cached_share, None);
    }
}
