//! wg against a real model server nobody here wrote: llama.cpp's `llama-server` with
//! SmolLM2-135M-Instruct on the CPU (scripts/install-llama.sh), the real codex on both wires.
//! Slow on two cores (a cold codex turn prefills about 5,000 tokens at about 60 tokens/s), so
//! the checks that need a full window share one server and run one after another in one test;
//! a second, small server shows the context overflow. Both run beside the rest of the suite.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::project::{codex_env, outbox, read};
use crate::common::stub::KEY;
use crate::common::wait::poll_until;
use crate::common::{real_llama, TestEnv};

/// The model's name on the server (`--alias`) and in wg's config.
const MODEL: &str = "smollm2";

/// One llama-server on loopback, stopped and reaped when dropped.
struct Llama {
    child: Child,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Llama {
    /// Starts a server with a window of `ctx` tokens and waits until it answers `/health`.
    /// The key comes from a file (never argv); one slot; sampling fixed (seed, temperature 0).
    fn start(server: &Path, model: &Path, ctx: u32) -> Llama {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("key");
        std::fs::write(&key_file, KEY).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.path().join("server.log");
        let ctx = ctx.to_string();
        let port_s = port.to_string();
        #[rustfmt::skip]
        let args = [
            "-m", model.to_str().unwrap(), "--alias", MODEL,
            "--host", "127.0.0.1", "--port", &port_s,
            "--api-key-file", key_file.to_str().unwrap(),
            "--jinja", "-c", &ctx, "-np", "1",
            // One generation thread: two on a shared 2-core box wait on each other.
            "-t", "1", "-tb", "2",
            // The 135M model rambles until the window is full without a cap; it runs to the
            // cap on most turns, and at 4-10 tokens/s each token is time.
            "-n", "128",
            "--seed", "42", "--temp", "0",
            "--metrics", "--log-file", log.to_str().unwrap(),
        ];
        let child = Command::new(server)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start llama-server");
        let me = Llama {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let up = poll_until(Duration::from_secs(120), || {
            ureq::get(&format!("{}/health", me.base))
                .call()
                .is_ok_and(|r| r.status() == 200)
        });
        assert!(up, "llama-server did not come up:\n{}", me.log_text());
        me
    }

    fn url(&self) -> String {
        format!("{}/v1", self.base)
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `llamacpp:prompt_tokens_total` of `/metrics`: prompt tokens the server computed, the
    /// ones it took from its cache left out.
    fn prompt_tokens_computed(&self) -> u64 {
        let body = ureq::get(&format!("{}/metrics", self.base))
            .header("Authorization", &format!("Bearer {KEY}"))
            .call()
            .expect("GET /metrics")
            .body_mut()
            .read_to_string()
            .unwrap();
        body.lines()
            .find(|l| l.starts_with("llamacpp:prompt_tokens_total"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no prompt_tokens_total in /metrics:\n{body}")) as u64
    }
}

impl Drop for Llama {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A codex project on `server`'s wire `wire`, with timeouts for a slow CPU server.
fn project(server: &Llama, wire: &str) -> TestEnv {
    let env = codex_env(&server.url()).expect("the real codex");
    env.set_config(&[
        ("model", MODEL),
        ("endpoint.wire_api", wire),
        ("endpoint.model_context_window", "8192"),
        ("handler.first_output_timeout", "120s"),
        ("handler.idle_timeout", "400s"),
        ("handler.stream_idle_timeout", "400s"),
        ("handler.turn_timeout", "600s"),
    ]);
    env
}

/// The server's counts of one turn's answers, from its `proxy.answer` lines in handler.log:
/// (input, cached, output) summed over the turn's requests.
fn answers_of_turn(env: &TestEnv, id: &str, turn: u64) -> (u64, u64, u64) {
    let log = read(env, id, "handler.log");
    let tag = format!(" turn={turn} proxy.answer ");
    let field = |l: &str, k: &str| -> u64 {
        l.split(&format!(" {k}="))
            .nth(1)
            .and_then(|v| v.split(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {l}"))
    };
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&tag)).collect();
    assert!(!lines.is_empty(), "no proxy.answer for turn {turn}:\n{log}");
    lines.iter().fold((0, 0, 0), |(i, c, o), l| {
        (
            i + field(l, "input_tokens"),
            c + field(l, "cached_tokens"),
            o + field(l, "output_tokens"),
        )
    })
}

/// A conversation of `turns` turns on `wire`; returns each turn's cached share as the server
/// reported it. Checks every turn against the server's `/metrics` and wg's outbox record.
/// Every turn has a record: a reply, or `output-limit` when the answer ran to the server's cap.
fn conversation(server: &Llama, wire: &str, turns: u64) -> Vec<f64> {
    let env = project(server, wire);
    env.wg(&[
        "add",
        "Chat",
        "--id",
        "chat",
        "-d",
        "Answer each message in one short sentence. Do not run commands.",
    ])
    .ok();
    let mut shares = Vec::new();
    for turn in 1..=turns {
        if turn > 1 {
            env.wg(&["msg", "chat", &format!("Message {turn}: name a colour.")])
                .ok();
        }
        let computed_before = server.prompt_tokens_computed();
        let started = Instant::now();
        let run = env.wg(&["handler", "chat"]);
        eprintln!(
            "llama {wire} turn {turn}: {:.0} s, exit {}",
            started.elapsed().as_secs_f64(),
            run.code
        );
        let rec = outbox(&env, "chat").pop().unwrap();
        // A reply, or an answer the 135M model let run to the server's cap: both are turns.
        assert!(
            rec["role"] == "assistant" || rec["error_kind"] == "output-limit",
            "turn {turn} on {wire}: {run}\n{}",
            read(&env, "chat", "handler.log")
        );
        let (input, cached, output) = answers_of_turn(&env, "chat", turn);
        let computed = server.prompt_tokens_computed() - computed_before;
        // The server's own books: what it computed is what it did not take from its cache.
        assert_eq!(
            computed,
            input - cached,
            "turn {turn} on {wire}: /metrics and the answers' usage disagree"
        );
        // wg's figures are the server's.
        assert_eq!(rec["usage"]["input_tokens"], input, "{rec}");
        assert_eq!(rec["usage"]["cached_input_tokens"], cached, "{rec}");
        assert_eq!(rec["usage"]["output_tokens"], output, "{rec}");
        let share = cached as f64 / input as f64;
        eprintln!("llama {wire} turn {turn}: {cached} of {input} prompt tokens cached ({share:.3}), {output} out");
        shares.push(share);
    }
    // On Responses llama-server calls an answer stopped at `-n` completed, so turns end with
    // a reply. On chat it says `length`, and SmolLM2-135M ran every measured turn to the cap:
    // there each turn must be a whole answer carried through the bridge and cut by the server.
    let records = outbox(&env, "chat");
    if wire == "responses" {
        assert!(
            records.iter().any(|r| r["role"] == "assistant"),
            "no turn on {wire} completed with a reply"
        );
    }
    let log = read(&env, "chat", "handler.log");
    for r in records.iter().filter(|r| r["role"] == "error") {
        let turn = r["turn"].as_u64().unwrap();
        let tag = format!(" turn={turn} proxy.answer end=incomplete:max_output_tokens ");
        assert!(log.contains(&tag), "turn {turn} on {wire}: {r}\n{log}");
    }
    for (i, s) in shares.iter().enumerate().skip(1) {
        assert!(
            *s >= 0.9,
            "turn {} on {wire}: the server served only {s:.3} of the prompt from its cache ({shares:?})",
            i + 1
        );
    }
    shares
}

/// One turn asking for a long answer with `endpoint.max_output_tokens` = 8: cut on either wire.
fn cut_off(server: &Llama, wire: &str) {
    let env = project(server, wire);
    env.set_config(&[("endpoint.max_output_tokens", "8")]);
    env.wg(&[
        "add",
        "Count",
        "--id",
        "count",
        "-d",
        "Count from 1 to 100, separated by commas. Do not run commands.",
    ])
    .ok();
    let run = env.wg(&["handler", "count"]).code(1);
    let rec = outbox(&env, "count").pop().unwrap();
    assert_eq!(rec["error_kind"], "output-limit", "{wire}: {run}");
    assert!(rec["text"].as_str().unwrap().contains("-n"), "{rec}");
    assert_eq!(rec["usage"]["output_tokens"], 8, "{rec}");
    assert_eq!(outbox(&env, "count").len(), 1, "not retried");
}

/// `wg doctor` on the warm server. Its probes share the one slot and each has a fixed bound
/// (7.5 s per API, 15 s for the tool call); on a loaded 2-core machine one may queue past it,
/// so a run whose only failures are such timeouts is tried again, up to three runs.
fn doctor_passes(server: &Llama) {
    let env = project(server, "responses");
    let mut runs = Vec::new();
    for _ in 0..3 {
        let doctor = env.wg(&["doctor"]);
        if doctor.code == 0 {
            assert!(doctor.stdout.contains("ok   window"), "{doctor}");
            assert!(
                doctor.stdout.contains("wire_api = \"responses\" fits"),
                "{doctor}"
            );
            return;
        }
        let failed: Vec<&str> = doctor
            .stdout
            .lines()
            .filter(|l| l.starts_with("FAIL"))
            .collect();
        assert!(
            failed.iter().all(|l| l.contains("no answer from")),
            "doctor failed for a reason other than a slow answer: {doctor}"
        );
        runs.push(doctor.to_string());
    }
    panic!("wg doctor timed out three times:\n{}", runs.join("\n"));
}

#[test]
fn a_real_llama_server_on_both_wires() {
    let Some((bin, model)) = real_llama() else {
        return;
    };
    let server = Llama::start(&bin, &model, 8192);
    let responses = conversation(&server, "responses", 4);
    doctor_passes(&server);
    cut_off(&server, "responses");
    let chat = conversation(&server, "chat", 3);
    cut_off(&server, "chat");
    eprintln!("llama cached share per turn: responses {responses:?}, chat {chat:?}");
}

#[test]
fn a_real_llama_server_smaller_than_codexs_prompt() {
    let Some((bin, model)) = real_llama() else {
        return;
    };
    let server = Llama::start(&bin, &model, 4096);
    let env = project(&server, "responses");
    let doctor = env.wg(&["doctor"]);
    assert_ne!(doctor.code, 0, "{doctor}");
    assert!(
        doctor
            .stdout
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("window of 4096 tokens")),
        "{doctor}"
    );
    env.wg(&["add", "Small", "--id", "small"]).ok();
    let started = Instant::now();
    let run = env.wg(&["handler", "small"]).code(1);
    let rec = outbox(&env, "small").pop().unwrap();
    assert_eq!(rec["error_kind"], "context-overflow", "{run}");
    let text = rec["text"].as_str().unwrap();
    assert!(
        text.contains("exceeds the available context size") && text.contains("-c 8192"),
        "{text}"
    );
    let log = read(&env, "small", "handler.log");
    assert!(
        !log.contains("context_overflow.retry"),
        "no retry loop:\n{log}"
    );
    assert_eq!(log.matches(" spawn ").count(), 1, "one codex run:\n{log}");
    eprintln!(
        "llama small window: context-overflow in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
