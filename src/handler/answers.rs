//! What the proxy saw of a turn's answers (`crate::bridge::tally`), read for two things the
//! agent does not report: the tokens of a turn that failed (codex's `turn.failed` carries no
//! usage), and an answer stopped by a limit rather than finished by the model. Pure.

use crate::bridge::tally::{End, Exchange};
use crate::conversation::Usage;
use crate::outcome::ErrorKind;

/// The server's own token counts over every answer of the turn.
pub fn usage_of(exchanges: &[Exchange]) -> Usage {
    let mut u = Usage::default();
    for x in exchanges {
        u.input_tokens += x.input_tokens;
        u.cached_input_tokens += x.cached_tokens;
        u.output_tokens += x.output_tokens;
    }
    u
}

/// The usage to record: the agent's own report, or when it reported none (a failed turn), what
/// the server reported to the proxy.
pub fn recorded_usage(agent: &Usage, exchanges: &[Exchange]) -> Usage {
    let none = agent.input_tokens == 0 && agent.output_tokens == 0;
    if none && !exchanges.is_empty() {
        usage_of(exchanges)
    } else {
        agent.clone()
    }
}

/// The `proxy.answer` line of one answer (docs/handler-log.md): how it ended and the
/// server's own counts, so a person (or a test) reads the server's view of every request.
pub fn log_fields(x: &Exchange) -> Vec<(&'static str, String)> {
    let end = match &x.end {
        End::Completed => "completed".to_string(),
        End::Incomplete(reason) => format!("incomplete:{reason}"),
        End::Failed => "failed".to_string(),
    };
    let mut kv = vec![
        ("end", end),
        ("input_tokens", x.input_tokens.to_string()),
        ("cached_tokens", x.cached_tokens.to_string()),
        ("output_tokens", x.output_tokens.to_string()),
    ];
    if let Some(c) = x.max_output_tokens {
        kv.push(("max_output_tokens", c.to_string()));
    }
    kv
}

/// An answer that did not end where the model ended it.
#[derive(Debug, Clone, PartialEq)]
pub struct Cut {
    pub kind: ErrorKind,
    pub detail: String,
}

/// Judges the turn's last answer (the one that became, or would have become, the reply):
/// cut by the output cap ([`ErrorKind::OutputLimit`]), or by the context window filling up
/// while it was written ([`ErrorKind::ContextOverflow`]), which needs the window to tell.
pub fn judge(exchanges: &[Exchange], window: Option<u64>) -> Option<Cut> {
    let x = exchanges.last()?;
    // An answer that ends where the window ends was stopped by it, even one the server calls
    // `completed` without a cap known (llama.cpp's server on /v1/responses).
    let filled = window.is_some_and(|w| x.filled(w)) && x.end != End::Failed;
    if !(x.cut_off() || filled) {
        return None;
    }
    let counts = format!(
        "{} prompt and {} output tokens",
        x.input_tokens, x.output_tokens
    );
    if let (true, Some(w)) = (filled, window) {
        return Some(Cut {
            kind: ErrorKind::ContextOverflow,
            detail: format!(
                "the context window filled up while the answer was written ({counts} of a \
                 {w}-token window): raise the server's context length and \
                 endpoint.model_context_window, or split the task"
            ),
        });
    }
    let cap = x
        .max_output_tokens
        .map_or("the server's output cap".to_string(), |c| {
            format!("the output cap of {c} tokens")
        });
    Some(Cut {
        kind: ErrorKind::OutputLimit,
        detail: format!(
            "it stopped at {cap} after {counts}; raise the server's cap (llama-server -n, or \
             the server's default max_tokens) and set endpoint.max_output_tokens to match"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn x(end: End, input: u64, output: u64, cap: Option<u64>) -> Exchange {
        Exchange {
            end,
            input_tokens: input,
            cached_tokens: input / 2,
            output_tokens: output,
            max_output_tokens: cap,
        }
    }

    #[test]
    fn a_failed_turn_counts_what_the_server_counted() {
        let xs = [
            x(End::Completed, 5000, 40, None),
            x(End::Incomplete("max_output_tokens".into()), 5258, 256, None),
        ];
        let none = Usage::default();
        let u = recorded_usage(&none, &xs);
        assert_eq!(
            (u.input_tokens, u.cached_input_tokens, u.output_tokens),
            (10258, 5129, 296)
        );
        let own = Usage {
            input_tokens: 7,
            output_tokens: 1,
            ..Usage::default()
        };
        assert_eq!(recorded_usage(&own, &xs), own, "the agent's report wins");
        assert_eq!(recorded_usage(&none, &[]), none);
    }

    #[test]
    fn the_last_answer_decides_and_the_window_tells_overflow_from_cap() {
        let capped = x(End::Completed, 5100, 256, Some(256));
        let cut = judge(std::slice::from_ref(&capped), Some(8192)).unwrap();
        assert_eq!(cut.kind, ErrorKind::OutputLimit);
        assert!(cut.detail.contains("256 tokens") && cut.detail.contains("-n"));
        // The same answer in a window it filled.
        let cut = judge(std::slice::from_ref(&capped), Some(5300)).unwrap();
        assert_eq!(cut.kind, ErrorKind::ContextOverflow);
        // codex's chat bridge: `length` became `incomplete`.
        let inc = x(End::Incomplete("max_output_tokens".into()), 100, 30, None);
        assert_eq!(judge(&[inc], None).unwrap().kind, ErrorKind::OutputLimit);
        // No cap known, but the answer ended at the window's end.
        let full = x(End::Completed, 8000, 191, None);
        assert_eq!(
            judge(std::slice::from_ref(&full), Some(8192)).unwrap().kind,
            ErrorKind::ContextOverflow
        );
        assert_eq!(judge(&[full], None), None);
        // A cut earlier in the turn that the agent got past is not the turn's answer.
        let done = x(End::Completed, 5400, 12, Some(256));
        assert_eq!(judge(&[capped, done], Some(8192)), None);
        assert_eq!(judge(&[], Some(8192)), None);
    }
}
