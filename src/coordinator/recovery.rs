//! After a crash: the agents `.wg/service/agents.json` names are adopted when alive (pid and
//! start time match); the tasks of dead ones are requeued as a retry.

use std::time::{Duration, Instant, SystemTime};

use super::agents_file::{self, still_alive, AgentRecord};
use super::supervisor::Ended;
use super::{cli_err, Coordinator, ACTOR, AGENT_PREFIX};
use crate::conversation;
use crate::lifecycle::{transition, Change};
use crate::model::{Task, TaskStatus};
use crate::process::{group_alive, pid_alive, pid_start_time, terminate_blocking, StopHow};
use crate::store::tasklog;
use crate::store::Layout;
use crate::time::parse_rfc3339;

/// Whether `t` is in progress only because a message woke it from `waiting` (its last status
/// change, made by someone other than the coordinator) and a message is still unanswered.
pub fn woken_by_message(layout: &Layout, t: &Task) -> bool {
    if t.status != TaskStatus::InProgress {
        return false;
    }
    let Ok(log) = tasklog::read(&layout.task_log(&t.id)) else {
        return false;
    };
    let woken = log
        .iter()
        .rev()
        .find(|r| r.event == "status")
        .is_some_and(|r| {
            r.from.as_deref() == Some(TaskStatus::Waiting.as_str())
                && r.to.as_deref() == Some(TaskStatus::InProgress.as_str())
                && r.actor != ACTOR
        });
    woken
        && conversation::unanswered(layout, &t.id)
            .map(|m| !m.is_empty())
            .unwrap_or(false)
}

/// Looks for a live process whose environment says it is agent `agent_id` (for a claim whose
/// agents.json entry a crash prevented). Reads /proc/PID/environ of our own processes only.
pub fn find_agent_process(agent_id: &str) -> Option<i32> {
    let needle = format!("{}={agent_id}", crate::env::WG_AGENT_ID);
    let rd = std::fs::read_dir("/proc").ok()?;
    for entry in rd.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) && pid_alive(pid) {
            // Only the group leader counts: a grandchild inherits the variable too.
            // SAFETY: getpgid only reads process state.
            let pgid = unsafe { libc::getpgid(pid) };
            if pgid == pid {
                return Some(pid);
            }
        }
    }
    None
}

