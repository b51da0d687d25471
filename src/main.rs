use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = wg::cli::Cli::parse();
    wg::logging::init(cli.verbose);
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
