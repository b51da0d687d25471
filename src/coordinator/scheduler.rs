//! The coordinator's decisions, as pure functions: which tasks to start, when a failed task is
//! retried, when an endpoint is paused or probed, which timeout fired, and what an agent's exit
//! means for its task. No I/O here, so every rule has a unit test.

use std::time::{Duration, Instant, SystemTime};

use crate::model::TaskStatus;
use crate::outcome::ErrorKind;

/// Longest delay between retries or endpoint probes.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// `base * 2^attempt`, capped at [`MAX_BACKOFF`].
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX);
    base.checked_mul(factor)
        .unwrap_or(MAX_BACKOFF)
        .min(MAX_BACKOFF)
}

/// When a failed task should be opened again, or `None` when its retries are spent.
/// `failed_at` is the task's `updated` time; the first retry waits `base`, then it doubles.
pub fn retry_at(
    failed_at: SystemTime,
    retries: u32,
    max_retries: u32,
    base: Duration,
) -> Option<SystemTime> {
    (retries < max_retries).then(|| failed_at + backoff(base, retries))
}

/// Why an endpoint is paused, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub kind: ErrorKind,
    /// The server's (or the agent's) own words, whole.
    pub message: String,
    pub since: SystemTime,
    /// The next probe is due then.
    pub until: Instant,
    /// Probes that failed during this pause: the wait doubles per probe, not per agent.
    pub probes: u32,
}

/// Dispatch state of one endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub pause: Option<Pause>,
    /// A probe is in flight.
    pub probing: bool,
}

/// Whether tasks for an endpoint may start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Paused until then.
    Paused(Instant),
    /// The pause is over: probe before dispatching again.
    Probe,
    /// A probe is running; wait for it.
    Probing,
}

/// The wait before the probe after `probes` failed ones: `base * 2^probes`, at most `cap`.
pub fn probe_delay(base: Duration, probes: u32, cap: Duration) -> Duration {
    backoff(base, probes).min(cap)
}

impl Endpoint {
    pub fn gate(&self, now: Instant) -> Gate {
        if self.probing {
            return Gate::Probing;
        }
        match &self.pause {
            None => Gate::Open,
            Some(p) if now < p.until => Gate::Paused(p.until),
            Some(_) => Gate::Probe,
        }
    }

    /// An agent hit endpoint-wide trouble. Returns whether a new pause began: a pause that is
    /// already on holds as it is (agents failing in the same outage say nothing new, and
    /// only probes lengthen the wait).
    pub fn pause(
        &mut self,
        now: Instant,
        wall: SystemTime,
        kind: ErrorKind,
        message: String,
        delays: (Duration, Duration),
    ) -> bool {
        if self.pause.is_some() {
            return false;
        }
        self.pause = Some(Pause {
            kind,
            message,
            since: wall,
            until: now + probe_delay(delays.0, 0, delays.1),
            probes: 0,
        });
        true
    }

    /// A probe failed: the pause holds, the next probe waits longer (up to the cap), and the
    /// reason becomes what the probe saw. Returns the wait.
    pub fn probe_failed(
        &mut self,
        now: Instant,
        wall: SystemTime,
        kind: ErrorKind,
        message: String,
        delays: (Duration, Duration),
    ) -> Duration {
        self.probing = false;
        let p = self.pause.get_or_insert(Pause {
            kind,
            message: String::new(),
            since: wall,
            until: now,
            probes: 0,
        });
        p.probes = p.probes.saturating_add(1);
        let wait = probe_delay(delays.0, p.probes, delays.1);
        p.until = now + wait;
        p.kind = kind;
        p.message = message;
        wait
    }

    /// A probe succeeded: the only way a pause ends. Returns the pause that ended.
    pub fn probe_succeeded(&mut self) -> Option<Pause> {
        self.probing = false;
        self.pause.take()
    }

    /// `wg service resume`: probe at once.
    pub fn probe_now(&mut self, now: Instant) {
        if let Some(p) = &mut self.pause {
            p.until = now;
        }
    }
}

/// A task the scheduler may start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub id: String,
    /// The endpoint key it depends on, if its executor talks to one.
    pub endpoint: Option<String>,
}

