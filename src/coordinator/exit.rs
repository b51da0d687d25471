//! Exit handling: when an agent ends, gather the facts (task status, unanswered messages,
//! error replies, endpoint trouble), let `scheduler::decide_exit` judge them, and apply the
//! decision; then start the evaluation gate of a finished task.

use super::agents_file::AgentRecord;
use super::scheduler::{self, Decision, ExitFacts, TurnFailure};
use super::supervisor::Ended;
use super::{cli_err, Coordinator, Event, ACTOR};
use crate::conversation::{self, OutboxRecord};
use crate::executor::process::tail;
use crate::executor::Executor;
use crate::lifecycle::{transition, Change};
use crate::model::TaskStatus;
use crate::outcome;
use crate::workspace;

impl Coordinator {
    /// An agent ended: judge the exit and apply the decision.
    pub(super) fn on_ended(&mut self, e: Ended) -> anyhow::Result<()> {
        let Some(r) = self.agents.get(&e.task) else {
            return Ok(());
        };
        if r.record.agent_id != e.agent_id {
            return Ok(());
        }
        let r = self.agents.remove(&e.task).expect("checked above");
        let result = self
            .write_agents()
            .and_then(|()| self.judge_exit(r.record.clone(), e));
        if result.is_err() {
            // Not recorded (a full disk): the agent stays known until its end is.
            self.agents.insert(r.record.task.clone(), r);
        }
        result
    }

