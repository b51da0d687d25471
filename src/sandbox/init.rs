//! `wg sandbox-init`: the first program in a box (under bwrap's own init). It starts the
//! proxy relay on the box's loopback, runs the agent, and exits with its status; bwrap then
//! ends the PID namespace and with it everything the agent left running. Not a user command:
//! `main.rs` calls it before parsing, so it is not in `wg --help`.
//!
//! `wg sandbox-init [--listen 127.0.0.1:PORT --to SOCKET] -- PROGRAM ARGS...`

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;

/// The word after `wg` that selects this entry point.
pub const WORD: &str = "sandbox-init";

/// Runs the box's agent; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let mut listen = None;
    let mut to = None;
    let mut i = 0;
    while i < args.len() && args[i] != "--" {
        match (args[i].as_str(), args.get(i + 1)) {
            ("--listen", Some(v)) => listen = v.parse().ok(),
            ("--to", Some(v)) => to = Some(PathBuf::from(v)),
            _ => {
                eprintln!("wg sandbox-init: unexpected argument {:?}", args[i]);
                return 2;
            }
        }
        i += 2;
    }
    let Some((program, rest)) = args.get(i + 1..).and_then(|a| a.split_first()) else {
        eprintln!("wg sandbox-init: no program after --");
        return 2;
    };
    if let (Some(listen), Some(to)) = (listen, to) {
        if let Err(e) = super::relay::inside(listen, to) {
            eprintln!("wg sandbox-init: cannot listen on {listen} for the proxy: {e}");
            return 1;
        }
    }
    match std::process::Command::new(program).args(rest).status() {
        Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
        Err(e) => {
            eprintln!("wg sandbox-init: cannot run {program}: {e}");
            127
        }
    }
}
