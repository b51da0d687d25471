use std::time::{Duration, Instant};

use clap::Args;

use crate::cli::Ctx;
use crate::coordinator;
use crate::error::{user_error, CliError, CliResult, Kind};
use crate::process::{pid_alive, signal_pid};

/// Stop the coordinator: running agents get the grace period to finish their turn, then are
/// stopped; their tasks go back to open. Returns when everything is stopped and cleaned up.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Kill every agent now instead of waiting for them.
    #[arg(long)]
    pub force: bool,
}

pub fn not_running() -> CliError {
    CliError::new(
        Kind::Unavailable,
        anyhow::anyhow!("no coordinator is running for this project"),
    )
    .hinted("`wg service start` starts one")
}

pub fn cmd_stop(ctx: &Ctx, args: &StopArgs) -> CliResult {
    let Some(pid) = coordinator::running(&ctx.layout)? else {
        return Err(not_running());
    };
    let Some(pid) = pid else {
        return Err(user_error(
            "the coordinator is still starting; try again in a moment",
        ));
    };
    // SIGTERM asks for a graceful stop, SIGQUIT for an immediate one (see docs/coordinator.md).
    let signal = if args.force {
        libc::SIGQUIT
    } else {
        libc::SIGTERM
    };
    // The pid was read from the lock file that its holder wrote.
    if let Err(e) = signal_pid(pid as i32, signal) {
        return Err(user_error(format!(
            "cannot signal the coordinator (pid {pid}): {e}"
        )));
    }
    let grace = ctx.config.coordinator.grace_period.get();
    let deadline = Instant::now() + grace * 3 + Duration::from_secs(10);
    // The lock is released while the process is still exiting: "stopped" means gone.
    while coordinator::running(&ctx.layout)?.is_some() || pid_alive(pid as i32) {
        if Instant::now() > deadline {
            return Err(
                user_error(format!("the coordinator (pid {pid}) has not stopped yet"))
                    .hinted("`wg service stop --force` kills its agents now"),
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    ctx.out
        .either(&serde_json::json!({"running": false, "pid": pid}), || {
            format!("coordinator (pid {pid}) stopped")
        })?;
    Ok(())
}
