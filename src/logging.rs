//! wg's own diagnostics: tracing to stderr, filtered by `WG_LOG` (default `warn`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "wg=info,warn",
        _ => "wg=debug,info",
    };
    let filter =
        EnvFilter::try_from_env(crate::env::WG_LOG).unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        // Colour codes only for a person at a terminal: never into a log file or a pipe,
        // and never when NO_COLOR is set.
        .with_ansi(std::io::stderr().is_terminal() && crate::top::live::color_allowed())
        .without_time()
        // Its own report of a failed write would go to the same broken stderr by `eprintln!`
        // and panic (`2>/dev/full`).
        .log_internal_errors(false)
        .try_init();
}
