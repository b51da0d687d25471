//! Agents as Slurm jobs, against a real single-node Slurm (scripts/slurm-up.sh starts it):
//! a graph of shell and mock tasks, a codex task against the stub endpoint, a coordinator
//! killed with jobs running and pending, jobs cancelled by hand and by the hard timeout.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use wiremock::{Request, Respond, ResponseTemplate};

use crate::common::project::{assert_no_key, codex_env, outbox};
use crate::common::service::Coordinator;
use crate::common::stub::{message, responses_stub, sse_response, v1, KEY};
use crate::common::{real_slurm, TestEnv};

/// Cancels, on drop, every job this test's project submitted (found by its working
/// directory), so a failing test leaves nothing queued on the shared cluster.
struct Jobs {
    root: String,
}

impl Jobs {
    fn of(env: &TestEnv) -> Jobs {
        Jobs {
            root: env.tmp.path().display().to_string(),
        }
    }

    /// `(id, name, state)` of this project's jobs that Slurm lists, ended ones included.
    fn list(&self) -> Vec<(u64, String, String)> {
        let out = Command::new("squeue")
            .args([
                "--noheader",
                "--states=all",
                "--Format=JobID:|,Name:|,State:|,WorkDir:|",
            ])
            .output()
            .expect("squeue");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split('|').map(str::trim).collect();
                (f.len() >= 4 && f[3].starts_with(&self.root))
                    .then(|| (f[0].parse().unwrap(), f[1].to_string(), f[2].to_string()))
            })
            .collect()
    }

    /// Jobs pending or running now.
    fn active(&self) -> Vec<(u64, String, String)> {
        self.list()
            .into_iter()
            .filter(|(_, _, s)| matches!(s.as_str(), "PENDING" | "RUNNING" | "CONFIGURING"))
            .collect()
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        for (id, _, _) in self.active() {
            let _ = Command::new("scancel").arg(id.to_string()).status();
        }
    }
}

fn slurm_project(config: &str) -> Option<TestEnv> {
    if !real_slurm() {
        return None;
    }
    let env = TestEnv::new();
    let path = env.wg_dir().join("config.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("\n[slurm]\npoll_interval = \"500ms\"\n");
    text.push_str(config);
    std::fs::write(&path, text).unwrap();
    env.wg(&["config", "set", "coordinator.launcher", "slurm"])
        .ok();
    Some(env)
}

fn read(env: &TestEnv, id: &str, file: &str) -> String {
    std::fs::read_to_string(env.wg_dir().join("tasks").join(id).join(file)).unwrap_or_default()
}

fn markers(env: &TestEnv, id: &str) -> Vec<Value> {
    let dir = env.wg_dir().join("tasks").join(id).join("mock-runs");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect()
}

