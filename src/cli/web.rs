use std::io::Write;

use clap::Args;

use crate::cli::{Cli, Ctx};
use crate::config::web::check_bind;
use crate::error::{usage_error, CliError, CliResult, Kind};
use crate::web::{self, Project};

/// The board in a browser: tasks by status (failures and questions first), the dependency
/// graph with its critical path, running agents, paused endpoints, and each task's
/// conversation, all live; send messages, answer questions, pause, resume, cancel, retry and
/// add tasks from the page.
///
/// Listens on 127.0.0.1 and prints the address and a fresh access token; open the address and
/// log in with the token. `--dir A --dir B` shows several projects on one board.
#[derive(Debug, Args)]
pub struct WebArgs {
    /// Address to listen on (default: `[web] host`, 127.0.0.1). Anything but loopback needs
    /// --allow-remote.
    #[arg(long)]
    pub host: Option<String>,
    /// Port (default: `[web] port`, 7878; 0 picks a free one).
    #[arg(long)]
    pub port: Option<u16>,
    /// Allow a host other than loopback: whoever reaches it and holds the token can act.
    #[arg(long)]
    pub allow_remote: bool,
}

pub fn cmd_web(cli: &Cli, args: &WebArgs) -> CliResult {
    let dirs: Vec<Option<&std::path::Path>> = if cli.dir.is_empty() {
        vec![None]
    } else {
        cli.dir.iter().map(|d| Some(d.as_path())).collect()
    };
    let mut projects = Vec::new();
    let mut config = None;
    for d in dirs {
        let ctx = Ctx::open_at(d, cli.json, false)?;
        config.get_or_insert_with(|| ctx.config.web.clone());
        let project =
            Project::open(ctx.layout, ctx.store).map_err(|e| CliError::new(Kind::User, e))?;
        projects.push(project);
    }
    let cfg = config.expect("at least one project");
    let host = args.host.clone().unwrap_or(cfg.host);
    let port = args.port.unwrap_or(cfg.port);
    let bind = check_bind(&host, port, args.allow_remote || cfg.allow_remote).map_err(|e| {
        usage_error(e)
            .hinted("the board is meant for this machine; reach it from elsewhere through `ssh -L`")
    })?;
    let running = web::start(web::Options {
        projects,
        bind,
        token: None,
    })
    .map_err(|e| CliError::new(Kind::User, e))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "wg web: http://{}/", running.addr)?;
    writeln!(out, "access token: {}", running.token)?;
    if !web::is_loopback(&running.addr) {
        writeln!(
            out,
            "warning: listening on {}, reachable from other machines; traffic is not encrypted (put a TLS proxy in front)",
            running.addr
        )?;
    }
    out.flush()?;
    drop(out);
    running.wait();
    Ok(())
}
