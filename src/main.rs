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

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Prints clap's help or version text; a stdout that cannot take it exits 74, as for every
/// other command's output (`clap::Error::exit` would ignore the failed write and exit 0).
fn print_help(e: &clap::Error) -> ExitCode {
    use std::io::Write;
    let text = e.render().to_string();
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::from(wg::exit::OK),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(wg::exit::OK),
        Err(err) => {
            wg::output::stderr(&format!("error: cannot write the output: {err}\n"));
            ExitCode::from(wg::exit::IO)
        }
    }
}

fn main() -> ExitCode {
    // First thing: any wg process may hold an API key (from its environment or the credential
    // proxy), and the agents' commands run as the same user.
    let undumpable = wg::process::make_non_dumpable();
    // Inside an agent's box: the box's first program, or an agent's `wg` command, which goes
    // to the handler's broker (`.wg/` is read-only here).
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(wg::sandbox::init::WORD) {
        return exit_code(wg::sandbox::init::main(&args[1..]));
    }
    if let Some(socket) =
        std::env::var_os(wg::sandbox::broker::SOCKET_ENV).filter(|s| !s.is_empty())
    {
        return exit_code(wg::sandbox::broker::client(
            std::path::Path::new(&socket),
            args,
        ));
    }
    let json = wants_json();
    let cli = match wg::cli::Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version go to stdout, which may fail like any command's output.
        Err(e) if !e.use_stderr() => return print_help(&e),
        // Plain errors without --json: clap prints them itself.
        Err(e) if !json => e.exit(),
        Err(e) => {
            let text = e.render().to_string();
            let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
            let message = lines.next().unwrap_or("").trim_start_matches("error: ");
            let mut err =
                wg::error::CliError::new(wg::error::Kind::Usage, anyhow::anyhow!("{message}"));
            for hint in lines {
                err = err.hinted(hint);
            }
            wg::output::stderr(&format!("{}\n", err.to_json()));
            return ExitCode::from(err.exit_code());
        }
    };
    wg::logging::init(cli.verbose);
    if let Err(e) = undumpable {
        tracing::warn!("cannot make this process non-dumpable: {e}");
    }
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
