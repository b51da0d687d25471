use std::process::ExitCode;

use clap::Parser;

/// Whether the command line asks for JSON, looked at before parsing so that even a command
/// line clap rejects gets its error as JSON.
fn wants_json() -> bool {
    std::env::args_os()
        .skip(1)
        .take_while(|a| a != "--")
        .any(|a| a == "--json")
}

fn main() -> ExitCode {
    let json = wants_json();
    let cli = match wg::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version, and plain errors without --json: clap prints them itself.
        Err(e) if !json || !e.use_stderr() => e.exit(),
        Err(e) => {
            let text = e.render().to_string();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let message = lines.next().unwrap_or("").trim_start_matches("error: ");
            let mut err =
                wg::error::CliError::new(wg::error::Kind::Usage, anyhow::anyhow!("{message}"));
            for hint in lines {
                err = err.hinted(hint);
            }
            eprintln!("{}", err.to_json());
            return ExitCode::from(err.exit_code());
        }
    };
    wg::logging::init(cli.verbose);
    let json = cli.json;
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
            if json {
                wg::output::stderr(&format!("{}\n", e.to_json()));
            } else {
                wg::output::stderr(&format!("{e}\n"));
            }
            ExitCode::from(e.exit_code())
        }
    }
}
