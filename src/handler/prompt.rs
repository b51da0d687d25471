//! The prompt of one turn, rebuilt from the whole conversation every time: codex is started
//! fresh per turn, so the prompt is its only memory. Pure: no I/O.
//!
//! Layout: preamble, the brief (inbox message 1), earlier turns in order (messages then the
//! reply), then the messages this turn answers. `history_budget_chars` bounds the earlier
//! turns: the oldest are dropped first, with a marker saying how many; the brief, the newest
//! earlier turn and the new messages always stay.

use crate::conversation::{InboxMessage, OutboxRecord};

/// What the preamble needs to know.
pub struct PromptInput<'a> {
    pub task_id: &'a str,
    pub inbox: &'a [InboxMessage],
    pub outbox: &'a [OutboxRecord],
    pub history_budget_chars: usize,
}

/// A built prompt and what was left out of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub text: String,
    /// Earlier turns dropped to fit the budget.
    pub dropped_turns: usize,
    /// The inbox seqs this turn answers (first, last); `None` when nothing is unanswered.
    pub answers: Option<(u64, u64)>,
}

/// One earlier turn: the messages it answered and its reply.
struct Turn<'a> {
    messages: Vec<&'a InboxMessage>,
    reply: &'a OutboxRecord,
}

pub fn preamble(task_id: &str) -> String {
    format!(
        "You are a coding agent working on task `{task_id}` of a project coordinated by `wg`.\n\
         Each turn you see the whole conversation so far; answer the new message(s) at the end.\n\
         Report progress with `wg log {task_id} \"what you did\"`.\n\
         When the task is complete, run `wg done {task_id}`; if it cannot be done, run \
         `wg fail {task_id} --reason \"why\"`. If you need a person to decide or answer something, \
         run `wg ask {task_id} \"your question\"` and end your turn: the answer arrives as the \
         next message. Do not stop without one of these.\n\
         The environment variables WG_TASK_ID and WG_DIR are set; `wg` is on PATH.\n"
    )
}

fn render_message(out: &mut String, m: &InboxMessage) {
    let who = match m.kind.as_str() {
        "message" => m.sender.clone(),
        kind => format!("{}, {kind}", m.sender),
    };
    out.push_str(&format!("### Message {} (from {who})\n", m.seq));
    out.push_str(m.text.trim_end());
    out.push_str("\n\n");
}

fn render_turn(t: &Turn<'_>) -> String {
    let mut s = String::new();
    for m in &t.messages {
        render_message(&mut s, m);
    }
    if t.reply.role == "assistant" {
        s.push_str("### Your reply\n");
        s.push_str(t.reply.text.trim_end());
    } else {
        // The agent never saw this text; it tells the agent why there is no reply.
        s.push_str("### (that turn failed; wg reported)\n");
        s.push_str(t.reply.text.trim_end());
    }
    s.push_str("\n\n");
    s
}

/// Cuts the middle out of `s` so it fits `max` chars, keeping both ends.
fn squeeze(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let marker = format!("\n[… {} characters omitted …]\n", n.saturating_sub(max));
    let keep = max.saturating_sub(marker.len()) / 2;
    let head: String = s.chars().take(keep).collect();
    let tail: String = s.chars().skip(n - keep).collect();
    format!("{head}{marker}{tail}")
}

