//! The replayed prompt: how much of each turn's prompt a prefix cache can reuse from the
//! previous turn's, for the old layout (oldest turn dropped one at a time, a drop counter after
//! the brief) and the current one (cut in large steps), side by side; and the prompt build
//! time at 200 turns (target: ≤ 5 ms). `cargo bench --bench prompt`; prints medians.
//!
//! `+codex` columns put a constant 20,000 characters before the prompt: codex's own
//! instructions, tool list and environment (measured size with codex 0.169.0), which the
//! chat template sees first on every turn.

use std::time::{Duration, Instant};

use wg::conversation::{InboxMessage, OutboxRecord, Role};
use wg::handler::digest::{Actions, Changed, Ran};
use wg::handler::prompt::{build, preamble, PromptInput};
use wg::handler::trim::{median, prefix_share, sliding_cut};

const CODEX_OVERHEAD_CHARS: usize = 20_000;

fn msg(seq: u64, text: String) -> InboxMessage {
    InboxMessage {
        seq,
        ts: "2026-01-01T00:00:00.000Z".into(),
        sender: if seq == 1 { "wg" } else { "user" }.into(),
        kind: if seq == 1 { "brief" } else { "message" }.into(),
        text,
    }
}

/// `turns` turns, each answering one message; message and reply sizes vary (seeded), each
/// turn ran a few commands. `scale` multiplies the sizes.
fn conversation(turns: u64, scale: usize) -> (Vec<InboxMessage>, Vec<OutboxRecord>) {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rnd = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut inbox = vec![msg(1, format!("# Task bench\n{}", "brief ".repeat(200)))];
    let mut outbox = Vec::new();
    for i in 1..=turns {
        let q = (20 + rnd(380) as usize) * scale;
        inbox.push(msg(i + 1, format!("question {i} {}", "q".repeat(q))));
        let a = (100 + rnd(1100) as usize) * scale;
        let actions = Actions {
            commands: (0..rnd(5))
                .map(|c| Ran {
                    command: format!("cargo test --lib part{c}"),
                    exit_code: Some(if c == 3 { 101 } else { 0 }),
                    failed: c == 3,
                    output: (c == 3).then(|| "error[E0308]: mismatched types".into()),
                })
                .collect(),
            files: vec![Changed {
                path: format!("src/m{i}.rs"),
                kind: "update".into(),
            }],
            more_commands: 0,
        };
        let mut extra = serde_json::Map::new();
        extra.insert("actions".into(), serde_json::to_value(&actions).unwrap());
        outbox.push(OutboxRecord {
            seq: i,
            ts: "2026-01-01T00:00:00.000Z".into(),
            duration_ms: 1,
            extra,
            ..OutboxRecord::new(
                i + 1,
                Role::Assistant,
                format!("answer {i} {}", "a".repeat(a)),
            )
        });
    }
    (inbox, outbox)
}

/// The layout before prefix-stable trimming: the newest turns that fit, a drop counter after
/// the brief, the new messages under their own heading.
fn old_layout(inbox: &[InboxMessage], outbox: &[OutboxRecord], budget: usize) -> String {
    let render =
        |m: &InboxMessage| format!("### Message {} (from {})\n{}\n\n", m.seq, m.sender, m.text);
    let turns: Vec<String> = outbox
        .iter()
        .map(|r| {
            let m = inbox.iter().find(|m| m.seq == r.in_reply_to).unwrap();
            format!("{}### Your reply\n{}\n\n", render(m), r.text)
        })
        .collect();
    let lens: Vec<usize> = turns.iter().map(|t| t.chars().count()).collect();
    let cut = sliding_cut(&lens, budget);
    let mut s = preamble("bench");
    s.push_str(&format!("\n## Task brief\n\n{}\n\n", inbox[0].text));
    if !turns.is_empty() {
        s.push_str("## Conversation so far\n\n");
        if cut > 0 {
            s.push_str(&format!(
                "[wg: {cut} earlier turns omitted to fit the history budget]\n\n"
            ));
        }
        for t in &turns[cut..] {
            s.push_str(t);
        }
    }
    s.push_str("## New message\n\n");
    let answered = outbox.last().map_or(0, |r| r.in_reply_to);
    for m in inbox.iter().filter(|m| m.seq > answered && m.seq != 1) {
        s.push_str(&render(m));
    }
    s
}

fn shares(prompts: &[String], overhead: usize) -> Vec<f64> {
    let pad = "x".repeat(overhead);
    prompts
        .windows(2)
        .map(|w| prefix_share(&format!("{pad}{}", w[0]), &format!("{pad}{}", w[1])))
        .collect()
}

fn prefix_table(turns: u64, scale: usize, budget: usize, print_rows: bool) {
    let (inbox, outbox) = conversation(turns, scale);
    let mut old = Vec::new();
    let mut new = Vec::new();
    for k in 0..turns as usize {
        let inbox_k = &inbox[..k + 2];
        let outbox_k = &outbox[..k];
        old.push(old_layout(inbox_k, outbox_k, budget));
        new.push(
            build(&PromptInput {
                task_id: "bench",
                inbox: inbox_k,
                outbox: outbox_k,
                history_budget_chars: budget,
                actions_chars: Some(1_200),
            })
            .text,
        );
    }
    let cols = [
        shares(&old, 0),
        shares(&new, 0),
        shares(&old, CODEX_OVERHEAD_CHARS),
        shares(&new, CODEX_OVERHEAD_CHARS),
    ];
    println!(
        "\nprefix share per turn, {turns} turns, history budget {budget} chars (turn sizes x{scale}):"
    );
    if print_rows {
        println!(" turn    old    new   old+codex  new+codex");
        for (i, old) in cols[0].iter().enumerate() {
            println!(
                "{:>5}  {old:.3}  {:.3}   {:.3}      {:.3}",
                i + 2,
                cols[1][i],
                cols[2][i],
                cols[3][i]
            );
        }
    }
    let below = |c: &[f64]| c.iter().filter(|s| **s < 0.5).count();
    println!(
        "median  {:.3}  {:.3}   {:.3}      {:.3}",
        median(&cols[0]).unwrap(),
        median(&cols[1]).unwrap(),
        median(&cols[2]).unwrap(),
        median(&cols[3]).unwrap()
    );
    println!(
        "turns below 0.5: old {}, new {} (of {})",
        below(&cols[0]),
        below(&cols[1]),
        cols[0].len()
    );
}

fn build_time() {
    for scale in [1, 8] {
        let (mut inbox, outbox) = conversation(200, scale);
        inbox.push(msg(202, "the new message".into()));
        let input = PromptInput {
            task_id: "bench",
            inbox: &inbox,
            outbox: &outbox,
            history_budget_chars: 200_000,
            actions_chars: Some(1_200),
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
            "prompt build, 200 turns (history {history} chars, budget 200000, digests on): median {:.3} ms, max {:.3} ms, prompt {} chars, {} turns dropped",
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            p.text.len(),
            p.dropped_turns
        );
    }
}

fn main() {
    build_time();
    prefix_table(90, 1, 20_000, true);
    prefix_table(200, 8, 200_000, false);
}
