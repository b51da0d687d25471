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

impl Client {
    /// `squeue` answers (the controller is reachable): the number of our jobs it lists.
    pub fn ping(&self) -> Result<usize, SlurmError> {
        let args = ["--noheader", "--me", "--format=%i"].map(String::from);
        Ok(run("squeue", &args, None, &[])?.lines().count())
    }

    /// Runs a tiny job that must see `wg_dir` (the project's `.wg/`, an absolute path) on the
    /// node Slurm picks: it reads `graph.jsonl` and writes a marker under `service/`, which
    /// is read back here. Gives up after `wait`. Returns the node's name.
    pub fn probe(
        &self,
        site: &Site,
        wg_dir: &std::path::Path,
        wait: std::time::Duration,
    ) -> Result<String, String> {
        let marker = wg_dir
            .join("service")
            .join(format!("slurm-probe-{}", std::process::id()));
        let _ = std::fs::remove_file(&marker);
        let script = format!(
            "#!/bin/sh\ntest -r {graph} || exit 3\nhostname > {marker}\n",
            graph = sbatch::quote(&wg_dir.join("graph.jsonl").display().to_string()),
            marker = sbatch::quote(&marker.display().to_string()),
        );
        let mut args = vec![
            "--parsable".to_string(),
            "--wait".into(),
            "--job-name=wg-doctor-probe".into(),
            "--output=/dev/null".into(),
            "--export=NONE".into(),
            "--time=1".into(),
        ];
        for (flag, v) in [
            ("--partition", &site.partition),
            ("--account", &site.account),
            ("--qos", &site.qos),
        ] {
            if let Some(v) = v {
                args.push(format!("{flag}={v}"));
            }
        }
        args.extend(site.extra_args.iter().cloned());
        let mut child = Command::new("sbatch")
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run sbatch: {e}"))?;
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(script.as_bytes())
                .map_err(|e| e.to_string())?;
        }
        let deadline = std::time::Instant::now() + wait;
        let status = loop {
            if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
                break s;
            }
            if std::time::Instant::now() >= deadline {
                let _ = child.kill();
                let out = child.wait_with_output().map_err(|e| e.to_string())?;
                if let Ok(id) = sbatch::parse_job_id(&String::from_utf8_lossy(&out.stdout)) {
                    let _ = self.cancel(id);
                }
                return Err(format!(
                    "the probe job did not finish within {}s (still pending? check `squeue --me`)",
                    wait.as_secs()
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let node = std::fs::read_to_string(&marker).map(|s| s.trim().to_string());
        let _ = std::fs::remove_file(&marker);
        match (status.success(), node) {
            (true, Ok(node)) => Ok(node),
            (_, Err(_)) if status.code() == Some(3) => Err(format!(
                "the probe job cannot read {} on its node: .wg/ must be on a file system the nodes share",
                wg_dir.display()
            )),
            (_, Err(_)) => Err(format!(
                "the probe job wrote nothing under {} ({status}; {}): .wg/ must be on a file system the nodes share, writable by the job",
                wg_dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            (false, Ok(node)) => Err(format!("the probe job on {node} failed ({status})")),
        }
    }
}