/// What one dispatch pass should do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pick {
    /// Indices into the candidates, in order.
    pub start: Vec<usize>,
    /// Endpoints to probe before their tasks may start.
    pub probe: Vec<String>,
    /// The earliest pause that ends, to wake up for it.
    pub wake_at: Option<Instant>,
}

/// Chooses which candidates (already in dispatch order) to start with `free` slots, skipping
/// those whose endpoint is paused.
pub fn pick(candidates: &[Candidate], free: usize, gate: impl Fn(&str) -> Gate) -> Pick {
    let mut out = Pick::default();
    for (i, c) in candidates.iter().enumerate() {
        if out.start.len() >= free {
            break;
        }
        match c.endpoint.as_deref().map(&gate).unwrap_or(Gate::Open) {
            Gate::Open => out.start.push(i),
            Gate::Paused(t) => {
                out.wake_at = Some(out.wake_at.map_or(t, |w| w.min(t)));
            }
            Gate::Probe => {
                let e = c.endpoint.clone().expect("a gate came from an endpoint");
                if !out.probe.contains(&e) {
                    out.probe.push(e);
                }
            }
            Gate::Probing => {}
        }
    }
    out
}

/// The limits on one agent run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub hard: Option<Duration>,
    pub idle: Option<Duration>,
    pub first_output: Option<Duration>,
}

impl Limits {
    pub fn any(&self) -> bool {
        self.hard.is_some() || self.idle.is_some() || self.first_output.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    Hard,
    Idle,
    FirstOutput,
}

impl TimeoutKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeoutKind::Hard => "hard",
            TimeoutKind::Idle => "idle",
            TimeoutKind::FirstOutput => "first-output",
        }
    }
}

/// Which timeout has fired, if any. `since_output` is the time since the agent's last output,
/// `None` when it has printed nothing yet.
pub fn timed_out(
    limits: &Limits,
    elapsed: Duration,
    since_output: Option<Duration>,
) -> Option<(TimeoutKind, Duration)> {
    if let Some(h) = limits.hard.filter(|h| elapsed >= *h) {
        return Some((TimeoutKind::Hard, h));
    }
    match since_output {
        None => {
            if let Some(f) = limits.first_output.filter(|f| elapsed >= *f) {
                return Some((TimeoutKind::FirstOutput, f));
            }
            // No output at all is also idleness.
            limits
                .idle
                .filter(|i| elapsed >= *i)
                .map(|i| (TimeoutKind::Idle, i))
        }
        Some(quiet) => limits
            .idle
            .filter(|i| quiet >= *i)
            .map(|i| (TimeoutKind::Idle, i)),
    }
}

/// Why the coordinator stopped an agent itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Timeout(TimeoutKind, Duration),
    /// Its task was abandoned, removed, paused or closed by a person.
    Abandoned,
    /// The coordinator is shutting down.
    Shutdown,
}

/// Why a running agent must be stopped now, from its task's record: the task was removed,
/// abandoned or paused, or a person (anyone but the agent itself) closed it. `last_actor` is
/// who made the task's last status change.
pub fn stop_for(
    task: Option<TaskStatus>,
    last_actor: Option<&str>,
    agent_id: &str,
) -> Option<String> {
    match task {
        None => Some("task removed".into()),
        Some(TaskStatus::Abandoned) => Some("task abandoned".into()),
        Some(TaskStatus::Paused) => Some("task paused".into()),
        Some(s @ (TaskStatus::Done | TaskStatus::Failed)) => match last_actor {
            Some(a) if a == agent_id => None,
            a => Some(format!("task made {s} by {}", a.unwrap_or("someone else"))),
        },
        Some(_) => None,
    }
}

/// What the coordinator knows when an agent has ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitFacts {
    /// The task's status now, and whether this agent still holds it.
    pub status: TaskStatus,
    pub still_ours: bool,
    pub conversational: bool,
    pub exit_code_decides: bool,
    /// `None` when unknown (an adopted agent is not our child) or ended by a signal.
    pub exit_code: Option<i32>,
    /// The signal that ended it, when known.
    pub signal: Option<i32>,
    pub stopped: Option<StopReason>,
    /// What the agent's last turn failed with: the handler's outbox record (conversational),
    /// or, for other executors, what their log says in words.
    pub failure: Option<TurnFailure>,
    /// Unanswered inbox messages exist (conversational).
    pub unanswered: bool,
    /// Reminders already sent since the last real message.
    pub nudges_sent: u32,
    pub max_nudges: u32,
    /// The end of the agent's output, for failure reasons.
    pub output_tail: String,
}

