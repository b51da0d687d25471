use std::io::IsTerminal;

use clap::Args;

use crate::cli::Ctx;
use crate::error::{usage_error, CliError, CliResult, Kind};
use crate::top::{live, model, render};

/// A live view of the project: tasks by status (failed first), running agents with their turn,
/// time, tokens and last event, and totals.
///
/// Select a task (↑↓) and press enter for its transcript as it grows, `m` to send it a message,
/// `r` to retry it, `p` to pause it (or resume it when paused); `q` quits. Refreshed when the project's files change. Colours are off when
/// NO_COLOR is set. `--once` prints one frame as plain text, for scripts and pipes.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Print one frame as plain text and exit (`--json`: the same data as JSON).
    #[arg(long)]
    pub once: bool,
}

fn load_error(e: model::LoadError) -> CliError {
    match e {
        model::LoadError::Store(s) => s.into(),
        other => CliError::new(Kind::User, other),
    }
}

pub fn cmd_top(ctx: &Ctx, args: &TopArgs) -> CliResult {
    if args.once || ctx.out.json {
        let snap = model::load(&ctx.layout, &ctx.store).map_err(load_error)?;
        return Ok(ctx
            .out
            .either(&model::json(&snap), || render::once_text(&snap))?);
    }
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        return Err(usage_error("wg top needs a terminal")
            .hinted("`wg top --once` prints one frame as plain text"));
    }
    let theme = render::Theme {
        color: live::color_allowed(),
    };
    live::run(&ctx.layout, &ctx.store, theme).map_err(|e| CliError::new(Kind::User, e))
}
