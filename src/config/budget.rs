//! The prompt's history budget when `codex.history_budget_chars` is not set: derived from
//! the model's context window.

/// The default history budget when nothing says otherwise.
pub const DEFAULT_BUDGET_CHARS: usize = 200_000;

/// The smallest budget derived from a context window: below this the replay is useless.
const MIN_BUDGET_CHARS: usize = 4_000;

/// Tokens of codex's own instructions, tool list and environment (about 20,000 characters,
/// measured with codex 0.169.0), kept free of history.
const AGENT_OVERHEAD_TOKENS: u64 = 6_000;

/// Characters per token for the budget: a low estimate (code and English run 3-4), so the
/// derived budget errs on the side of fitting.
const CHARS_PER_TOKEN: u64 = 3;

/// The history budget in characters: the configured one, else one derived from the model's
/// context window (half of it for the history, after codex's own overhead), else the default.
pub fn default_budget(configured: Option<usize>, context_window_tokens: Option<u64>) -> usize {
    if let Some(b) = configured {
        return b;
    }
    match context_window_tokens {
        Some(w) => {
            let tokens = (w / 2).saturating_sub(AGENT_OVERHEAD_TOKENS);
            ((tokens * CHARS_PER_TOKEN) as usize).max(MIN_BUDGET_CHARS)
        }
        None => DEFAULT_BUDGET_CHARS,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_come_from_config_then_the_context_window() {
        assert_eq!(default_budget(Some(1234), Some(262_144)), 1234);
        assert_eq!(default_budget(None, None), DEFAULT_BUDGET_CHARS);
        assert_eq!(default_budget(None, Some(262_144)), (131_072 - 6_000) * 3);
        assert_eq!(default_budget(None, Some(32_768)), (16_384 - 6_000) * 3);
        assert_eq!(default_budget(None, Some(8_192)), MIN_BUDGET_CHARS);
    }
}
