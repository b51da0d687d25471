//! The one `squeue` call per coordinator tick that reports every job wg watches, and its
//! parsing. `--states=all` keeps ended jobs in the answer while the controller still holds
//! them (`MinJobAge`), so the same call gives the exit status: no accounting needed.

use super::state::JobState;

/// Fields asked of squeue, `|`-separated; the comment (the agent id) last.
const FORMAT: &str = "JobID:|,State:|,Reason:|,exit_code:|,Comment:|";

/// One job as squeue reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobStatus {
    pub id: u64,
    pub state: JobState,
    pub reason: String,
    /// The raw wait status (`exit << 8 | signal`); 0 while the job runs.
    pub wait_status: Option<i32>,
    /// The job's comment: the agent id wg submitted it with.
    pub comment: String,
}

/// Arguments for the status of `ids` (one call, however many jobs).
pub fn by_ids(ids: &[u64]) -> Vec<String> {
    let list = ids.iter().map(u64::to_string).collect::<Vec<_>>().join(",");
    vec![
        "--noheader".into(),
        "--states=all".into(),
        format!("--jobs={list}"),
        format!("--Format={FORMAT}"),
    ]
}

/// Arguments for the jobs named `name` (recovery: a job whose id was never recorded).
pub fn by_name(name: &str) -> Vec<String> {
    vec![
        "--noheader".into(),
        "--states=all".into(),
        format!("--name={name}"),
        format!("--Format={FORMAT}"),
    ]
}

/// Parses squeue's answer; lines that do not fit the format are returned as errors.
pub fn parse(stdout: &str) -> Result<Vec<JobStatus>, String> {
    let mut out = Vec::new();
    for line in stdout.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('|').map(str::trim).collect();
        if f.len() < 5 {
            return Err(format!("unexpected squeue line `{line}`"));
        }
        // An array or het job prints `ID_N` / `ID+N`; wg submits neither.
        let id = f[0]
            .parse()
            .map_err(|_| format!("unexpected job id in squeue line `{line}`"))?;
        let comment = if f[4] == "(null)" { "" } else { f[4] };
        out.push(JobStatus {
            id,
            state: JobState::parse(f[1]),
            reason: f[2].to_string(),
            wait_status: f[3].parse().ok(),
            comment: comment.to_string(),
        });
    }
    Ok(out)
}

/// squeue's complaint when none of the asked ids is known any more (it exits 1 then).
pub fn all_unknown(stderr: &str) -> bool {
    stderr.contains("Invalid job id specified")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_call_for_all_jobs() {
        assert_eq!(
            by_ids(&[7, 9, 12]),
            [
                "--noheader",
                "--states=all",
                "--jobs=7,9,12",
                "--Format=JobID:|,State:|,Reason:|,exit_code:|,Comment:|",
            ]
        );
        assert!(by_name("wg-x").contains(&"--name=wg-x".to_string()));
    }

    #[test]
    fn parses_what_squeue_prints() {
        // As printed by Slurm 22.05 for a cancelled, a failed (exit 3) and a pending job.
        let out = "2|CANCELLED|None|15|(null)|\n1|FAILED|NonZeroExitCode|768|agent-x|\n\
                   5|PENDING|Resources|0|agent-y|\n";
        let jobs = parse(out).unwrap();
        assert_eq!(jobs.len(), 3);
        assert_eq!(jobs[0].state, JobState::Cancelled);
        assert_eq!(jobs[0].wait_status, Some(15));
        assert_eq!(jobs[0].comment, "");
        assert_eq!(jobs[1].id, 1);
        assert_eq!(jobs[1].state, JobState::Failed);
        assert_eq!(jobs[1].wait_status, Some(768));
        assert_eq!(jobs[1].comment, "agent-x");
        assert_eq!(jobs[2].state, JobState::Pending);
        assert_eq!(jobs[2].reason, "Resources");
        assert!(parse("").unwrap().is_empty());
        assert!(parse("garbage\n").is_err());
        assert!(parse("1_3|RUNNING|None|0|x|\n").is_err());
        assert!(all_unknown(
            "slurm_load_jobs error: Invalid job id specified\n"
        ));
    }
}
