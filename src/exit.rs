//! Exit codes. `docs/exit-codes.md` mirrors this table; scripts rely on it.

/// Success.
pub const OK: u8 = 0;
/// The command ran and failed: a refused change, a failed turn, a failed check.
pub const FAILURE: u8 = 1;
/// Bad command line (clap's own code).
pub const USAGE: u8 = 2;
/// `.wg/config.toml` is missing, unreadable or invalid, or no project was found.
pub const CONFIG: u8 = 3;
/// The task (or other named thing) does not exist.
pub const NOT_FOUND: u8 = 4;
/// The store is locked by another wg process for longer than the lock timeout.
pub const LOCKED: u8 = 5;
/// The coordinator is not running (for commands that need it).
pub const UNAVAILABLE: u8 = 6;
/// The task store is corrupt: a line that is not a valid record (in `graph.jsonl` or in a
/// task's conversation or log file).
pub const CORRUPT: u8 = 7;
/// `wg service start --until-done`: some task failed (retries spent) or was abandoned.
pub const TASKS_FAILED: u8 = 8;
/// `wg service start --until-done`: tasks are left that cannot start (waiting on a failed
/// dependency, a message or a person).
pub const STUCK: u8 = 9;
/// `wg service start --until-done --max-pause D`: an endpoint stayed paused longer than D.
pub const PAUSED: u8 = 10;
/// A file could not be written or read: a full disk, a read-only file system, no
/// permission. The message names the path.
pub const IO: u8 = 74;
/// A bug in wg.
pub const INTERNAL: u8 = 70;
