use clap::Args;

use crate::cli::Ctx;
use crate::coordinator::{self, endpoints};
use crate::error::{user_error, CliResult};
use crate::process::signal_pid;

/// Probe every paused endpoint now instead of waiting for its next probe.
///
/// Dispatch to an endpoint resumes only when its probe passes (a small streamed request to
/// the model, with the agents' key, answered within `handler.first_byte_timeout`); this makes
/// the probe happen at once, e.g. after fixing the key or restarting the model server.
#[derive(Debug, Args)]
pub struct ResumeArgs {}

pub fn cmd_resume(ctx: &Ctx, _args: &ResumeArgs) -> CliResult {
    let Some(pid) = coordinator::running(&ctx.layout)? else {
        return Err(super::stop::not_running());
    };
    let Some(pid) = pid else {
        return Err(user_error(
            "the coordinator is still starting; try again in a moment",
        ));
    };
    let paused = endpoints::read_paused(&ctx.layout);
    // The pid was read from the lock file that its holder wrote; SIGUSR1 is its resume.
    signal_pid(pid as i32, libc::SIGUSR1)
        .map_err(|e| user_error(format!("cannot signal the coordinator (pid {pid}): {e}")))?;
    ctx.out.either(
        &serde_json::json!({"probing": paused.iter().map(|p| &p.endpoint).collect::<Vec<_>>()}),
        || {
            if paused.is_empty() {
                "no endpoint is paused; nothing to probe".to_string()
            } else {
                let list: Vec<&str> = paused.iter().map(|p| p.endpoint.as_str()).collect();
                format!(
                    "probing now: {} (`wg service status` shows the result)",
                    list.join(", ")
                )
            }
        },
    )?;
    Ok(())
}