/// A failed turn, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnFailure {
    pub kind: ErrorKind,
    /// The server's or the agent's own words.
    pub message: String,
    /// The handler's error reply (what to do), when there is one.
    pub reply: Option<String>,
}

/// What to do with the task after its agent ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The agent (or a person) already decided the task.
    Nothing,
    Done,
    Fail(String),
    /// Back to `open`; `count_retry` says whether it costs one of the task's retries.
    Requeue {
        count_retry: bool,
        reason: String,
    },
    /// Back to `open` without spending a retry, and pause the endpoint.
    EndpointTrouble {
        kind: ErrorKind,
        /// The server's own words, for the pause.
        message: String,
        /// For the task's history: kind and message.
        reason: String,
    },
    /// Leave it `waiting`: its unanswered messages start the next turn.
    NextTurn,
    /// Send a reminder; its answer is the next turn.
    Nudge,
}

fn code_text(code: Option<i32>, signal: Option<i32>) -> String {
    match (code, signal) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        (None, None) => "exit code unknown".to_string(),
    }
}

fn with_tail(mut reason: String, tail: &str) -> String {
    if !tail.is_empty() {
        reason.push_str(": ");
        reason.push_str(tail);
    }
    reason
}

/// The outcome rules of docs/coordinator.md ("Outcomes", "Endpoint trouble").
pub fn decide_exit(f: &ExitFacts) -> Decision {
    // A person or the agent decided already: closed, paused, or asked a question (a task
    // waiting for a person's answer is never nudged or failed for waiting).
    if !f.still_ours
        || f.status.is_terminal()
        || matches!(
            f.status,
            TaskStatus::Open | TaskStatus::Paused | TaskStatus::NeedsInput
        )
    {
        return Decision::Nothing;
    }
    match f.stopped {
        Some(StopReason::Timeout(kind, limit)) => {
            return Decision::Fail(format!(
                "{} timeout: agent stopped after {}",
                kind.as_str(),
                humantime::format_duration(limit)
            ))
        }
        Some(StopReason::Shutdown) => {
            return Decision::Requeue {
                count_retry: false,
                reason: "coordinator stopped; agent interrupted".into(),
            }
        }
        Some(StopReason::Abandoned) => return Decision::Nothing,
        None => {}
    }
    if let Some(t) = f
        .failure
        .as_ref()
        .filter(|t| t.kind.endpoint_wide() && f.exit_code != Some(0))
    {
        return Decision::EndpointTrouble {
            kind: t.kind,
            message: t.message.clone(),
            reason: format!("endpoint trouble ({}): {}", t.kind, t.message),
        };
    }
    if f.exit_code_decides {
        return match f.exit_code {
            Some(0) => Decision::Done,
            code => Decision::Fail(with_tail(code_text(code, f.signal), &f.output_tail)),
        };
    }
    if f.conversational {
        if f.status == TaskStatus::InProgress && f.exit_code.is_some_and(|c| c != 0) {
            return Decision::Fail(with_tail(
                format!(
                    "agent exited without reporting ({})",
                    code_text(f.exit_code, f.signal)
                ),
                &f.output_tail,
            ));
        }
        // A turn that failed is not the agent ignoring its task: never nudge it.
        if let Some(t) = &f.failure {
            return Decision::Fail(
                t.reply
                    .clone()
                    .unwrap_or_else(|| format!("{}: {}", t.kind, t.message)),
            );
        }
        if f.unanswered {
            return Decision::NextTurn;
        }
        if f.nudges_sent < f.max_nudges {
            return Decision::Nudge;
        }
        return Decision::Fail("agent ended its turn without reporting".into());
    }
    Decision::Fail(with_tail(
        format!(
            "agent exited without reporting ({})",
            code_text(f.exit_code, f.signal)
        ),
        &f.output_tail,
    ))
}

