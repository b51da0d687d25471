//! `.wg/service/agents.json`: the running agents, written before the coordinator waits on a
//! child, so that a coordinator started after a crash finds them.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::process::{pid_alive, pid_start_time};
use crate::store::atomic::write_atomic;

/// The agents.json format this binary writes.
pub const VERSION: u32 = 1;

/// One running agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub task: String,
    pub agent_id: String,
    pub pid: i32,
    /// Process group (the agent leads its own group, so it equals `pid`).
    pub pgid: i32,
    /// Start time of `pid` in clock ticks since boot (/proc/PID/stat field 22).
    pub start_time: u64,
    /// Wall-clock start, RFC 3339.
    pub started_at: String,
    pub executor: String,
    /// The turn this run is (1 for non-conversational agents).
    pub turn: u32,
    pub conversational: bool,
    pub exit_code_decides: bool,
    /// Size of agent.log when the agent started: output after it is this run's.
    pub log_offset: u64,
    /// The last inbox seq when the turn started: only messages after it arrived mid-turn.
    #[serde(default)]
    pub inbox_seq: u64,
    /// The Slurm job running this agent (`launcher = "slurm"`); then `pid` is 0 and the job's
    /// state comes from Slurm, not /proc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AgentsFile {
    pub version: u32,
    pub coordinator_pid: u32,
    pub agents: Vec<AgentRecord>,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentsFileError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid agents file: {reason}")]
    Invalid { path: String, reason: String },
}

/// Reads agents.json. Missing means no agents; an unreadable or newer file is an error, so a
/// coordinator never starts as if no agent were running when some might be.
pub fn read(path: &Path) -> Result<Vec<AgentRecord>, AgentsFileError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(AgentsFileError::Read {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let file: AgentsFile =
        serde_json::from_slice(&bytes).map_err(|e| AgentsFileError::Invalid {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
    if file.version > VERSION {
        return Err(AgentsFileError::Invalid {
            path: path.display().to_string(),
            reason: format!(
                "version {} is newer than this wg understands ({VERSION})",
                file.version
            ),
        });
    }
    Ok(file.agents)
}

/// Replaces agents.json atomically.
pub fn write(path: &Path, agents: &[AgentRecord]) -> std::io::Result<()> {
    let file = AgentsFile {
        version: VERSION,
        coordinator_pid: std::process::id(),
        agents: agents.to_vec(),
    };
    let bytes = serde_json::to_vec_pretty(&file).expect("agents always serialize");
    // No fsync: agents.json only has to survive a crash of the coordinator process; after a
    // power loss every agent is gone anyway.
    write_atomic(path, &bytes, false)
}

/// Whether the process recorded in `r` is still that process (pid reuse is caught by the
/// start time).
pub fn still_alive(r: &AgentRecord) -> bool {
    pid_alive(r.pid) && pid_start_time(r.pid) == Some(r.start_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(pid: i32, start_time: u64) -> AgentRecord {
        AgentRecord {
            task: "t".into(),
            agent_id: "agent-1".into(),
            pid,
            pgid: pid,
            start_time,
            started_at: "now".into(),
            executor: "mock".into(),
            turn: 1,
            conversational: false,
            exit_code_decides: false,
            log_offset: 0,
            inbox_seq: 0,
            slurm_job: None,
        }
    }

    #[test]
    fn round_trip_and_newer_versions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agents.json");
        assert!(read(&path).unwrap().is_empty());
        write(&path, &[rec(42, 7)]).unwrap();
        assert_eq!(read(&path).unwrap(), vec![rec(42, 7)]);
        std::fs::write(&path, r#"{"version":99,"coordinator_pid":1,"agents":[]}"#).unwrap();
        assert!(read(&path).is_err());
        std::fs::write(&path, "{nope").unwrap();
        assert!(read(&path).is_err());
    }

    #[test]
    fn liveness_needs_pid_and_start_time() {
        let me = std::process::id() as i32;
        let start = pid_start_time(me).unwrap();
        assert!(still_alive(&rec(me, start)));
        // Same pid, other start time: a reused pid, not our agent.
        assert!(!still_alive(&rec(me, start + 1)));
    }
}