/// Builds the prompt for the turn that answers every unanswered message.
pub fn build(input: &PromptInput<'_>) -> Prompt {
    let answered = input
        .outbox
        .iter()
        .map(|r| r.in_reply_to)
        .max()
        .unwrap_or(0);
    let brief = input.inbox.iter().find(|m| m.seq == 1);

    // Group the answered messages (brief excluded) by the reply that answered them.
    let mut turns: Vec<Turn<'_>> = Vec::with_capacity(input.outbox.len());
    let mut msgs = input
        .inbox
        .iter()
        .filter(|m| m.seq != 1 && m.seq <= answered)
        .peekable();
    let mut covered = 0u64;
    for reply in input.outbox {
        let upto = reply.in_reply_to.max(covered);
        let mut messages = Vec::new();
        while let Some(m) = msgs.next_if(|m| m.seq <= upto) {
            messages.push(m);
        }
        covered = upto;
        turns.push(Turn { messages, reply });
    }
    let new: Vec<&InboxMessage> = input.inbox.iter().filter(|m| m.seq > answered).collect();

    // Keep the newest turns that fit the budget; the newest one always stays (squeezed if
    // it alone is over).
    let rendered: Vec<String> = turns.iter().map(render_turn).collect();
    let budget = input.history_budget_chars;
    let mut used = 0usize;
    let mut keep_from = rendered.len();
    for (i, r) in rendered.iter().enumerate().rev() {
        let len = r.chars().count();
        if keep_from < rendered.len() && used + len > budget {
            break;
        }
        used += len;
        keep_from = i;
    }
    let dropped = keep_from;

    let mut text = preamble(input.task_id);
    text.push_str("\n## Task brief\n\n");
    match brief {
        Some(b) => text.push_str(b.text.trim_end()),
        None => text.push_str("(no brief)"),
    }
    text.push_str("\n\n");
    if !rendered.is_empty() {
        text.push_str("## Conversation so far\n\n");
        if dropped > 0 {
            text.push_str(&format!(
                "[wg: {dropped} earlier turn{} omitted to fit the history budget]\n\n",
                if dropped == 1 { "" } else { "s" }
            ));
        }
        for (i, r) in rendered.iter().enumerate().skip(keep_from) {
            if i + 1 == rendered.len() && used > budget {
                text.push_str(&squeeze(r, budget));
            } else {
                text.push_str(r);
            }
        }
    }
    let new_msgs: Vec<&&InboxMessage> = new.iter().filter(|m| m.seq != 1).collect();
    if !new_msgs.is_empty() {
        text.push_str(if new_msgs.len() == 1 {
            "## New message\n\n"
        } else {
            "## New messages\n\n"
        });
        for m in new_msgs {
            render_message(&mut text, m);
        }
    } else if answered == 0 {
        text.push_str("Start on the task now.\n");
    }
    Prompt {
        text,
        dropped_turns: dropped,
        answers: match (new.first(), new.last()) {
            (Some(a), Some(b)) => Some((a.seq, b.seq)),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn msg(seq: u64, text: &str) -> InboxMessage {
        InboxMessage {
            seq,
            ts: "t".into(),
            sender: if seq == 1 { "wg" } else { "user" }.into(),
            kind: if seq == 1 { "brief" } else { "message" }.into(),
            text: text.into(),
        }
    }
    pub(crate) fn reply(seq: u64, to: u64, role: &str, text: &str) -> OutboxRecord {
        OutboxRecord {
            seq,
            ts: "t".into(),
            in_reply_to: to,
            role: role.into(),
            text: text.into(),
            usage: None,
            duration_ms: 0,
            codex_version: None,
            extra: Default::default(),
        }
    }

    /// A conversation of `n` answered turns after the brief, plus one new message.
    pub(crate) fn conversation(n: u64, size: usize) -> (Vec<InboxMessage>, Vec<OutboxRecord>) {
        let mut inbox = vec![msg(1, "BRIEF")];
        let mut outbox = Vec::new();
        for i in 1..=n {
            inbox.push(msg(i + 1, &format!("question {i} {}", "q".repeat(size))));
            outbox.push(reply(
                i,
                i + 1,
                "assistant",
                &format!("answer {i} {}", "a".repeat(size)),
            ));
        }
        inbox.push(msg(n + 2, "the new one"));
        (inbox, outbox)
    }

    #[test]
    fn first_turn_is_preamble_and_brief() {
        let inbox = vec![msg(1, "Do the thing")];
        let p = build(&PromptInput {
            task_id: "t",
            inbox: &inbox,
            outbox: &[],
            history_budget_chars: 1000,
        });
        assert!(p
            .text
            .starts_with("You are a coding agent working on task `t`"));
        assert!(p.text.contains("wg done t") && p.text.contains("wg fail t --reason"));
        assert!(p.text.contains("wg ask t \"your question\""));
        assert!(p.text.contains("## Task brief\n\nDo the thing"));
        assert!(p.text.contains("Start on the task now."));
        assert_eq!(p.answers, Some((1, 1)));
    }

    #[test]
    fn earlier_turns_come_in_order_then_the_new_messages() {
        let inbox = vec![
            msg(1, "B"),
            msg(2, "m2"),
            msg(3, "m3"),
            msg(4, "m4"),
            msg(5, "m5"),
        ];
        let outbox = vec![
            reply(1, 1, "assistant", "r1"),
            reply(2, 3, "error", "endpoint down"),
            reply(3, 4, "assistant", "r3"),
        ];
        let p = build(&PromptInput {
            task_id: "t",
            inbox: &inbox,
            outbox: &outbox,
            history_budget_chars: 10_000,
        });
        let order = [
            "B",
            "r1",
            "m2",
            "m3",
            "endpoint down",
            "m4",
            "r3",
            "## New message",
            "m5",
        ];
        let mut at = 0;
        for needle in order {
            let i = p.text[at..]
                .find(needle)
                .unwrap_or_else(|| panic!("{needle} out of order:\n{}", p.text));
            at += i + needle.len();
        }
        assert!(p.text.contains("that turn failed"));
        assert_eq!(p.answers, Some((5, 5)));
        assert_eq!(p.dropped_turns, 0);
    }

    #[test]
    fn budget_drops_oldest_turns_with_a_marker_and_keeps_brief_and_newest() {
        let (inbox, outbox) = conversation(50, 1000);
        let p = build(&PromptInput {
            task_id: "t",
            inbox: &inbox,
            outbox: &outbox,
            history_budget_chars: 10_000,
        });
        assert!(p.dropped_turns > 40, "{}", p.dropped_turns);
        assert!(p
            .text
            .contains(&format!("[wg: {} earlier turns omitted", p.dropped_turns)));
        assert!(
            p.text.contains("BRIEF")
                && p.text.contains("answer 50")
                && p.text.contains("the new one")
        );
        assert!(!p.text.contains("answer 1 "));
        assert!(p.text.len() < 10_000 + 2_000, "{}", p.text.len());
    }

    #[test]
    fn a_single_huge_turn_is_squeezed_to_the_budget() {
        let (inbox, outbox) = conversation(1, 500_000);
        let p = build(&PromptInput {
            task_id: "t",
            inbox: &inbox,
            outbox: &outbox,
            history_budget_chars: 5_000,
        });
        assert!(p.text.len() < 7_000, "{}", p.text.len());
        assert!(p.text.contains("characters omitted") && p.text.contains("the new one"));
    }

    #[test]
    fn two_hundred_turns_build_fast_and_bounded() {
        let (inbox, outbox) = conversation(200, 2_000);
        let start = std::time::Instant::now();
        let p = build(&PromptInput {
            task_id: "t",
            inbox: &inbox,
            outbox: &outbox,
            history_budget_chars: 200_000,
        });
        let took = start.elapsed();
        assert!(p.text.len() < 205_000);
        // Generous for unoptimised test builds; benches/prompt.rs measures the release build.
        assert!(took.as_millis() < 100, "{took:?}");
    }
}
