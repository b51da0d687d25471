//! Slurm job states, and what an ended job means for the coordinator's exit decision: the
//! same rules as a local agent, with the Slurm state named in the reason.

/// A job state as squeue prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    Pending,
    Configuring,
    Running,
    Completing,
    Suspended,
    Requeued,
    Completed,
    Failed,
    Cancelled,
    Timeout,
    NodeFail,
    Preempted,
    OutOfMemory,
    BootFail,
    Deadline,
    /// A state wg does not know; treated as not ended yet.
    Other(String),
}

impl JobState {
    pub fn parse(s: &str) -> JobState {
        // scontrol writes `CANCELLED by 0`; only the first word is the state.
        match s.split_whitespace().next().unwrap_or("") {
            "PENDING" => JobState::Pending,
            "CONFIGURING" => JobState::Configuring,
            "RUNNING" => JobState::Running,
            "COMPLETING" => JobState::Completing,
            "SUSPENDED" => JobState::Suspended,
            "REQUEUED" | "REQUEUE_HOLD" | "REQUEUE_FED" => JobState::Requeued,
            "COMPLETED" => JobState::Completed,
            "FAILED" => JobState::Failed,
            "CANCELLED" => JobState::Cancelled,
            "TIMEOUT" => JobState::Timeout,
            "NODE_FAIL" => JobState::NodeFail,
            "PREEMPTED" => JobState::Preempted,
            "OUT_OF_MEMORY" => JobState::OutOfMemory,
            "BOOT_FAIL" => JobState::BootFail,
            "DEADLINE" => JobState::Deadline,
            other => JobState::Other(other.to_string()),
        }
    }

    /// The name Slurm uses.
    pub fn name(&self) -> &str {
        match self {
            JobState::Pending => "PENDING",
            JobState::Configuring => "CONFIGURING",
            JobState::Running => "RUNNING",
            JobState::Completing => "COMPLETING",
            JobState::Suspended => "SUSPENDED",
            JobState::Requeued => "REQUEUED",
            JobState::Completed => "COMPLETED",
            JobState::Failed => "FAILED",
            JobState::Cancelled => "CANCELLED",
            JobState::Timeout => "TIMEOUT",
            JobState::NodeFail => "NODE_FAIL",
            JobState::Preempted => "PREEMPTED",
            JobState::OutOfMemory => "OUT_OF_MEMORY",
            JobState::BootFail => "BOOT_FAIL",
            JobState::Deadline => "DEADLINE",
            JobState::Other(s) => s,
        }
    }

    /// The job has ended for good (its processes are gone and Slurm will not run it again).
    pub fn ended(&self) -> bool {
        matches!(
            self,
            JobState::Completed
                | JobState::Failed
                | JobState::Cancelled
                | JobState::Timeout
                | JobState::NodeFail
                | JobState::Preempted
                | JobState::OutOfMemory
                | JobState::BootFail
                | JobState::Deadline
        )
    }

    /// Has started on a node (for first-output and hard limits: pending time is not run time).
    pub fn started(&self) -> bool {
        !matches!(
            self,
            JobState::Pending | JobState::Configuring | JobState::Requeued
        )
    }
}

/// How a job ended, in the terms of a local agent's exit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEnd {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// For an end that is not the agent's own exit: the Slurm state, for the reason.
    pub note: Option<String>,
}

/// What an ended job (or one Slurm no longer knows, `None`) means. `wait_status` is squeue's
/// `exit_code` field: `exit << 8 | signal`.
pub fn job_end(id: u64, state: Option<&JobState>, wait_status: Option<i32>) -> JobEnd {
    let ws = wait_status.unwrap_or(0);
    let (code, sig) = ((ws >> 8) & 0xff, ws & 0x7f);
    let signal = (sig != 0).then_some(sig);
    match state {
        Some(JobState::Completed) => JobEnd {
            exit_code: Some(code),
            signal: None,
            note: None,
        },
        Some(JobState::Failed) => JobEnd {
            exit_code: if signal.is_some() { None } else { Some(code) },
            signal,
            note: Some(format!("Slurm job {id} FAILED")),
        },
        Some(s) => JobEnd {
            exit_code: None,
            signal,
            note: Some(format!("Slurm job {id} {}", s.name())),
        },
        None => JobEnd {
            exit_code: None,
            signal: None,
            note: Some(format!(
                "Slurm job {id} is no longer known to Slurm (it ended while no coordinator watched it)"
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_only_final_ones_end() {
        for s in [
            "PENDING",
            "RUNNING",
            "COMPLETING",
            "COMPLETED",
            "FAILED",
            "CANCELLED",
            "TIMEOUT",
            "NODE_FAIL",
            "PREEMPTED",
            "OUT_OF_MEMORY",
            "BOOT_FAIL",
            "DEADLINE",
        ] {
            assert_eq!(JobState::parse(s).name(), s);
        }
        assert_eq!(JobState::parse("CANCELLED by 0"), JobState::Cancelled);
        assert!(!JobState::Running.ended());
        assert!(!JobState::Completing.ended());
        assert!(!JobState::parse("SPECIAL_EXIT").ended());
        assert!(JobState::NodeFail.ended());
        assert!(!JobState::Pending.started());
        assert!(JobState::Running.started());
    }

    #[test]
    fn exit_status_comes_from_the_wait_status() {
        let e = job_end(1, Some(&JobState::Completed), Some(0));
        assert_eq!((e.exit_code, e.signal, e.note), (Some(0), None, None));
        let e = job_end(1, Some(&JobState::Failed), Some(3 << 8));
        assert_eq!(e.exit_code, Some(3));
        assert_eq!(e.note.as_deref(), Some("Slurm job 1 FAILED"));
        let e = job_end(2, Some(&JobState::Cancelled), Some(15));
        assert_eq!((e.exit_code, e.signal), (None, Some(15)));
        assert_eq!(e.note.as_deref(), Some("Slurm job 2 CANCELLED"));
        for (s, name) in [
            (JobState::NodeFail, "NODE_FAIL"),
            (JobState::Timeout, "TIMEOUT"),
            (JobState::Preempted, "PREEMPTED"),
            (JobState::OutOfMemory, "OUT_OF_MEMORY"),
        ] {
            let e = job_end(9, Some(&s), Some(9));
            assert_eq!(e.exit_code, None);
            assert!(e.note.unwrap().ends_with(name));
        }
        let e = job_end(3, None, None);
        assert!(e.note.unwrap().contains("no longer known"));
    }
}