    /// Judges the end of the agent `rec` and applies the decision. Also used by recovery for
    /// an agent whose end no coordinator saw.
    pub(super) fn judge_exit(&mut self, rec: AgentRecord, e: Ended) -> anyhow::Result<()> {
        let id = rec.task.clone();
        let x = Executor::resolve(&rec.executor, &self.config).ok();
        let log_path = self.layout.task_file(&id, "agent.log");
        let output_tail = tail(&log_path, rec.log_offset, 400);
        let store = self.store.clone();
        let mut w = store.writer()?;
        let Some(task) = w.get(&id)? else {
            self.log.line(&format!(
                "ended agent={} task={id}: task is gone",
                rec.agent_id
            ));
            return Ok(());
        };
        let still_ours = task.assigned.as_deref() == Some(rec.agent_id.as_str());
        let (mut unanswered, mut nudges_sent) = (false, 0);
        let mut failure = None;
        if rec.conversational {
            // Only messages that arrived during the turn call for another one: a turn that
            // left its own messages unanswered made no progress, and repeating it would loop.
            unanswered = conversation::unanswered(&self.layout, &id)
                .map(|m| m.iter().any(|m| m.seq > rec.inbox_seq))
                .unwrap_or(false);
            let inbox = conversation::read_inbox(&self.layout, &id).unwrap_or_default();
            nudges_sent = inbox.iter().rev().take_while(|m| m.kind == "nudge").count() as u32;
            // The handler exits 1 when a turn of this run ended in an error reply; its typed
            // `error_kind` says whether the endpoint is to blame (pause, no retry spent) or
            // the task cannot go on as it is (fail, with the reply's advice as the reason).
            if e.exit_code.is_some_and(|c| c != 0) {
                failure = conversation::read_outbox(&self.layout, &id)
                    .ok()
                    .and_then(|o| o.last().cloned())
                    .and_then(|r| turn_failure(&r));
            }
        } else if e.exit_code.is_some_and(|c| c != 0) {
            // Executors without an outbox are judged by their log's words, never by digits.
            failure = outcome::classify_log(&output_tail).map(|kind| TurnFailure {
                kind,
                message: output_tail.lines().last().unwrap_or_default().to_string(),
                reply: None,
            });
        }
        let facts = ExitFacts {
            status: task.status,
            still_ours,
            conversational: rec.conversational,
            exit_code_decides: rec.exit_code_decides,
            exit_code: e.exit_code,
            signal: e.signal,
            stopped: e.stopped,
            failure,
            unanswered,
            nudges_sent,
            max_nudges: self.config.coordinator.max_nudges,
            output_tail,
        };
        // A failure a retry would only repeat (an answer cut at the output cap) is final.
        let futile = facts
            .failure
            .as_ref()
            .is_some_and(|t| !t.kind.retry_helps());
        let mut decision = scheduler::decide_exit(&facts);
        if let Some(end) = &e.slurm {
            if e.stopped.is_none() {
                decision = super::slurm_jobs::name_state(decision, end);
            }
        }
        let code = e
            .exit_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "?".into());
        self.log.line(&format!(
            "ended agent={} task={id} exit={code}{}{} status={} -> {decision:?}",
            rec.agent_id,
            e.stopped
                .map(|s| format!(" stopped={s:?}"))
                .unwrap_or_default(),
            if e.killed { " (SIGKILL)" } else { "" },
            task.status,
        ));
        let from = task.status;
        let gated = self.config.evaluate.auto;
        let config = self.config.clone();
        let change_to = |w: &mut crate::store::Writer<'_>,
                         to: TaskStatus,
                         reason: Option<&str>,
                         retry: bool|
         -> anyhow::Result<()> {
            let change = Change {
                to,
                reason,
                actor: ACTOR,
            };
            transition(w, &id, change, |t| {
                if retry {
                    t.retries += 1;
                }
                if to == TaskStatus::Failed && futile {
                    t.extra.insert(
                        crate::lifecycle::FAILED_BY.into(),
                        crate::lifecycle::FAILED_BY_LIMIT.into(),
                    );
                }
                if to == TaskStatus::Done {
                    t.failure_reason = None;
                    if gated {
                        t.extra
                            .insert(crate::evaluate::AWAITING.into(), true.into());
                    }
                    // Its checks and the merge queue come before it counts as finished.
                    crate::landing::hold_on_done(t, &config, ACTOR);
                }
            })
            .map_err(cli_err)?;
            Ok(())
        };
        let mut announce: Option<(TaskStatus, Option<String>)> = None;
        let mut pause = None;
        match &decision {
            Decision::Nothing => {}
            Decision::Done => {
                change_to(&mut w, TaskStatus::Done, Some("exit code 0"), false)?;
                announce = Some((TaskStatus::Done, None));
            }
            Decision::Fail(reason) => {
                change_to(&mut w, TaskStatus::Failed, Some(reason), false)?;
                announce = Some((TaskStatus::Failed, Some(reason.clone())));
            }
            Decision::Requeue {
                count_retry,
                reason,
            } => {
                change_to(&mut w, TaskStatus::Open, Some(reason), *count_retry)?;
                announce = Some((TaskStatus::Open, Some(reason.clone())));
            }
            Decision::EndpointTrouble {
                kind,
                message,
                reason,
            } => {
                change_to(&mut w, TaskStatus::Open, Some(reason), false)?;
                announce = Some((TaskStatus::Open, Some(reason.clone())));
                if let Some(x) = &x {
                    let key = self.endpoint_key(x);
                    pause = Some((key, *kind, message.clone()));
                }
            }
            Decision::NextTurn | Decision::Nudge => {
                if task.status == TaskStatus::InProgress {
                    change_to(&mut w, TaskStatus::Waiting, Some("turn ended"), false)?;
                    announce = Some((TaskStatus::Waiting, None));
                }
            }
        }
        w.commit()?;
        if decision == Decision::Nudge {
            let text =
                "You ended your turn without reporting the outcome. If the task is finished, \
                        run `wg done $WG_TASK_ID`; if it cannot be finished, run \
                        `wg fail $WG_TASK_ID --reason \"...\"`; otherwise continue the work.";
            let lookup_store = self.store.clone();
            let brief = || {
                let g = lookup_store.load().unwrap_or_default();
                conversation::brief_for(&self.layout, &task, |d| g.tasks.get(d).cloned())
            };
            conversation::append_message(&self.layout, &task, brief, ACTOR, "nudge", text)?;
            self.log.line(&format!(
                "nudge task={id} ({} of {})",
                nudges_sent + 1,
                self.config.coordinator.max_nudges
            ));
        }
        if let Some((to, reason)) = announce {
            self.announce(&id, Some(from), to, reason.as_deref());
        }
        if let Some((key, kind, message)) = pause {
            self.pause_endpoint(&key, kind, &message);
        }
        if rec.conversational && task.status.is_terminal() {
            self.note_unanswered(&id, task.status, rec.inbox_seq)?;
        }
        let done_now = decision == Decision::Done || task.status == TaskStatus::Done;
        if done_now && self.config.evaluate.auto && self.stopping.is_none() {
            self.evaluate_unless_checks_first(id)?;
        }
        Ok(())
    }

    /// Messages that arrived during the turn that closed the task will get no turn: say so in
    /// the transcript (a `note` reply) rather than leave them silently unanswered.
    fn note_unanswered(&mut self, id: &str, status: TaskStatus, since: u64) -> anyhow::Result<()> {
        let late: Vec<u64> = conversation::unanswered(&self.layout, id)
            .unwrap_or_default()
            .iter()
            .filter(|m| m.seq > since && m.kind == "message")
            .map(|m| m.seq)
            .collect();
        let Some(last) = late.last().copied() else {
            return Ok(());
        };
        let list = late
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!(
            "Not answered: message {list} arrived while the turn that made this task {status} \
             was running. `wg msg {id} TEXT --reopen` opens the task again with a message."
        );
        conversation::append_note(&self.layout, id, last, &text)?;
        self.log.line(&format!(
            "note task={id}: message {list} not answered ({status})"
        ));
        Ok(())
    }

    /// The evaluation gate: scores the finished task off the event loop (it waits on the
    /// evaluator endpoint), then sends weak work back to open or fails it.
    pub(super) fn start_evaluation(&mut self, id: String) {
        if !self.evaluating.insert(id.clone()) {
            return;
        }
        self.log.line(&format!("evaluating task={id}"));
        let (store, config, tx) = (self.store.clone(), self.config.clone(), self.tx.clone());
        tokio::task::spawn_blocking(move || {
            let outcome = (|| -> Result<String, String> {
                let layout = store.layout.clone();
                let graph = store.load().map_err(|e| e.to_string())?;
                let task = graph.tasks.get(&id).ok_or("the task is gone")?;
                // A worktree task's changes are in its worktree (cleanup waits for this).
                let root = workspace::recorded_worktree(task)
                    .filter(|d| d.is_dir())
                    .unwrap_or_else(|| layout.project_root());
                let result = crate::evaluate::evaluate(&layout, &config, task, &root)
                    .map_err(|e| e.to_string())?;
                crate::evaluate::record(&layout, ACTOR, &result).map_err(|e| e.to_string())?;
                if result.status != "ok" {
                    return Err(format!(
                        "no usable verdict: {}",
                        result.error.unwrap_or_default()
                    ));
                }
                let decision = crate::evaluate::apply_gate(&store, &config, &id, &result)
                    .map_err(|e| format!("{e}"))?;
                Ok(format!(
                    "total={:.2} -> {decision:?}",
                    result.total.unwrap_or(0.0)
                ))
            })();
            let _ = tx.send(Event::Evaluated { task: id, outcome });
        });
    }
}

/// The typed failure of a handler's `error` record; `None` for any other record.
fn turn_failure(r: &OutboxRecord) -> Option<TurnFailure> {
    let e = r.last_error()?;
    Some(TurnFailure {
        kind: e.kind,
        message: e.message,
        reply: Some(r.text.clone()),
    })
}