impl Coordinator {
    /// After a crash: adopt live agents from agents.json, requeue the tasks of dead ones.
    pub(super) fn recover(&mut self) -> anyhow::Result<()> {
        let path = self.layout.agents_file();
        let records = agents_file::read(&path)?;
        let graph = self.store.load()?;
        let mut dead = Vec::new();
        for rec in records {
            if let Some(job) = rec.slurm_job {
                // Slurm knows whether it still runs; the job monitor's first answer decides.
                let task = graph.tasks.get(&rec.task).cloned();
                let limits = task.as_ref().map(|t| self.limits(t)).unwrap_or_default();
                self.log.line(&format!(
                    "adopt agent={} task={} slurm_job={job}",
                    rec.agent_id, rec.task
                ));
                self.last_agent
                    .insert(rec.task.clone(), rec.agent_id.clone());
                let started = recorded_start(&rec);
                self.supervise(None, rec, Some(started), limits)?;
            } else if still_alive(&rec) {
                let task = graph.tasks.get(&rec.task).cloned();
                let limits = task.as_ref().map(|t| self.limits(t)).unwrap_or_default();
                let started = recorded_start(&rec);
                self.log.line(&format!(
                    "adopt agent={} task={} pid={}: still running",
                    rec.agent_id, rec.task, rec.pid
                ));
                self.last_agent
                    .insert(rec.task.clone(), rec.agent_id.clone());
                self.supervise(None, rec, Some(started), limits)?;
            } else {
                self.log.line(&format!(
                    "agent={} task={} pid={} is gone",
                    rec.agent_id, rec.task, rec.pid
                ));
                dead.push(rec);
            }
        }
        self.write_agents()?;
        // Agents that did start (they have a record): their task's claim is not in question.
        let recorded: std::collections::HashSet<String> =
            dead.iter().map(|r| r.agent_id.clone()).collect();
        for rec in dead {
            // Whatever the dead agent left running in its group goes before another starts:
            // the same turn must never run twice. (The group id cannot be reused while any
            // member lives, so a live group is the agent's own.)
            if group_alive(rec.pgid) {
                let killed = terminate_blocking(rec.pgid, StopHow::Graceful(self.grace), || {});
                self.log.line(&format!(
                    "stopped what agent={} left running in group {}{}",
                    rec.agent_id,
                    rec.pgid,
                    if killed { " (SIGKILL)" } else { "" }
                ));
            }
            // A turn that ended while no coordinator ran is judged as if it had been seen:
            // next turn for messages that came meanwhile, else a nudge, else fail by the rules.
            let ended_waiting = graph.tasks.get(&rec.task).is_some_and(|t| {
                t.status == TaskStatus::Waiting && t.assigned.as_deref() == Some(&rec.agent_id)
            });
            if ended_waiting {
                self.log.line(&format!(
                    "recover task={}: its turn ended while no coordinator ran",
                    rec.task
                ));
                let ended = Ended {
                    task: rec.task.clone(),
                    agent_id: rec.agent_id.clone(),
                    exit_code: None,
                    signal: None,
                    stopped: None,
                    killed: false,
                    slurm: None,
                };
                self.last_agent
                    .insert(rec.task.clone(), rec.agent_id.clone());
                self.judge_exit(rec, ended)?;
            }
        }
        // Tasks held by a coordinator agent that is not running: requeue as a retry.
        let orphans: Vec<Task> = graph
            .tasks
            .values()
            .filter(|t| t.status == TaskStatus::InProgress)
            .filter(|t| {
                t.assigned
                    .as_deref()
                    .is_some_and(|a| a.starts_with(AGENT_PREFIX))
            })
            .filter(|t| !self.agents.contains_key(&t.id))
            // A message woke it while its agent's turn was over: the dispatch answers it;
            // that is not a crash and spends no retry.
            .filter(|t| !woken_by_message(&self.layout, t))
            .cloned()
            .collect();
        for t in orphans {
            let agent = t.assigned.clone().unwrap_or_default();
            // A claim whose agents.json entry a crash prevented: find its Slurm job by name
            // and comment, or the process itself.
            if let Some(job) = self.find_orphan_job(&t, &agent) {
                self.adopt_orphan_job(&t, &agent, job)?;
                continue;
            }
            if let Some(pid) = find_agent_process(&agent) {
                let x = self.executor_for(&t).ok();
                let conversational = x.as_ref().is_some_and(|x| x.conversational);
                // What start_agent would have recorded, as of the claim (`t.updated`): the
                // messages and replies there were then.
                let at_claim = |ts: &str| ts <= t.updated.as_str();
                let inbox_seq = conversation::read_inbox(&self.layout, &t.id)
                    .unwrap_or_default()
                    .iter()
                    .filter(|m| at_claim(&m.ts))
                    .map(|m| m.seq)
                    .max()
                    .unwrap_or(0);
                let replies = conversation::read_outbox(&self.layout, &t.id)
                    .unwrap_or_default()
                    .iter()
                    .filter(|r| at_claim(&r.ts))
                    .count() as u32;
                let rec = AgentRecord {
                    task: t.id.clone(),
                    agent_id: agent.clone(),
                    pid,
                    pgid: pid,
                    start_time: pid_start_time(pid).unwrap_or(0),
                    started_at: t.updated.clone(),
                    executor: x.as_ref().map(|x| x.name.clone()).unwrap_or_default(),
                    turn: if conversational {
                        replies + 1
                    } else {
                        t.retries + 1
                    },
                    conversational,
                    exit_code_decides: x.as_ref().is_some_and(|x| x.exit_code_decides),
                    log_offset: 0,
                    inbox_seq,
                    slurm_job: None,
                };
                self.log.line(&format!(
                    "adopt agent={agent} task={} pid={pid}: found by its environment",
                    t.id
                ));
                let limits = self.limits(&t);
                let started = recorded_start(&rec);
                self.supervise(None, rec, Some(started), limits)?;
                continue;
            }
            let max = t.max_retries.unwrap_or(self.config.coordinator.max_retries);
            let store = self.store.clone();
            let mut w = store.writer()?;
            let (to, reason, retry) = if !recorded.contains(&agent)
                && never_started(&self.layout, &t)
            {
                // The coordinator died between the claim and the agent's start: nothing ran,
                // so nothing failed.
                (
                    TaskStatus::Open,
                    format!(
                        "agent {agent} was claimed but never started (the coordinator stopped in between); requeued"
                    ),
                    false,
                )
            } else if t.retries < max {
                (
                    TaskStatus::Open,
                    format!(
                        "agent {agent} died while no coordinator watched it; requeued (retry {}/{max})",
                        t.retries + 1
                    ),
                    true,
                )
            } else {
                (
                    TaskStatus::Failed,
                    format!("agent {agent} died while no coordinator watched it; no retries left"),
                    false,
                )
            };
            let change = Change {
                to,
                reason: Some(&reason),
                actor: ACTOR,
            };
            transition(&mut w, &t.id, change, |t| {
                if retry {
                    t.retries += 1;
                }
            })
            .map_err(cli_err)?;
            w.commit()?;
            self.log.line(&format!("recover task={}: {reason}", t.id));
        }
        self.restart_evaluations()
    }

