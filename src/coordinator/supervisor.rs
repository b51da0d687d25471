//! One supervisor task per agent: waits for it, enforces the hard, idle and first-output
//! timeouts by watching `agent.log` (size and mtime; the output never passes through us),
//! stops its whole process group on request, and reports the end to the coordinator.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use tokio::process::Child;
use tokio::sync::mpsc::UnboundedReceiver;

use super::agents_file::{still_alive, AgentRecord};
use super::scheduler::{timed_out, Limits, StopReason};
use crate::process::{group_alive, terminate, StopHow};

/// How often limits are checked (and adopted agents, which are not our children, polled).
const TICK: Duration = Duration::from_millis(100);

/// What the coordinator asks of a supervisor.
#[derive(Debug, Clone, Copy)]
pub enum Control {
    /// SIGTERM, grace period, SIGKILL, for this reason.
    Stop(StopReason),
    /// SIGKILL the group now (`wg service stop --force`).
    Kill,
}

/// The report when an agent has ended.
#[derive(Debug, Clone)]
pub struct Ended {
    pub task: String,
    pub agent_id: String,
    pub exit_code: Option<i32>,
    /// The signal that ended our child, when it was one.
    pub signal: Option<i32>,
    pub stopped: Option<StopReason>,
    /// SIGKILL was needed.
    pub killed: bool,
    /// For a Slurm job: how Slurm recorded its end.
    pub slurm: Option<crate::slurm::state::JobEnd>,
}

pub struct Watch {
    pub record: AgentRecord,
    pub log_path: PathBuf,
    pub limits: Limits,
    pub grace: Duration,
    /// When the agent started, on this coordinator's clock.
    pub started: Instant,
}

/// Time since the agent's last output, or `None` when it has written nothing this run.
fn since_output(w: &Watch) -> Option<Duration> {
    let meta = std::fs::metadata(&w.log_path).ok()?;
    if meta.len() <= w.record.log_offset {
        return None;
    }
    let mtime = meta.modified().ok()?;
    Some(SystemTime::now().duration_since(mtime).unwrap_or_default())
}

/// Supervises one agent until it ends. `child` is `None` for an adopted agent.
pub async fn supervise(
    mut child: Option<Child>,
    w: Watch,
    mut control: UnboundedReceiver<Control>,
) -> Ended {
    let pgid = w.record.pgid;
    let adopted = child.is_none();
    let needs_tick = adopted || w.limits.any();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut control_open = true;
    let mut stopped = None;
    let mut killed = false;
    let mut exit_code = None;
    let mut signal = None;
    loop {
        tokio::select! {
            status = async { child.as_mut().expect("guarded by is_some").wait().await }, if child.is_some() => {
                exit_code = status.as_ref().ok().and_then(|s| s.code());
                signal = status.ok().and_then(|s| s.signal());
                break;
            }
            _ = tick.tick(), if needs_tick => {
                if adopted && !still_alive(&w.record) {
                    break;
                }
                if let Some((kind, limit)) = timed_out(&w.limits, w.started.elapsed(), since_output(&w)) {
                    stopped = Some(StopReason::Timeout(kind, limit));
                    killed = terminate(pgid, child.as_mut(), StopHow::Graceful(w.grace)).await;
                    break;
                }
            }
            c = control.recv(), if control_open => match c {
                Some(Control::Stop(reason)) => {
                    stopped = Some(reason);
                    killed = terminate(pgid, child.as_mut(), StopHow::Graceful(w.grace)).await;
                    break;
                }
                Some(Control::Kill) => {
                    stopped = Some(StopReason::Shutdown);
                    killed = terminate(pgid, child.as_mut(), StopHow::Now).await;
                    break;
                }
                None => control_open = false,
            }
        }
    }
    if let Some(c) = child.as_mut() {
        if exit_code.is_none() && signal.is_none() {
            let status = c.wait().await.ok();
            exit_code = status.and_then(|s| s.code());
            signal = status.and_then(|s| s.signal());
        }
    }
    // The leader is gone; whatever it left running in its group goes too.
    if group_alive(pgid) {
        killed |= terminate(pgid, None, StopHow::Graceful(w.grace)).await;
    }
    Ended {
        task: w.record.task.clone(),
        agent_id: w.record.agent_id.clone(),
        exit_code,
        signal,
        stopped,
        killed,
        slurm: None,
    }
}
