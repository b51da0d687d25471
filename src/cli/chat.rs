use std::io::{BufRead, IsTerminal, Write};
use std::time::Duration;

use clap::Args;

use crate::cli::msg::{coordinator_running, send};
use crate::cli::{check_id, Ctx};
use crate::conversation;
use crate::error::{internal, CliResult};

/// Talk to a task's agent: each line you type is sent, the reply is printed. EOF (Ctrl-D) ends.
///
/// With a coordinator running it answers; without one, chat runs `wg handler ID --once` itself.
#[derive(Debug, Args)]
pub struct ChatArgs {
    pub id: String,
}

pub fn cmd_chat(ctx: &Ctx, args: &ChatArgs) -> CliResult {
    check_id(&args.id)?;
    let id = args.id.as_str();
    let tty = std::io::stdin().is_terminal();
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if tty {
            crate::output::stderr("you> ");
            let _ = std::io::stderr().flush();
        }
        let Some(line) = lines.next() else { break };
        let line = line?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let msg = send(ctx, id, text, false)?;
        if !coordinator_running(&ctx.layout) {
            // Nobody else will answer: run the turn here. Its output is the outbox record,
            // printed below, so the child's stdout is not needed.
            let exe = std::env::current_exe().map_err(internal)?;
            let _ = std::process::Command::new(exe)
                .arg("--dir")
                .arg(ctx.layout.dir())
                .args(["handler", id, "--once"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .status()
                .map_err(internal)?;
        } else if tty {
            crate::output::stderr("(waiting for the agent…)\n");
        }
        let reply = loop {
            let out = conversation::read_outbox(&ctx.layout, id)?;
            if let Some(r) = out.into_iter().find(|r| r.in_reply_to >= msg.seq) {
                break r;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        ctx.out.either(&reply, || {
            if reply.role == crate::conversation::Role::Error {
                format!("error: {}", reply.text)
            } else {
                reply.text.clone()
            }
        })?;
    }
    Ok(())
}
