//! A prompt the model's context window cannot hold: recognising the servers' wordings, and the
//! smaller history budget the turn is retried with. Pure.
//!
//! codex passes the server's error body through as the `turn.failed` message (measured with
//! codex 0.169.0 against a 400 carrying vLLM's body), so the wording is the server's.

use crate::conversation::OutboxRecord;

/// Outbox fields of a turn that was retried after an overflow: the budget it used, and the
/// configured budget it was cut from. Later turns keep the smaller budget while the
/// configured one is unchanged.
pub const BUDGET_FIELD: &str = "history_budget_chars";
pub const FROM_FIELD: &str = "overflow_from_budget_chars";

/// Whether a failure message says the prompt is over the model's context length.
pub fn is_context_overflow(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        // vLLM: "This model's maximum context length is 32768 tokens. However, you requested …"
        "maximum context length",
        // SGLang: "The input (40000 tokens) is longer than the model's context length (32768 tokens)."
        "longer than the model's context length",
        // OpenAI: code `context_length_exceeded`, "Your input exceeds the context window of
        // this model"; codex's own text for it says it "ran out of room in the model's
        // context window".
        "context_length_exceeded",
        "exceeds the context window",
        "out of room in the model's context window",
        // llama.cpp's server.
        "exceeds the available context size",
        // Anthropic's API (claude): "prompt is too long: 210000 tokens > 200000 maximum".
        "prompt is too long",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// The budget to retry an overflowing turn with: half of what was replayed. `None` when no
/// history was replayed, so a smaller budget cannot help.
pub fn retry_budget(history_chars: usize, budget: usize) -> Option<usize> {
    let replayed = history_chars.min(budget);
    (replayed > 0).then_some(replayed / 2)
}

/// The budget for the next turn: the configured one, unless the newest overflow retry cut it
/// down from that same configured budget.
pub fn effective_budget(configured: usize, outbox: &[OutboxRecord]) -> usize {
    let field = |r: &OutboxRecord, k: &str| r.extra.get(k).and_then(|v| v.as_u64());
    outbox
        .iter()
        .rev()
        .find_map(|r| Some((field(r, FROM_FIELD)?, field(r, BUDGET_FIELD)?)))
        .filter(|&(from, _)| from == configured as u64)
        .map_or(configured, |(_, to)| to as usize)
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
    fn server_wordings_are_recognised() {
        for m in [
            r#"{"object": "error", "message": "This model's maximum context length is 32768 tokens. However, you requested 40000 tokens (39000 in the messages, 1000 in the completion). Please reduce the length of the messages or completion.", "type": "BadRequestError", "param": null, "code": 400}"#,
            "The input (40000 tokens) is longer than the model's context length (32768 tokens).",
            r#"{"error":{"message":"Your input exceeds the context window of this model. Please adjust your input and try again.","type":"invalid_request_error","code":"context_length_exceeded"}}"#,
            "Codex ran out of room in the model's context window. Start a new thread or clear earlier history before retrying.",
            "the request exceeds the available context size, try increasing it",
        ] {
            assert!(is_context_overflow(m), "{m}");
        }
        for m in [
            "unexpected status 401 Unauthorized",
            "stream disconnected before completion",
            "unexpected status 400 Bad Request: unknown model",
        ] {
            assert!(!is_context_overflow(m), "{m}");
        }
    }

    #[test]
    fn the_retry_halves_what_was_replayed() {
        assert_eq!(retry_budget(30_000, 200_000), Some(15_000));
        assert_eq!(retry_budget(300_000, 200_000), Some(100_000));
        assert_eq!(retry_budget(0, 200_000), None);
    }

    #[test]
    fn a_cut_budget_lasts_while_the_configured_one_is_unchanged() {
        let rec = |from: Option<u64>, to: Option<u64>| {
            let mut r = OutboxRecord {
                seq: 1,
                ts: "t".into(),
                in_reply_to: 1,
                role: "assistant".into(),
                text: String::new(),
                usage: None,
                duration_ms: 0,
                codex_version: None,
                extra: Default::default(),
            };
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
    }
}