/// How an `--until-done` run ended, from the final task counts. Each has its own exit code
/// (docs/exit-codes.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    /// Every task is done.
    AllDone,
    /// Some task failed (its retries spent) or was abandoned.
    SomeFailed,
    /// An endpoint stayed paused longer than `--max-pause`.
    Paused,
    /// Tasks are left that nothing will move (a question to a person, a pause, a message).
    Stuck,
    /// Stopped (signal, `wg service stop`) before it was over.
    Stopped,
}

/// Judges the end of a run by the final task counts.
pub fn ending(
    counts: &std::collections::BTreeMap<String, usize>,
    paused_too_long: bool,
    stopped: bool,
) -> Ending {
    let n = |s: TaskStatus| counts.get(s.as_str()).copied().unwrap_or(0);
    let total: usize = counts.values().sum();
    if n(TaskStatus::Failed) + n(TaskStatus::Abandoned) > 0 {
        Ending::SomeFailed
    } else if n(TaskStatus::Done) == total {
        Ending::AllDone
    } else if paused_too_long {
        Ending::Paused
    } else if stopped {
        Ending::Stopped
    } else {
        Ending::Stuck
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_stop_when_a_person_closes_or_pauses_their_task() {
        use TaskStatus::*;
        assert_eq!(stop_for(None, None, "a-1").as_deref(), Some("task removed"));
        assert!(stop_for(Some(Paused), Some("user"), "a-1").is_some());
        assert!(stop_for(Some(Abandoned), Some("a-1"), "a-1").is_some());
        assert_eq!(
            stop_for(Some(Done), Some("user"), "a-1").as_deref(),
            Some("task made done by user")
        );
        assert!(stop_for(Some(Failed), None, "a-1").is_some());
        // The agent closing its own task ends its run the normal way.
        assert_eq!(stop_for(Some(Done), Some("a-1"), "a-1"), None);
        for s in [InProgress, Waiting, NeedsInput, Open] {
            assert_eq!(stop_for(Some(s), Some("user"), "a-1"), None, "{s}");
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = Duration::from_secs(2);
        assert_eq!(backoff(b, 0), Duration::from_secs(2));
        assert_eq!(backoff(b, 3), Duration::from_secs(16));
        assert_eq!(backoff(b, 40), MAX_BACKOFF);
        let t0 = SystemTime::UNIX_EPOCH;
        assert_eq!(retry_at(t0, 1, 2, b), Some(t0 + Duration::from_secs(4)));
        assert_eq!(retry_at(t0, 2, 2, b), None);
    }

    fn cands(spec: &[(&str, Option<&str>)]) -> Vec<Candidate> {
        spec.iter()
            .map(|(id, e)| Candidate {
                id: id.to_string(),
                endpoint: e.map(str::to_string),
            })
            .collect()
    }

    #[test]
    fn pick_respects_capacity_and_paused_endpoints() {
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        let c = cands(&[
            ("a", None),
            ("b", Some("gpu")),
            ("c", None),
            ("d", Some("probe-me")),
            ("e", None),
        ]);
        let gate = |e: &str| match e {
            "gpu" => Gate::Paused(later),
            "probe-me" => Gate::Probe,
            _ => Gate::Open,
        };
        let p = pick(&c, 3, gate);
        assert_eq!(p.start, vec![0, 2, 4]);
        assert_eq!(p.probe, vec!["probe-me".to_string()]);
        assert_eq!(p.wake_at, Some(later));
        assert_eq!(pick(&c, 1, gate).start, vec![0]);
        assert!(pick(&c, 0, gate).start.is_empty());
    }

    #[test]
    fn a_pause_holds_until_a_probe_succeeds_and_grows_per_probe_up_to_the_cap() {
        let now = Instant::now();
        let wall = SystemTime::UNIX_EPOCH;
        let d = (Duration::from_millis(100), Duration::from_millis(350));
        let mut e = Endpoint::default();
        assert_eq!(e.gate(now), Gate::Open);
        assert!(e.pause(now, wall, ErrorKind::ServerError, "down".into(), d));
        assert_eq!(e.gate(now), Gate::Paused(now + d.0));
        // More agents failing in the same outage neither restart nor lengthen the pause.
        let later = now + Duration::from_millis(50);
        assert!(!e.pause(later, wall, ErrorKind::RateLimited, "x".into(), d));
        assert_eq!(e.gate(later), Gate::Paused(now + d.0));
        assert_eq!(e.pause.as_ref().unwrap().message, "down");
        // Due: probe, then wait for it.
        assert_eq!(e.gate(now + d.0), Gate::Probe);
        e.probing = true;
        assert_eq!(e.gate(now + d.0), Gate::Probing);
        // Each failed probe doubles the wait, up to the cap; the reason is the probe's.
        let w = e.probe_failed(now, wall, ErrorKind::Unauthorized, "key rejected".into(), d);
        assert_eq!(w, Duration::from_millis(200));
        assert_eq!(e.pause.as_ref().unwrap().kind, ErrorKind::Unauthorized);
        assert_eq!(
            e.probe_failed(now, wall, ErrorKind::Unauthorized, "k".into(), d),
            Duration::from_millis(350)
        );
        assert_eq!(
            e.probe_failed(now, wall, ErrorKind::Unauthorized, "k".into(), d),
            Duration::from_millis(350)
        );
        // `wg service resume` makes the probe due at once.
        e.probe_now(now);
        assert_eq!(e.gate(now), Gate::Probe);
        // Only a probe that succeeds lifts it.
        let ended = e.probe_succeeded().unwrap();
        assert_eq!(ended.probes, 3);
        assert_eq!(e.gate(now), Gate::Open);
        // A new outage starts from the base again.
        assert!(e.pause(now, wall, ErrorKind::Unreachable, "refused".into(), d));
        assert_eq!(e.gate(now), Gate::Paused(now + d.0));
    }

    #[test]
    fn timeouts() {
        let s = Duration::from_secs;
        let l = Limits {
            hard: Some(s(100)),
            idle: Some(s(10)),
            first_output: Some(s(5)),
        };
        assert_eq!(timed_out(&l, s(4), None), None);
        assert_eq!(
            timed_out(&l, s(6), None),
            Some((TimeoutKind::FirstOutput, s(5)))
        );
        assert_eq!(timed_out(&l, s(50), Some(s(3))), None);
        assert_eq!(
            timed_out(&l, s(50), Some(s(11))),
            Some((TimeoutKind::Idle, s(10)))
        );
        assert_eq!(
            timed_out(&l, s(101), Some(s(1))),
            Some((TimeoutKind::Hard, s(100)))
        );
        assert_eq!(timed_out(&Limits::default(), s(1000), None), None);
    }

    fn facts() -> ExitFacts {
        ExitFacts {
            status: TaskStatus::InProgress,
            still_ours: true,
            conversational: false,
            exit_code_decides: false,
            exit_code: Some(0),
            signal: None,
            stopped: None,
            failure: None,
            unanswered: false,
            nudges_sent: 0,
            max_nudges: 1,
            output_tail: String::new(),
        }
    }

    #[test]
    fn exits_are_judged() {
        // The agent reported: nothing to do.
        let f = ExitFacts {
            status: TaskStatus::Done,
            still_ours: false,
            ..facts()
        };
        assert_eq!(decide_exit(&f), Decision::Nothing);
        // Silent exit of a plain agent.
        let f = ExitFacts {
            exit_code: Some(3),
            ..facts()
        };
        assert_eq!(
            decide_exit(&f),
            Decision::Fail("agent exited without reporting (exit code 3)".into())
        );
        // Shell: the exit code decides.
        let shell = ExitFacts {
            exit_code_decides: true,
            ..facts()
        };
        assert_eq!(decide_exit(&shell), Decision::Done);
        let f = ExitFacts {
            exit_code: Some(2),
            output_tail: "boom".into(),
            ..shell.clone()
        };
        assert_eq!(decide_exit(&f), Decision::Fail("exit code 2: boom".into()));
        let f = ExitFacts {
            exit_code: None,
            signal: Some(9),
            ..facts()
        };
        assert_eq!(
            decide_exit(&f),
            Decision::Fail("agent exited without reporting (killed by signal 9)".into())
        );
        // Timeouts name themselves.
        let f = ExitFacts {
            stopped: Some(StopReason::Timeout(
                TimeoutKind::Idle,
                Duration::from_secs(1),
            )),
            exit_code: None,
            ..facts()
        };
        assert!(matches!(decide_exit(&f), Decision::Fail(r) if r.starts_with("idle timeout")));
        // Endpoint trouble costs no retry.
        let f = ExitFacts {
            failure: Some(failure(ErrorKind::Unreachable)),
            exit_code: Some(1),
            ..facts()
        };
        assert!(matches!(decide_exit(&f), Decision::EndpointTrouble { .. }));
    }

    #[test]
    fn conversational_turns_are_nudged_then_failed() {
        let conv = ExitFacts {
            conversational: true,
            status: TaskStatus::Waiting,
            ..facts()
        };
        assert_eq!(decide_exit(&conv), Decision::Nudge);
        let f = ExitFacts {
            unanswered: true,
            ..conv.clone()
        };
        assert_eq!(decide_exit(&f), Decision::NextTurn);
        let f = ExitFacts {
            nudges_sent: 1,
            ..conv.clone()
        };
        assert_eq!(
            decide_exit(&f),
            Decision::Fail("agent ended its turn without reporting".into())
        );
        // A turn that ended in an error reply fails with the reply's advice, never a nudge.
        let f = ExitFacts {
            exit_code: Some(1),
            failure: Some(TurnFailure {
                reply: Some("The conversation no longer fits".into()),
                ..failure(ErrorKind::ContextOverflow)
            }),
            ..conv.clone()
        };
        assert_eq!(
            decide_exit(&f),
            Decision::Fail("The conversation no longer fits".into())
        );
        // Endpoint trouble pauses instead.
        let f = ExitFacts {
            exit_code: Some(1),
            failure: Some(failure(ErrorKind::Unauthorized)),
            ..conv.clone()
        };
        assert!(matches!(decide_exit(&f), Decision::EndpointTrouble { .. }));
        // A handler that crashed mid-turn is a failure, not a turn.
        let f = ExitFacts {
            status: TaskStatus::InProgress,
            exit_code: Some(2),
            ..conv
        };
        assert!(matches!(decide_exit(&f), Decision::Fail(r) if r.contains("exit code 2")));
    }

    fn failure(kind: ErrorKind) -> TurnFailure {
        TurnFailure {
            kind,
            message: format!("the server said {kind}"),
            reply: Some(format!("reply for {kind}")),
        }
    }

    #[test]
    fn every_kind_is_judged_by_its_scope() {
        let conv = ExitFacts {
            conversational: true,
            status: TaskStatus::Waiting,
            exit_code: Some(1),
            ..facts()
        };
        for kind in ErrorKind::ALL {
            let f = ExitFacts {
                failure: Some(failure(kind)),
                ..conv.clone()
            };
            let d = decide_exit(&f);
            if kind.endpoint_wide() {
                assert_eq!(
                    d,
                    Decision::EndpointTrouble {
                        kind,
                        message: format!("the server said {kind}"),
                        reason: format!("endpoint trouble ({kind}): the server said {kind}")
                    }
                );
            } else {
                assert_eq!(d, Decision::Fail(format!("reply for {kind}")), "{kind}");
            }
        }
        // A custom executor's log words, without a reply, name the kind.
        let f = ExitFacts {
            failure: Some(TurnFailure {
                reply: None,
                ..failure(ErrorKind::BadRequest)
            }),
            ..conv
        };
        assert_eq!(
            decide_exit(&f),
            Decision::Fail("bad-request: the server said bad-request".into())
        );
    }

    #[test]
    fn endings_follow_the_final_counts() {
        let c = |pairs: &[(&str, usize)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        assert_eq!(ending(&c(&[("done", 3)]), false, false), Ending::AllDone);
        assert_eq!(ending(&c(&[]), false, false), Ending::AllDone);
        assert_eq!(
            ending(&c(&[("done", 1), ("failed", 1), ("open", 1)]), true, false),
            Ending::SomeFailed
        );
        assert_eq!(
            ending(&c(&[("done", 1), ("abandoned", 1)]), false, false),
            Ending::SomeFailed
        );
        assert_eq!(ending(&c(&[("open", 2)]), true, false), Ending::Paused);
        assert_eq!(ending(&c(&[("waiting", 1)]), false, false), Ending::Stuck);
        assert_eq!(ending(&c(&[("open", 1)]), false, true), Ending::Stopped);
    }
}
