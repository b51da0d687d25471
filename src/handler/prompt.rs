//! The prompt of one turn, rebuilt from the whole conversation every time: codex is started
//! fresh per turn, so the prompt is its only memory. Pure: no I/O.
//!
//! Layout (docs/conversation.md, "How a turn's prompt is built"): preamble, the brief (inbox
//! message 1), `## Conversation`, the earlier turns in order (the messages each answered, its
//! reply, a digest of what the agent did), the messages this turn answers rendered exactly as
//! they will appear once answered, and last a short request to answer them.
//!
//! Built so a server's prefix cache can serve it: nothing before the newest turn changes from
//! one turn to the next (no counters, times or ids), so each prompt extends the previous one
//! minus its final request. The one exception is the cut point of the history budget
//! (trim.rs), which moves in large steps.

use crate::conversation::Role;
use crate::conversation::{InboxMessage, OutboxRecord};

use super::digest::{self, Actions, Interrupted};
use super::trim;

/// What the prompt is built from.
pub struct PromptInput<'a> {
    pub task_id: &'a str,
    pub inbox: &'a [InboxMessage],
    pub outbox: &'a [OutboxRecord],
    pub history_budget_chars: usize,
    /// Bound of each earlier turn's digest of actions; `None` leaves digests out.
    pub actions_chars: Option<usize>,
}

/// A built prompt and what was left out of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Prompt {
    pub text: String,
    /// Earlier turns dropped to fit the budget.
    pub dropped_turns: usize,
    /// Characters of the replayed earlier turns (what the budget bounds).
    pub history_chars: usize,
    /// The inbox seqs this turn answers (first, last); `None` when nothing is unanswered.
    pub answers: Option<(u64, u64)>,
}

/// The heading of the final request; everything before it is stable across turns.
pub const REQUEST_HEADING: &str = "## Your turn\n";

/// One earlier turn: the messages it answered and its reply.
struct Turn<'a> {
    messages: Vec<&'a InboxMessage>,
    reply: &'a OutboxRecord,
}

