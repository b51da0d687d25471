//! Prompt build time for a 200-turn conversation (target: ≤ 5 ms) and its size against the
//! budget. `cargo bench --bench prompt`; prints the median of 50 runs.

use std::time::{Duration, Instant};

use wg::conversation::{InboxMessage, OutboxRecord};
use wg::handler::prompt::{build, PromptInput};

fn conversation(turns: u64, size: usize) -> (Vec<InboxMessage>, Vec<OutboxRecord>) {
    let msg = |seq: u64, text: String| InboxMessage {
        seq,
        ts: "2026-01-01T00:00:00.000Z".into(),
        sender: "user".into(),
        kind: "message".into(),
        text,
    };
    let mut inbox = vec![msg(1, "brief ".repeat(200))];
    let mut outbox = Vec::new();
    for i in 1..=turns {
        inbox.push(msg(i + 1, format!("question {i} {}", "q".repeat(size))));
        outbox.push(OutboxRecord {
            seq: i,
            ts: "2026-01-01T00:00:00.000Z".into(),
            in_reply_to: i + 1,
            role: "assistant".into(),
            text: format!("answer {i} {}", "a".repeat(size)),
            usage: None,
            duration_ms: 1,
            codex_version: None,
            extra: Default::default(),
        });
    }
    inbox.push(msg(turns + 2, "the new message".into()));
    (inbox, outbox)
}

fn main() {
    for (size, budget) in [(500, 200_000), (5_000, 200_000)] {
        let (inbox, outbox) = conversation(200, size);
        let input = PromptInput {
            task_id: "bench",
            inbox: &inbox,
            outbox: &outbox,
            history_budget_chars: budget,
        };
        let mut times: Vec<Duration> = (0..50)
            .map(|_| {
                let t = Instant::now();
                let p = build(&input);
                let took = t.elapsed();
                std::hint::black_box(p);
                took
            })
            .collect();
        times.sort();
        let p = build(&input);
        let history: usize = inbox.iter().map(|m| m.text.len()).sum::<usize>()
            + outbox.iter().map(|r| r.text.len()).sum::<usize>();
        println!(
            "prompt build, 200 turns x {size} chars (history {history} chars, budget {budget}): median {:.3} ms, max {:.3} ms, prompt {} chars, {} turns dropped",
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            p.text.len(),
            p.dropped_turns
        );
    }
}
