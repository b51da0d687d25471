//! A prompt the model's context window cannot hold (`ErrorKind::ContextOverflow`, recognised
//! in crate::outcome): the smaller history budget the turn is retried with, and the budget
//! later turns keep. Pure.

use crate::conversation::OutboxRecord;

/// Outbox fields of a turn that was retried after an overflow: the budget it used, and the
/// configured budget it was cut from. Later turns keep the smaller budget while the
/// configured one is unchanged.
pub const BUDGET_FIELD: &str = "history_budget_chars";
pub const FROM_FIELD: &str = "overflow_from_budget_chars";

/// The budget to retry an overflowing turn with: half of what was replayed. `None` when no
/// history was replayed, so a smaller budget cannot help.
pub fn retry_budget(history_chars: usize, budget: usize) -> Option<usize> {
    let replayed = history_chars.min(budget);
    (replayed > 0).then_some(replayed / 2)
}

/// The budget for the next turn: the configured one, unless the newest overflow retry cut it
/// down from that same configured budget. The retry's record counts whether it succeeded or
/// failed too (an `error` record carries the same fields): a retry that overflows again must
/// not send the next turn back to the full budget, or every later turn overflows first.
pub fn effective_budget(configured: usize, outbox: &[OutboxRecord]) -> usize {
    let field = |r: &OutboxRecord, k: &str| r.extra.get(k).and_then(|v| v.as_u64());
    outbox
        .iter()
        .rev()
        .find_map(|r| Some((field(r, FROM_FIELD)?, field(r, BUDGET_FIELD)?)))
        .filter(|&(from, _)| from == configured as u64)
        .map_or(configured, |(_, to)| to as usize)
}

/// codex's own part of the prompt (its instructions and tool schemas: about 5,050 tokens with
/// codex 0.169.0, counted by llama.cpp's server for SmolLM2's tokenizer), which every turn
/// carries before any of wg's text. A window smaller than this cannot run a turn at all.
pub const CODEX_FIXED_PROMPT_TOKENS: u64 = 5_050;

/// The two token counts a server's overflow message names: (requested, window). llama.cpp:
/// "request (5095 tokens) exceeds the available context size (4096 tokens)"; vLLM: "maximum
/// context length is 32768 tokens. However, you requested 40000 tokens". The larger is the
/// request. `None` when the message does not name two counts.
pub fn token_counts(message: &str) -> Option<(u64, u64)> {
    let m = message.to_ascii_lowercase();
    let mut counts = Vec::new();
    let mut rest = m.as_str();
    while let Some(i) = rest.find(" tokens") {
        let digits: String = rest[..i]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit() || *c == ',')
            .filter(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if let Ok(n) = digits.parse::<u64>() {
            counts.push(n);
        }
        rest = &rest[i + " tokens".len()..];
    }
    match counts[..] {
        [a, b, ..] if a != b => Some((a.max(b), a.min(b))),
        _ => None,
    }
}

/// When an overflow happened with wg's prompt of `prompt_bytes` bytes, whether the agent's own
/// part of the request alone exceeds the window: then no history budget can help, and the
/// retry is skipped. wg's text is counted at no less than one token per two bytes (code and
/// English run 3–4), so the estimate of the agent's part errs small. Returns (estimated
/// agent part, window).
pub fn fixed_part_exceeds(message: &str, prompt_bytes: usize) -> Option<(u64, u64)> {
    let (requested, window) = token_counts(message)?;
    let fixed = requested.saturating_sub(prompt_bytes as u64 / 2);
    (fixed > window).then_some((fixed, window))
}

/// The error detail for an overflow whose agent part alone exceeds the window.
pub fn fixed_part_detail(server: &str, fixed: u64, window: u64) -> String {
    format!(
        "{server}; the agent's own instructions and tools take about {fixed} tokens before any          of the task's text, more than the model's whole window of {window} tokens, so no          history budget can make it fit: start the server with a larger context (llama-server          -c 8192 or more; about {CODEX_FIXED_PROMPT_TOKENS} tokens for codex 0.169 plus room for          the conversation and answers)"
    )
}

/// The line wg puts before the reply of a retried turn, so the person reading it knows.
pub fn reply_note(from: usize, to: usize) -> String {
    format!(
        "[wg: the prompt overflowed the model's context window; this turn was retried with the \
         history cut to {to} characters (from a budget of {from}). Later turns keep the smaller \
         budget; set endpoint.model_context_window or codex.history_budget_chars to fit the \
         model.]"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_halves_what_was_replayed() {
        assert_eq!(retry_budget(30_000, 200_000), Some(15_000));
        assert_eq!(retry_budget(300_000, 200_000), Some(100_000));
        assert_eq!(retry_budget(0, 200_000), None);
    }

    #[test]
    fn servers_overflow_messages_name_request_and_window() {
        let llama = "the endpoint answered 400: request (5095 tokens) exceeds the available context size (4096 tokens), try increasing it";
        assert_eq!(token_counts(llama), Some((5095, 4096)));
        let vllm = "This model's maximum context length is 32,768 tokens. However, you requested 40000 tokens (39000 in the messages, 1000 in the completion).";
        assert_eq!(token_counts(vllm), Some((40000, 32768)));
        assert_eq!(token_counts("prompt is too long"), None);
        // A first turn: wg's text is small, codex's own part is what overflows.
        assert_eq!(fixed_part_exceeds(llama, 600), Some((4795, 4096)));
        // A long conversation: cutting history can still help.
        assert_eq!(fixed_part_exceeds(llama, 4000), None);
        assert!(fixed_part_detail("x", 4795, 4096).contains("-c 8192"));
    }

    #[test]
    fn a_cut_budget_lasts_while_the_configured_one_is_unchanged() {
        let rec = |from: Option<u64>, to: Option<u64>| {
            let mut r = OutboxRecord::new(1, crate::conversation::Role::Assistant, "");
            if let (Some(f), Some(t)) = (from, to) {
                r.extra.insert(FROM_FIELD.into(), f.into());
                r.extra.insert(BUDGET_FIELD.into(), t.into());
            }
            r
        };
        assert_eq!(effective_budget(1000, &[]), 1000);
        let out = vec![rec(Some(1000), Some(400)), rec(None, None)];
        assert_eq!(effective_budget(1000, &out), 400);
        assert_eq!(effective_budget(2000, &out), 2000, "config changed: lifted");
        let out = vec![rec(Some(1000), Some(400)), rec(Some(1000), Some(150))];
        assert_eq!(effective_budget(1000, &out), 150);
        // A retry that failed writes an error record with the same fields: the cut holds.
        let mut failed = rec(Some(1000), Some(70));
        failed.role = crate::conversation::Role::Error;
        let out = vec![rec(Some(1000), Some(150)), failed, rec(None, None)];
        assert_eq!(effective_budget(1000, &out), 70);
    }
}
