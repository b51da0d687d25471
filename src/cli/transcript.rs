use clap::Args;
use serde::Serialize;

use crate::cli::{check_id, Ctx};
use crate::conversation::{self, InboxMessage, OutboxRecord};
use crate::error::{not_found, CliResult};

/// Print a task's conversation: every message and reply, in order.
#[derive(Debug, Args)]
pub struct TranscriptArgs {
    pub id: String,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Entry<'a> {
    Message(&'a InboxMessage),
    Reply(&'a OutboxRecord),
}

pub fn cmd_transcript(ctx: &Ctx, args: &TranscriptArgs) -> CliResult {
    check_id(&args.id)?;
    if !ctx.store.writer()?.exists(&args.id) {
        return Err(not_found(&args.id));
    }
    let inbox = conversation::read_inbox(&ctx.layout, &args.id)?;
    let outbox = conversation::read_outbox(&ctx.layout, &args.id)?;
    // Each reply follows the messages it answered.
    let mut entries = Vec::with_capacity(inbox.len() + outbox.len());
    let mut msgs = inbox.iter().peekable();
    for r in &outbox {
        while let Some(m) = msgs.next_if(|m| m.seq <= r.in_reply_to) {
            entries.push(Entry::Message(m));
        }
        entries.push(Entry::Reply(r));
    }
    entries.extend(msgs.map(Entry::Message));
    ctx.out.either(&entries, || {
        let mut s = String::new();
        for e in &entries {
            match e {
                Entry::Message(m) => {
                    let kind = if m.kind == "message" {
                        String::new()
                    } else {
                        format!(" ({})", m.kind)
                    };
                    s.push_str(&format!(
                        "── message {} from {}{kind} · {}\n{}\n\n",
                        m.seq,
                        m.sender,
                        m.ts,
                        m.text.trim_end()
                    ));
                }
                Entry::Reply(r) => {
                    let tokens = r
                        .usage
                        .as_ref()
                        .map(|u| {
                            format!(" · {} in / {} out tokens", u.input_tokens, u.output_tokens)
                        })
                        .unwrap_or_default();
                    s.push_str(&format!(
                        "── {} {} · {} · {:.1}s{tokens}\n{}\n\n",
                        match r.role {
                            crate::conversation::Role::Assistant => "reply",
                            crate::conversation::Role::Note => "note from wg",
                            crate::conversation::Role::Error => "error reply",
                        },
                        r.seq,
                        r.ts,
                        r.duration_ms as f64 / 1000.0,
                        r.text.trim_end()
                    ));
                }
            }
        }
        s
    })?;
    Ok(())
}
