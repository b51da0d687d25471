//! Test environment: a temp project with its own HOME, PATH and WG_DIR, and a runner for the
//! real `wg` binary.

#![allow(dead_code)]

#[macro_use]
pub mod wait;

pub mod disk;
pub mod project;
pub mod service;
pub mod stub;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn wg_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_wg"))
}

pub struct TestEnv {
    pub tmp: tempfile::TempDir,
    /// The project root (holds `.wg/`).
    pub root: PathBuf,
    pub home: PathBuf,
    pub bin: PathBuf,
    pub extra_env: Vec<(String, String)>,
}

/// The result of one `wg` run. `wg()` is `#[must_use]`; the checkers (`ok`, `code`) are not,
/// so `env.wg(..).ok();` reads naturally.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "expected success:\n{self}");
        self
    }
    pub fn code(self, code: i32) -> Run {
        assert_eq!(self.code, code, "expected exit {code}:\n{self}");
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}----- stderr -----\n{}[exit status: {}]",
            self.stdout, self.stderr, self.code
        )
    }
}

impl TestEnv {
    /// A temp dir with `home/`, `work/` (the project root) and `bin/`; no project yet.
    pub fn bare() -> TestEnv {
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = tmp.path().join("work");
        let home = tmp.path().join("home");
        let bin = tmp.path().join("bin");
        for d in [&root, &home, &bin] {
            std::fs::create_dir_all(d).unwrap();
        }
        TestEnv {
            tmp,
            root,
            home,
            bin,
            extra_env: Vec::new(),
        }
    }

    /// Like `bare`, but under cargo's target tmp dir: codex refuses to set up its helpers
    /// under the system temp dir, so tests that run the real codex live here.
    pub fn bare_outside_tmp() -> TestEnv {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        std::fs::create_dir_all(base).unwrap();
        let tmp = tempfile::tempdir_in(base).expect("temp dir");
        let root = tmp.path().join("work");
        let home = tmp.path().join("home");
        let bin = tmp.path().join("bin");
        for d in [&root, &home, &bin] {
            std::fs::create_dir_all(d).unwrap();
        }
        TestEnv {
            tmp,
            root,
            home,
            bin,
            extra_env: Vec::new(),
        }
    }

    /// A project created with `wg init -x mock`.
    pub fn new() -> TestEnv {
        let env = TestEnv::bare();
        let _ = env.wg(&["init", "-x", "mock"]).ok();
        env
    }

    pub fn wg_dir(&self) -> PathBuf {
        self.root.join(".wg")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// `wg config set KEY VALUE` for each pair, each one required to succeed.
    pub fn set_config(&self, pairs: &[(&str, &str)]) {
        for (k, v) in pairs {
            self.wg(&["config", "set", k, v]).ok();
        }
    }

    pub fn set_env(&mut self, k: &str, v: &str) {
        self.extra_env.push((k.to_string(), v.to_string()));
    }

    /// A `wg` command with a clean environment, run in the project root.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(wg_bin());
        cmd.args(args)
            .current_dir(&self.root)
            .env_clear()
            .env("HOME", &self.home)
            .env(
                "PATH",
                format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin.display()),
            )
            .env("WG_LOG", "warn")
            .stdin(Stdio::null());
        for (k, v) in &self.extra_env {
            cmd.env(k, v);
        }
        cmd
    }

    #[must_use]
    pub fn wg(&self, args: &[&str]) -> Run {
        to_run(self.command(args).output().expect("run wg"))
    }

    /// Imports task records as JSON lines (`wg import -`), e.g. for per-task mock settings.
    pub fn import(&self, records: &[serde_json::Value]) {
        let lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
        self.wg_stdin(&["import", "-"], &(lines.join("\n") + "\n"))
            .ok();
    }

    /// `wg list --json`, by task id.
    pub fn tasks(&self) -> std::collections::BTreeMap<String, serde_json::Value> {
        let list = self.wg(&["list", "--json"]).ok().json();
        list.as_array()
            .expect("wg list --json is an array")
            .iter()
            .map(|t| (t["id"].as_str().expect("id").to_string(), t.clone()))
            .collect()
    }

    /// The running agents `.wg/service/agents.json` lists (none when it is absent).
    pub fn agents(&self) -> Vec<serde_json::Value> {
        std::fs::read(self.wg_dir().join("service/agents.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map(|v| v["agents"].as_array().cloned().unwrap_or_default())
            .unwrap_or_default()
    }

    /// `.wg/service/coordinator.log` (empty when absent).
    pub fn coordinator_log(&self) -> String {
        std::fs::read_to_string(self.wg_dir().join("service/coordinator.log")).unwrap_or_default()
    }

    #[must_use]
    pub fn wg_stdin(&self, args: &[&str], input: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn wg");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        to_run(child.wait_with_output().unwrap())
    }

    /// Every file under `.wg/` with its bytes, for "nothing changed" checks.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        walk(&self.wg_dir(), &mut out);
        out.sort();
        out
    }
}

fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
}

pub fn to_run(o: Output) -> Run {
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// Set to `1` to skip, on purpose, the tests that need a pinned real CLI that is not installed.
/// Without it such a test fails and names the command that installs the CLI.
pub const SKIP_VAR: &str = "WG_TEST_SKIP_MISSING_CLIS";

/// Tests skipped so far in this test binary, and why; reported once at exit.
static SKIPPED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Writes straight to the process's stderr: the test harness captures only the print macros,
/// and a skip must be visible even though a skipped test counts as passed.
fn say_uncaptured(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().write_all(line.as_bytes());
}

extern "C" fn report_skips() {
    let skipped = SKIPPED.lock().map(|s| s.clone()).unwrap_or_default();
    if skipped.is_empty() {
        return;
    }
    let mut why: Vec<&str> = skipped.iter().map(String::as_str).collect();
    why.sort_unstable();
    why.dedup();
    say_uncaptured(&format!(
        "\nSKIPPED {} test(s) that did not run: {} ({SKIP_VAR}=1 was set); run ./scripts/test.sh to run them\n",
        skipped.len(),
        why.join("; "),
    ));
}

/// Records that the current test does not run, says so at once, and arranges for one summary
/// line when the test binary exits.
fn note_skip(reason: String) {
    static AT_EXIT: std::sync::Once = std::sync::Once::new();
    AT_EXIT.call_once(|| {
        // SAFETY: registers a plain function with no captured state; it runs once at exit.
        unsafe { libc::atexit(report_skips) };
    });
    let test = std::thread::current().name().unwrap_or("?").to_string();
    say_uncaptured(&format!("SKIPPED {test}: {reason}\n"));
    SKIPPED.lock().unwrap().push(reason);
}

/// A pinned real CLI: `$env_var` (set by its install script) when set, else its default
/// install path under `.tools/`. A set variable is taken at its word: naming no file, it means
/// the CLI is missing (no quiet fall-back to another copy). A missing binary fails the test
/// with the command that installs it, unless the person running the tests set
/// `WG_TEST_SKIP_MISSING_CLIS=1` on purpose (never honoured under `CI=true`): then the test is
/// counted as skipped and returns `None`.
fn pinned_binary(name: &str, env_var: &str, default_rel: &str, script: &str) -> Option<PathBuf> {
    let path = match std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        Some(v) => PathBuf::from(v),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join(default_rel),
    };
    if path.is_file() {
        return Some(path);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let skip = std::env::var(SKIP_VAR).is_ok_and(|v| v == "1");
    if skip && !ci {
        note_skip(format!("the real {name} CLI is not installed"));
        return None;
    }
    panic!(
        "this test needs the real {name} CLI, which is not installed (no file at {}).\n\
         Install it and run every test with: ./scripts/test.sh\n\
         (or run {script} and export {env_var}=<the path it prints>).\n\
         To skip the tests that need it on purpose, set {SKIP_VAR}=1{}.",
        path.display(),
        if ci {
            " (not honoured under CI=true)"
        } else {
            ""
        }
    );
}

/// The pinned real codex binary (scripts/install-codex.sh sets WG_TEST_CODEX).
pub fn real_codex() -> Option<PathBuf> {
    pinned_binary(
        "codex",
        "WG_TEST_CODEX",
        ".tools/codex-0.169.0/node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex",
        "scripts/install-codex.sh",
    )
}

/// A running Slurm cluster (scripts/slurm-up.sh starts a single-node one): `squeue` answers.
/// Missing, the test fails with the command that starts it, or is skipped under
/// `WG_TEST_SKIP_MISSING_CLIS=1` (never under `CI=true`).
pub fn real_slurm() -> bool {
    let answers = Command::new("squeue")
        .args(["--noheader", "--me", "--format=%i"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if answers {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    if std::env::var(SKIP_VAR).is_ok_and(|v| v == "1") && !ci {
        note_skip("no Slurm cluster answers".into());
        return false;
    }
    panic!(
        "this test needs a running Slurm cluster and `squeue` does not answer.\n\
         Start a single-node one (as root) with: ./scripts/slurm-up.sh, or run every test with ./scripts/test.sh.\n\
         To skip the tests that need it on purpose, set {SKIP_VAR}=1{}.",
        if ci { " (not honoured under CI=true)" } else { "" }
    );
}

/// The pinned real Claude Code binary (scripts/install-claude.sh sets WG_TEST_CLAUDE).
pub fn real_claude() -> Option<PathBuf> {
    pinned_binary(
        "Claude Code",
        "WG_TEST_CLAUDE",
        ".tools/claude-2.1.330/node_modules/@anthropic-ai/claude-code-linux-x64/claude",
        "scripts/install-claude.sh",
    )
}

/// A system tool the tests drive (tmux, man, bash): its path on PATH. A missing one fails the
/// test with the command that installs it.
pub fn system_tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is required by this test and was not found on PATH; run scripts/install-tools.sh (as root)")
        })
}