fn task_log(env: &TestEnv, id: &str) -> Vec<Value> {
    read(env, id, "log.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Times (ms) of a task's status changes to `to`.
fn status_times(env: &TestEnv, id: &str, to: &str) -> Vec<u128> {
    task_log(env, id)
        .iter()
        .filter(|r| r["event"] == "status" && r["to"] == to)
        .map(|r| {
            humantime::parse_rfc3339(r["ts"].as_str().unwrap())
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis()
        })
        .collect()
}

/// A `squeue` first on the coordinator's PATH that logs each call (time and arguments) and
/// runs the real one: the test counts the coordinator's calls.
fn count_squeue_calls(env: &TestEnv) -> std::path::PathBuf {
    let real = which("squeue");
    let log = env.tmp.path().join("squeue-calls.log");
    let script = format!(
        "#!/bin/sh\necho \"$(date +%s.%N) $*\" >> '{}'\nexec '{}' \"$@\"\n",
        log.display(),
        real
    );
    let wrapper = env.bin.join("squeue");
    std::fs::write(&wrapper, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    log
}

fn which(name: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_graph_of_ten_tasks_runs_as_jobs_in_order_within_max_agents() {
    let Some(env) = slurm_project("[executors.mock]\nturn_ms = 1500\n") else {
        return;
    };
    let jobs = Jobs::of(&env);
    let calls = count_squeue_calls(&env);
    // Two layers of five (mock and shell alternating); each task of layer 1 waits for two of
    // layer 0.
    let mut records = Vec::new();
    let mut edges = Vec::new();
    for layer in 0..2 {
        for i in 0..5 {
            let id = format!("g{layer}-{i}");
            let after: Vec<String> = if layer == 0 {
                vec![]
            } else {
                vec![format!("g0-{i}"), format!("g0-{}", (i + 1) % 5)]
            };
            for a in &after {
                edges.push((a.clone(), id.clone()));
            }
            let mut r = json!({"id": id, "title": id, "after": after});
            if i % 2 == 1 {
                r["executor"] = "shell".into();
                r["command"] = json!(["sh", "-c", "echo slurm_job=$SLURM_JOB_ID; sleep 1"]);
            }
            records.push(r);
        }
    }
    env.import(&records);
    let mut coord = Coordinator::start(&env, &["--until-done", "--max-agents", "3"]);
    // Sample squeue itself while the graph runs: never more than 3 of our jobs in flight.
    let mut peak = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !coord.finished() && Instant::now() < deadline {
        let active = jobs.active().len();
        assert!(active <= 3, "{active} jobs in flight with max_agents = 3");
        peak = peak.max(active);
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = coord.wait(Duration::from_secs(5));
    assert_eq!(out.code, 0, "{out}\n{}", env.coordinator_log());
    assert!(peak >= 2, "jobs never overlapped (peak {peak})");
    let all = env.tasks();
    assert_eq!(all.len(), 10);
    let mut job_ids = BTreeSet::new();
    for (id, t) in &all {
        assert_eq!(t["status"], "done", "{id}: {t}");
        // Each ran as a job: its SLURM_JOB_ID is in its log (shell) or run marker (mock).
        let job = if t["executor"] == "shell" {
            let log = read(&env, id, "agent.log");
            log.lines()
                .find_map(|l| l.strip_prefix("slurm_job="))
                .unwrap_or_else(|| panic!("{id}: no job id in agent.log: {log}"))
                .to_string()
        } else {
            let m = markers(&env, id);
            assert_eq!(m.len(), 1, "{id} ran {} times", m.len());
            m[0]["slurm_job"].as_str().expect("job id").to_string()
        };
        assert!(job.parse::<u64>().is_ok(), "{id}: job id {job}");
        assert!(job_ids.insert(job), "{id} shares a job");
    }
    for (dep, task) in &edges {
        let done = status_times(&env, dep, "done")[0];
        let started = status_times(&env, task, "in-progress")[0];
        assert!(started >= done, "{task} started before {dep} was done");
    }
    // One squeue call per tick for all jobs: the monitor's calls name every watched job at
    // once and are spaced by the poll interval (500 ms), never one call per job.
    let log = std::fs::read_to_string(&calls).unwrap_or_default();
    let monitor: Vec<(f64, usize)> = log
        .lines()
        .filter_map(|l| {
            let (t, args) = l.split_once(' ')?;
            let list = args.split(' ').find_map(|a| a.strip_prefix("--jobs="))?;
            Some((t.parse().ok()?, list.split(',').count()))
        })
        .collect();
    assert!(!monitor.is_empty(), "the coordinator never ran squeue");
    assert!(
        monitor.iter().any(|(_, n)| *n >= 2),
        "no call asked about several jobs at once: {log}"
    );
    for w in monitor.windows(2) {
        assert!(
            w[1].0 - w[0].0 >= 0.3,
            "two squeue calls within one tick ({:.3}s apart):\n{log}",
            w[1].0 - w[0].0
        );
    }
}

/// Asks codex to run `wg done`, then answers the follow-up with a message.
struct Finisher;
impl Respond for Finisher {
    fn respond(&self, r: &Request) -> ResponseTemplate {
        if String::from_utf8_lossy(&r.body).contains("function_call_output") {
            return sse_response(&[message("reported done from the cluster")]);
        }
        let args = json!({"cmd": "wg done \"$WG_TASK_ID\""}).to_string();
        sse_response(&[
            json!({"type": "function_call", "status": "completed", "id": "fc_1",
            "name": "exec_command", "arguments": args, "call_id": "call_1"}),
        ])
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_codex_task_runs_as_a_job_and_the_key_stays_out_of_slurm() {
    let server = responses_stub(Finisher).await;
    if !real_slurm() {
        return;
    }
    let Some(env) = codex_env(&v1(&server)) else {
        return;
    };
    let jobs = Jobs::of(&env);
    env.wg(&["config", "set", "slurm.poll_interval", "500ms"])
        .ok();
    env.wg(&["add", "Write it", "--id", "cx", "--launcher", "slurm"])
        .ok();
    let mut coord = Coordinator::start(&env, &["--until-done"]);
    // While the job exists: what Slurm recorded, and every process's argv.
    let mut seen_job = None;
    let mut records = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !coord.finished() && Instant::now() < deadline {
        if let Some(id) = env.agents().first().and_then(|a| a["slurm_job"].as_u64()) {
            if seen_job.is_none() {
                seen_job = Some(id);
                for args in [
                    vec![
                        "-dd".to_string(),
                        "show".into(),
                        "job".into(),
                        id.to_string(),
                    ],
                    vec![
                        "write".into(),
                        "batch_script".into(),
                        id.to_string(),
                        "-".into(),
                    ],
                ] {
                    let out = Command::new("scontrol").args(&args).output().unwrap();
                    records.push_str(&String::from_utf8_lossy(&out.stdout));
                }
            }
        }
        assert_no_key_in_argv();
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = coord.wait(Duration::from_secs(5));
    let job = seen_job.expect("the task never ran as a Slurm job");
    assert!(records.contains(&format!("JobId={job}")), "{records}");
    assert!(records.contains("exec"), "the batch script: {records}");
    assert!(
        !records.contains(KEY),
        "the key is in Slurm's record:\n{records}"
    );
    let t = env.wg(&["show", "cx", "--json"]).ok().json();
    assert_eq!(t["status"], "done", "{t}\n{out}\n{}", env.coordinator_log());
    let replies = outbox(&env, "cx");
    assert_eq!(replies[0]["text"], "reported done from the cluster");
    assert!(env.coordinator_log().contains(&format!("slurm_job={job}")));
    assert_no_key(&env, &[&out.stdout, &out.stderr, &env.coordinator_log()]);
    drop(jobs);
}

/// No process on this machine has the key on its command line.
fn assert_no_key_in_argv() {
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) {
            assert!(
                !String::from_utf8_lossy(&cmdline).contains(KEY),
                "the key is on the argv of {}",
                e.path().display()
            );
        }
    }
}

#[test]
fn kill_9_with_jobs_running_and_pending_then_restart_runs_each_task_once() {
    let Some(env) = slurm_project("[executors.mock]\nturn_ms = 4000\n") else {
        return;
    };
    let jobs = Jobs::of(&env);
    // Half the tasks ask Slurm to hold their job back a while: pending at the kill.
    let records: Vec<Value> = (0..8)
        .map(|i| {
            let mut r = json!({"id": format!("k{i}"), "title": format!("k{i}")});
            if i % 2 == 0 {
                r["slurm_args"] = json!(["--begin=now+8"]);
            }
            r
        })
        .collect();
    env.import(&records);
    let mut first = Coordinator::start(&env, &["--max-agents", "6"]);
    wait_until!(
        Duration::from_secs(30),
        || {
            let states: Vec<String> = jobs.active().into_iter().map(|j| j.2).collect();
            states.len() == 6
                && states.iter().any(|s| s == "RUNNING")
                && states.iter().any(|s| s == "PENDING")
        },
        "6 jobs, running and pending, never showed: {:?}\n{}",
        jobs.list(),
        env.coordinator_log()
    );
    first.kill9();
    let adopted: BTreeSet<String> = env
        .agents()
        .iter()
        .map(|a| a["task"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(adopted.len(), 6);
    let out = Coordinator::start(&env, &["--until-done", "--max-agents", "6"])
        .wait(Duration::from_secs(120));
    assert_eq!(out.code, 0, "{out}\n{}", env.coordinator_log());
    for (id, t) in env.tasks() {
        assert_eq!(t["status"], "done", "{id}: {t}");
        let m = markers(&env, &id);
        assert_eq!(m.len(), 1, "{id} ran {} times", m.len());
        assert_eq!(t["retries"].as_u64().unwrap_or(0), 0, "{id} was retried");
    }
    let log = env.coordinator_log();
    assert_eq!(log.matches("adopt agent=").count(), 6, "{log}");
    // 8 tasks, 8 jobs: nothing was submitted twice.
    assert_eq!(jobs.list().len(), 8, "{:?}", jobs.list());
}

#[test]
fn a_job_cancelled_by_hand_is_retried_with_the_state_named_and_the_hard_timeout_cancels() {
    let Some(env) = slurm_project("") else {
        return;
    };
    let jobs = Jobs::of(&env);
    env.wg(&["config", "set", "coordinator.retry_backoff", "200ms"])
        .ok();
    // The first run waits to be cancelled; the retry finds its mark and succeeds.
    let mark = env.tmp.path().join("first-run");
    let script = format!(
        "if [ -e '{m}' ]; then echo second run; exit 0; fi; touch '{m}'; echo first run; sleep 120",
        m = mark.display()
    );
    env.wg(&[
        "add",
        "cancel me",
        "--id",
        "byhand",
        "-x",
        "shell",
        "--max-retries",
        "1",
        "--command",
        "sh",
        "--command",
        "-c",
        "--command",
        &script,
    ])
    .ok();
    env.wg(&[
        "add",
        "too slow",
        "--id",
        "slow",
        "-x",
        "shell",
        "--max-retries",
        "0",
        "--timeout",
        "3s",
        "--command",
        "sleep",
        "--command",
        "300",
    ])
    .ok();
    let coord = Coordinator::start(&env, &["--until-done"]);
    // Each task's first job, from the coordinator's start lines.
    let job_of = |task: &str| {
        env.coordinator_log().lines().find_map(|l| {
            l.split_once(&format!("start task={task} "))?
                .1
                .split(' ')
                .find_map(|w| w.strip_prefix("slurm_job="))?
                .parse::<u64>()
                .ok()
        })
    };
    wait_until!(
        Duration::from_secs(30),
        || mark.exists(),
        "the first run never started: {}",
        env.coordinator_log()
    );
    let first = job_of("byhand").expect("job id in coordinator.log");
    let slow = job_of("slow").expect("job id in coordinator.log");
    assert!(Command::new("scancel")
        .arg(first.to_string())
        .status()
        .unwrap()
        .success());
    let out = coord.wait(Duration::from_secs(90));
    // `slow` ends failed, so the run says some task failed.
    assert_eq!(out.code, i32::from(wg::exit::TASKS_FAILED), "{out}");
    let all = env.tasks();
    assert_eq!(all["byhand"]["status"], "done", "{}", env.coordinator_log());
    assert_eq!(all["byhand"]["retries"], 1);
    let failed: Vec<String> = task_log(&env, "byhand")
        .iter()
        .filter(|r| r["event"] == "status" && r["to"] == "failed")
        .map(|r| r["reason"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].starts_with(&format!("Slurm job {first} CANCELLED")),
        "the reason names the state: {}",
        failed[0]
    );
    assert!(read(&env, "byhand", "agent.log").contains("second run"));
    // The hard timeout cancelled the slow task's job.
    assert_eq!(all["slow"]["status"], "failed");
    let reason = all["slow"]["failure_reason"].as_str().unwrap_or_default();
    assert!(reason.contains("hard timeout"), "{reason}");
    let state = jobs
        .list()
        .into_iter()
        .find(|j| j.0 == slow)
        .map(|j| j.2)
        .unwrap_or_default();
    assert_eq!(state, "CANCELLED", "{:?}", jobs.list());
    assert!(Path::new(&env.wg_dir()).is_dir());
}

#[test]
fn doctor_checks_that_slurm_answers_and_a_job_sees_the_project() {
    let Some(env) = slurm_project("") else {
        return;
    };
    let jobs = Jobs::of(&env);
    // (Other checks may fail on this machine: codex is not on PATH. Only the Slurm lines count.)
    let out = env.wg(&["doctor"]);
    let line = |out: &crate::common::Run, name: &str| {
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no {name} check:\n{out}"))
            .to_string()
    };
    let slurm = line(&out, "slurm");
    assert!(
        slurm.starts_with("ok ") && slurm.contains("squeue answers"),
        "{out}"
    );
    let fs = line(&out, "slurm-fs");
    let wg_dir = std::path::absolute(env.wg_dir()).unwrap();
    assert!(
        fs.starts_with("ok ")
            && fs.contains("a job on ")
            && fs.ends_with(&format!("read and wrote {}", wg_dir.display())),
        "{out}"
    );
    // The probe job ran on the cluster and is gone.
    assert!(!jobs.list().is_empty(), "no probe job was submitted");
    assert!(jobs.active().is_empty(), "{:?}", jobs.list());

    // A cluster that does not answer: doctor says so and fails.
    let squeue = env.bin.join("squeue");
    std::fs::write(
        &squeue,
        "#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller' >&2\nexit 1\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&squeue).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&squeue, perms).unwrap();
    let out = env.wg(&["doctor"]).code(1);
    let slurm = line(&out, "slurm");
    assert!(
        slurm.starts_with("FAIL ") && slurm.contains("Unable to contact slurm controller"),
        "{out}"
    );
    assert!(!out.stdout.contains("slurm-fs"), "{out}");
}
