use std::path::PathBuf;

use clap::{Args, CommandFactory};

use crate::cli::{display_path, Cli};
use crate::error::{usage_error, user_error, CliResult};
use crate::output::Printer;

/// Print a man page (roff), or write one per command into a folder.
///
/// `wg man | man -l -` reads the main page; `wg man service start` prints that command's;
/// `wg man --out DIR` writes `wg.1`, `wg-add.1`, … (put DIR's parent on MANPATH, or copy the
/// files into `~/.local/share/man/man1/`). Generated from the same definitions as `wg --help`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print, e.g. `service start`. Default: `wg` itself.
    pub command: Vec<String>,
    /// Write every command's page into this folder instead of printing one.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub out: Option<PathBuf>,
}

/// The clap command for `wg` with its page names set (`wg-service-start`), ready to render.
fn built() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

/// The roff page for `path` (`[]` for `wg`, `["service", "start"]` for that command).
pub fn page(path: &[String]) -> Result<Vec<u8>, String> {
    let mut cmd = built();
    for name in path {
        let sub = cmd
            .get_subcommands()
            .find(|c| c.get_name() == name && !c.is_hide_set())
            .cloned()
            .ok_or_else(|| format!("no command `{name}`"))?;
        cmd = sub;
    }
    let mut roff = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut roff)
        .map_err(|e| e.to_string())?;
    Ok(roff)
}

pub fn cmd_man(cli: &Cli, args: &ManArgs) -> CliResult {
    let out = Printer::new(cli.json);
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir)
            .map_err(|e| user_error(format!("cannot create {}: {e}", dir.display())))?;
        clap_mangen::generate_to(built(), dir)
            .map_err(|e| user_error(format!("cannot write man pages to {}: {e}", dir.display())))?;
        let mut pages: Vec<String> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".1"))
            .collect();
        pages.sort();
        return Ok(
            out.either(&serde_json::json!({"dir": dir, "pages": pages}), || {
                format!("wrote {} man pages to {}", pages.len(), display_path(dir))
            })?,
        );
    }
    let roff = page(&args.command).map_err(|e| {
        usage_error(e).hinted("`wg --help` lists the commands; `wg man` alone prints the main page")
    })?;
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&roff)?;
    stdout.flush()?;
    Ok(())
}