pub fn preamble(task_id: &str) -> String {
    format!(
        "You are a coding agent working on task `{task_id}` of a project coordinated by `wg`.\n\
         Each turn you see the conversation so far: the brief, then every earlier turn (the \
         messages, your reply, and what you ran and changed), then the new message(s) to answer. \
         Old turns may be left out to fit the history budget.\n\
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

fn render_turn(t: &Turn<'_>, actions_chars: Option<usize>) -> String {
    let mut s = String::new();
    for m in &t.messages {
        render_message(&mut s, m);
    }
    if t.reply.role == Role::Assistant {
        s.push_str("### Your reply\n");
        s.push_str(t.reply.text.trim_end());
    } else if t.reply.role == Role::Note {
        s.push_str("### (no turn; wg noted)\n");
        s.push_str(t.reply.text.trim_end());
    } else {
        // The agent never saw this text; it tells the agent why there is no reply.
        s.push_str("### (that turn failed; wg reported)\n");
        s.push_str(t.reply.text.trim_end());
    }
    s.push_str("\n\n");
    if let (Some(max), Some(a)) = (actions_chars, Actions::of_record(&t.reply.extra)) {
        s.push_str(&digest::render(&a, max));
    }
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

/// Groups the answered messages (brief excluded) by the reply that answered them.
fn earlier_turns<'a>(
    inbox: &'a [InboxMessage],
    outbox: &'a [OutboxRecord],
    answered: u64,
) -> Vec<Turn<'a>> {
    let mut turns = Vec::with_capacity(outbox.len());
    let mut msgs = inbox
        .iter()
        .filter(|m| m.seq != 1 && m.seq <= answered)
        .peekable();
    let mut covered = 0u64;
    for reply in outbox {
        let upto = reply.in_reply_to.max(covered);
        let mut messages = Vec::new();
        while let Some(m) = msgs.next_if(|m| m.seq <= upto) {
            messages.push(m);
        }
        covered = upto;
        turns.push(Turn { messages, reply });
    }
    turns
}

/// Builds the prompt for the turn that answers every unanswered message.
pub fn build(input: &PromptInput<'_>) -> Prompt {
    // Turns the endpoint never took are not part of the conversation (see `is_outage`).
    let outbox: Vec<OutboxRecord> = input
        .outbox
        .iter()
        .filter(|r| !crate::conversation::is_outage(r))
        .cloned()
        .collect();
    let answered = outbox.iter().map(|r| r.in_reply_to).max().unwrap_or(0);
    let brief = input.inbox.iter().find(|m| m.seq == 1);
    let turns = earlier_turns(input.inbox, &outbox, answered);
    let new: Vec<&InboxMessage> = input.inbox.iter().filter(|m| m.seq > answered).collect();

    let rendered: Vec<String> = turns
        .iter()
        .map(|t| render_turn(t, input.actions_chars))
        .collect();
    let lens: Vec<usize> = rendered.iter().map(|r| r.chars().count()).collect();
    let budget = input.history_budget_chars;
    let keep_from = trim::stable_cut(&lens, budget);
    let dropped = keep_from;

    let mut text = preamble(input.task_id);
    text.push_str("\n## Task brief\n\n");
    match brief {
        Some(b) => text.push_str(b.text.trim_end()),
        None => text.push_str("(no brief)"),
    }
    text.push_str("\n\n## Conversation\n\n");
    if dropped > 0 {
        // Changes only when the cut point moves.
        text.push_str(&format!(
            "[wg: {dropped} earlier turn{} omitted to fit the history budget]\n\n",
            if dropped == 1 { "" } else { "s" }
        ));
    }
    let mut history_chars = 0;
    for (i, r) in rendered.iter().enumerate().skip(keep_from) {
        // Only the newest earlier turn can be over the budget alone (the cut keeps it).
        let r = if i + 1 == rendered.len() && lens[i] > budget {
            squeeze(r, budget)
        } else {
            r.clone()
        };
        history_chars += r.chars().count();
        text.push_str(&r);
    }
    let new_msgs: Vec<&&InboxMessage> = new.iter().filter(|m| m.seq != 1).collect();
    // The new messages exactly as the next turn will replay them: the next prompt extends
    // this one up to the request below.
    for m in &new_msgs {
        render_message(&mut text, m);
    }
    text.push_str(REQUEST_HEADING);
    text.push('\n');
    text.push_str(match new_msgs.len() {
        0 if answered == 0 => "Start on the task now.\n",
        0 => "Continue the task.\n",
        1 => "Answer the new message above.\n",
        _ => "Answer the new messages above.\n",
    });
    Prompt {
        text,
        dropped_turns: dropped,
        history_chars,
        answers: match (new.first(), new.last()) {
            (Some(a), Some(b)) => Some((a.seq, b.seq)),
            _ => None,
        },
    }
}

/// `p` with what a stopped attempt at this turn did (`digest::render_interrupted`, bounded
/// by `actions_chars`; nothing when digests are off) at the start of the final request:
/// after the stable part, so the next turn's prompt still starts with this one's.
pub fn with_interrupted(
    p: Prompt,
    stopped: Option<&Interrupted>,
    actions_chars: Option<usize>,
) -> Prompt {
    let (Some(i), Some(max)) = (stopped, actions_chars) else {
        return p;
    };
    let section = digest::render_interrupted(i, max);
    Prompt {
        text: insert_in_request(&p.text, &section),
        ..p
    }
}

fn insert_in_request(prompt: &str, section: &str) -> String {
    let at = prompt
        .rfind(REQUEST_HEADING)
        .map_or(prompt.len(), |at| at + REQUEST_HEADING.len() + 1)
        .min(prompt.len());
    format!("{}{section}{}", &prompt[..at], &prompt[at..])
}

/// The part of a prompt the next turn's prompt starts with: all of it but the final request.
pub fn stable_part(prompt: &str) -> &str {
    prompt
        .rfind(REQUEST_HEADING)
        .map_or(prompt, |at| &prompt[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupted_attempt_goes_into_the_request_and_keeps_the_stable_part() {
        let inbox = vec![msg(1, "BRIEF: build the parser")];
        let p = build(&PromptInput {
            task_id: "t",
            inbox: &inbox,
            outbox: &[],
            history_budget_chars: 10_000,
            actions_chars: Some(1200),
        });
        let with = insert_in_request(&p.text, "### An earlier attempt\nran x\n\n");
        assert_eq!(stable_part(&with), stable_part(&p.text));
        assert!(
            with.ends_with(
                "## Your turn\n\n### An earlier attempt\nran x\n\nStart on the task now.\n"
            ),
            "{with}"
        );
    }

    pub(crate) fn msg(seq: u64, text: &str) -> InboxMessage {
        InboxMessage {
            seq,
            ts: "t".into(),
            sender: if seq == 1 { "wg" } else { "user" }.into(),
            kind: if seq == 1 { "brief" } else { "message" }.into(),
            text: text.into(),
        }
    }
    pub(crate) fn reply(seq: u64, to: u64, role: Role, text: &str) -> OutboxRecord {
        OutboxRecord {
            seq,
            ts: "t".into(),
            ..OutboxRecord::new(to, role, text)
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
                Role::Assistant,
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
            actions_chars: None,
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
            reply(1, 1, Role::Assistant, "r1"),
            reply(2, 3, Role::Error, "endpoint down"),
            reply(3, 4, Role::Assistant, "r3"),
        ];
        let p = build(&PromptInput {
            task_id: "t",
            inbox: &inbox,
            outbox: &outbox,
            history_budget_chars: 10_000,
            actions_chars: None,
        });
        let order = [
            "B",
            "r1",
            "m2",
            "m3",
            "endpoint down",
            "m4",
            "r3",
            "m5",
            "## Your turn",
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
            actions_chars: None,
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
            actions_chars: None,
        });
        assert!(p.text.len() < 7_000, "{}", p.text.len());
        assert!(p.text.contains("characters omitted") && p.text.contains("the new one"));
    }

    #[test]
    fn two_hundred_turns_stay_within_the_budget() {
        let (inbox, outbox) = conversation(200, 2_000);
        let p = build(&PromptInput {
            task_id: "t",
            inbox: &inbox,
            outbox: &outbox,
            history_budget_chars: 200_000,
            actions_chars: None,
        });
        assert!(p.history_chars <= 200_000, "{}", p.history_chars);
        assert!(p.text.len() < 205_000);
        // Build time is measured by benches/prompt.rs on the release build, not asserted here.
    }

    /// A long synthetic conversation: sizes vary, some turns answer two messages, some fail,
    /// every turn ran commands (a few with long failing output) and changed files.
    struct Synthetic {
        inbox: Vec<InboxMessage>,
        outbox: Vec<OutboxRecord>,
        /// The last inbox seq each turn answers.
        last_seq: Vec<u64>,
    }

    fn synthetic(turns: usize) -> Synthetic {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut inbox = vec![msg(1, "BRIEF: build the parser")];
        let mut outbox = Vec::new();
        let mut last_seq = Vec::new();
        let mut seq = 1;
        for t in 0..turns {
            if t > 0 {
                for _ in 0..1 + usize::from(rnd(5) == 0) {
                    seq += 1;
                    let len = 20 + rnd(380) as usize;
                    inbox.push(msg(seq, &format!("msg {seq} {}", "m".repeat(len))));
                }
            }
            last_seq.push(seq);
            let role = if rnd(10) == 0 {
                Role::Error
            } else {
                Role::Assistant
            };
            let len = 100 + rnd(1100) as usize;
            let mut r = reply(
                t as u64 + 1,
                seq,
                role,
                &format!("reply {t} {}", "r".repeat(len)),
            );
            let actions = Actions {
                commands: (0..rnd(6))
                    .map(|i| digest::Ran {
                        command: format!("cargo test step{i}"),
                        exit_code: Some(if i == 2 { 101 } else { 0 }),
                        failed: i == 2,
                        output: (i == 2).then(|| "e".repeat(200)),
                    })
                    .collect(),
                files: vec![digest::Changed {
                    path: format!("src/f{t}.rs"),
                    kind: "update".into(),
                }],
                more_commands: 0,
            };
            r.extra
                .insert("actions".into(), serde_json::to_value(&actions).unwrap());
            outbox.push(r);
        }
        Synthetic {
            inbox,
            outbox,
            last_seq,
        }
    }

    #[test]
    fn three_hundred_turns_keep_prompts_prefix_stable_with_brief_new_messages_and_bounded_digests()
    {
        let s = synthetic(300);
        let budget = 20_000;
        let actions_max = 300;
        let mut prev: Option<Prompt> = None;
        let mut shares = Vec::new();
        let mut low_in_step = 0;
        let mut cuts = 0;
        for k in 0..300 {
            // The state when turn k starts: k turns answered, turn k's messages waiting.
            let upto = s.last_seq[k];
            let inbox: Vec<InboxMessage> =
                s.inbox.iter().filter(|m| m.seq <= upto).cloned().collect();
            let p = build(&PromptInput {
                task_id: "t",
                inbox: &inbox,
                outbox: &s.outbox[..k],
                history_budget_chars: budget,
                actions_chars: Some(actions_max),
            });
            assert!(p.text.contains("BRIEF: build the parser"), "turn {k}");
            let answered = if k == 0 { 0 } else { s.last_seq[k - 1] };
            for m in inbox.iter().filter(|m| m.seq > answered && m.seq != 1) {
                assert!(p.text.contains(&m.text), "turn {k} lacks message {}", m.seq);
            }
            assert!(p.history_chars <= budget, "turn {k}: {}", p.history_chars);
            for block in p.text.split("### What you did in that turn\n").skip(1) {
                let end = block.find("\n\n").unwrap();
                assert!(end + 32 <= actions_max, "digest of {} chars", end + 32);
            }
            if let Some(prev) = &prev {
                let share = trim::prefix_share(&prev.text, &p.text);
                shares.push(share);
                if p.dropped_turns == prev.dropped_turns {
                    // No cut: this prompt extends the previous one minus its final request.
                    assert!(
                        p.text.starts_with(stable_part(&prev.text)),
                        "turn {k} changed text before the newest turn"
                    );
                } else {
                    cuts += 1;
                    low_in_step = 0;
                }
                if share < 0.5 {
                    low_in_step += 1;
                    assert!(low_in_step <= 1, "two turns below 0.5 in one step at {k}");
                }
            }
            prev = Some(p);
        }
        assert!(cuts >= 5, "the budget was passed only {cuts} times");
        let median = trim::median(&shares).unwrap();
        assert!(median >= 0.90, "median prefix share {median:.3}");
    }
}