    /// A task done by its agent waits for the evaluation gate (`awaiting_evaluation`); an
    /// evaluation a stopped or crashed coordinator left unfinished is started again, or its
    /// dependents would wait forever. It runs even if `evaluate.auto` was turned off since:
    /// the task was held on the promise of a verdict.
    fn restart_evaluations(&mut self) -> anyhow::Result<()> {
        let graph = self.store.load()?;
        let pending: Vec<String> = graph
            .tasks
            .values()
            .filter(|t| crate::evaluate::awaiting(t))
            // Held for its checks or the merge queue, not (yet) for the gate.
            .filter(|t| {
                let s = crate::landing::stage(t);
                s.is_none() || s == Some(crate::landing::Stage::Evaluation)
            })
            .filter(|t| !self.agents.contains_key(&t.id) && !self.evaluating.contains(&t.id))
            .map(|t| t.id.clone())
            .collect();
        for id in pending {
            self.log.line(&format!(
                "recover task={id}: its evaluation never finished; evaluating again"
            ));
            self.start_evaluation(id);
        }
        Ok(())
    }
}

/// More than a kernel clock tick (4 ms at 250 Hz, 10 ms at 100 Hz).
const COARSE_CLOCK_SLACK: Duration = Duration::from_millis(50);

/// Whether the agent of the claimed task `t` left no trace: the claim (which set `t.updated`)
/// is the last record of the task's log, and none of the files an agent writes got output since.
/// A coordinator killed between a claim and the agent's start leaves exactly this; an agent
/// that ran and died leaves output.
pub fn never_started(layout: &Layout, t: &Task) -> bool {
    let Some(claimed) = parse_rfc3339(&t.updated) else {
        return false;
    };
    let claim_is_last = tasklog::read(&layout.task_log(&t.id))
        .ok()
        .and_then(|log| log.last().cloned())
        .is_some_and(|r| {
            r.event == "status"
                && r.to.as_deref() == Some(TaskStatus::InProgress.as_str())
                && r.actor == ACTOR
                && r.ts == t.updated
        });
    claim_is_last
        && ["agent.log", "handler.log", "outbox.jsonl"]
            .iter()
            .all(|name| {
                let path = layout.task_file(&t.id, name);
                // The coordinator itself creates an empty agent.log just before the fork.
                // A file's mtime comes from the kernel's coarse clock, which lags the claim's
                // fine time stamp by up to a clock tick: output that close to the claim counts
                // as the agent's (a retry may be spent; nothing runs twice).
                match std::fs::metadata(&path) {
                    Ok(m) => {
                        m.len() == 0
                            || m.modified()
                                .is_ok_and(|mtime| mtime + COARSE_CLOCK_SLACK < claimed)
                    }
                    Err(e) => e.kind() == std::io::ErrorKind::NotFound,
                }
            })
}

/// When a recorded run started, on this coordinator's clock.
fn recorded_start(rec: &AgentRecord) -> Instant {
    let age = parse_rfc3339(&rec.started_at)
        .and_then(|s| SystemTime::now().duration_since(s).ok())
        .unwrap_or_default();
    Instant::now().checked_sub(age).unwrap_or_else(Instant::now)
}
