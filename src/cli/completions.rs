use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::CliResult;

/// Print a shell completion script, generated from the same definitions as `wg --help`.
///
/// bash: `wg completions bash > ~/.local/share/bash-completion/completions/wg`;
/// zsh: `wg completions zsh > "${fpath[1]}/_wg"`;
/// fish: `wg completions fish > ~/.config/fish/completions/wg.fish`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: Shell,
}

pub fn cmd_completions(args: &CompletionsArgs) -> CliResult {
    let mut cmd = Cli::command();
    // Generated into memory first: clap_complete panics when its writer fails, and a stdout
    // that cannot be written must end in exit code 74 like every other command's.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "wg", &mut script);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script)?;
    Ok(())
}
