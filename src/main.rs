use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // First thing: any wg process may hold an API key (from its environment or the credential
    // proxy), and the agents' commands run as the same user.
    let undumpable = wg::process::make_non_dumpable();
    let cli = wg::cli::Cli::parse();
    wg::logging::init(cli.verbose);
    if let Err(e) = undumpable {
        tracing::warn!("cannot make this process non-dumpable: {e}");
    }
    match wg::cli::run(cli) {
        Ok(()) => ExitCode::from(wg::exit::OK),
        Err(e) => {
            // A closed pipe (`wg list | head`) is not an error.
            if e.error.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::from(wg::exit::OK);
            }
            wg::output::stderr(&format!("{e}\n"));
            ExitCode::from(e.exit_code())
        }
    }
}
