//! `wg service start|stop|status|resume`: the coordinator as a per-project service.

mod resume;
pub(crate) mod start;
mod status;
mod stop;

use clap::Subcommand;

use crate::cli::Ctx;
use crate::error::CliResult;

/// Run the coordinator that starts agents on ready tasks.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    Start(start::StartArgs),
    Stop(stop::StopArgs),
    Status(status::StatusArgs),
    Resume(resume::ResumeArgs),
}

pub fn cmd_service(ctx: &Ctx, cmd: &ServiceCommand) -> CliResult {
    match cmd {
        ServiceCommand::Start(a) => start::cmd_start(ctx, a),
        ServiceCommand::Stop(a) => stop::cmd_stop(ctx, a),
        ServiceCommand::Status(a) => status::cmd_status(ctx, a),
        ServiceCommand::Resume(a) => resume::cmd_resume(ctx, a),
    }
}
