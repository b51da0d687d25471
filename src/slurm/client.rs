//! Runs Slurm's commands: `sbatch`, `squeue`, `scancel`. Blocking; the coordinator calls
//! them off its event loop.

use std::io::Write;
use std::process::{Command, Stdio};

use super::sbatch::{self, Site, Submit};
use super::squeue::{self, JobStatus};

#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    #[error("cannot run `{program}`: {source} (is Slurm's client installed and on PATH?)")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{program}` failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("{0}")]
    Parse(String),
}

/// The Slurm commands, found on PATH.
#[derive(Debug, Clone, Default)]
pub struct Client;

fn run(
    program: &str,
    args: &[String],
    stdin: Option<&str>,
    env: &[(String, String)],
) -> Result<String, SlurmError> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawn_err = |source| SlurmError::Spawn {
        program: program.to_string(),
        source,
    };
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(spawn_err)?;
    }
    let out = child.wait_with_output().map_err(spawn_err)?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(SlurmError::Failed {
            program: program.to_string(),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(stdout)
}

impl Client {
    /// Submits one agent's job; returns its id. `env` holds the values of the variables the
    /// job gets (`submit.env_names`): they go to sbatch's environment, never its argv.
    pub fn submit(
        &self,
        site: &Site,
        submit: &Submit,
        env: &[(String, String)],
    ) -> Result<u64, SlurmError> {
        let args = sbatch::args(site, submit);
        let out = run("sbatch", &args, Some(&sbatch::script(&submit.argv)), env)?;
        sbatch::parse_job_id(&out).map_err(SlurmError::Parse)
    }

    /// The status of `ids`, in one squeue call. Jobs Slurm no longer knows are absent.
    pub fn query(&self, ids: &[u64]) -> Result<Vec<JobStatus>, SlurmError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        match run("squeue", &squeue::by_ids(ids), None, &[]) {
            Ok(out) => squeue::parse(&out).map_err(SlurmError::Parse),
            Err(SlurmError::Failed { stderr, .. }) if squeue::all_unknown(&stderr) => {
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }

    /// Jobs named `name` (any state Slurm still holds).
    pub fn by_name(&self, name: &str) -> Result<Vec<JobStatus>, SlurmError> {
        let out = run("squeue", &squeue::by_name(name), None, &[])?;
        squeue::parse(&out).map_err(SlurmError::Parse)
    }

    /// Cancels a job (Slurm sends SIGTERM, then SIGKILL after its KillWait).
    pub fn cancel(&self, id: u64) -> Result<(), SlurmError> {
        run("scancel", &[id.to_string()], None, &[]).map(|_| ())
    }
}
