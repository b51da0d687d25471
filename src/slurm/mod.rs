//! Running agents as Slurm jobs (`launcher = "slurm"`). See docs/slurm.md.
//!
//! Pure pieces, unit-tested: `sbatch` (the submission's arguments and job script), `squeue`
//! (the one status query per tick and its parsing), `state` (Slurm job states and how an
//! ended job feeds the coordinator's exit decision). `client` runs the Slurm commands.

pub mod client;
pub mod sbatch;
pub mod squeue;
pub mod state;

use serde::{Deserialize, Serialize};

/// Where an agent runs: a local child process, or a Slurm batch job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Launcher {
    #[default]
    Local,
    Slurm,
}

impl Launcher {
    pub fn as_str(self) -> &'static str {
        match self {
            Launcher::Local => "local",
            Launcher::Slurm => "slurm",
        }
    }

    pub fn parse(s: &str) -> Result<Launcher, String> {
        match s {
            "local" => Ok(Launcher::Local),
            "slurm" => Ok(Launcher::Slurm),
            other => Err(format!(
                "unknown launcher `{other}` (expected `local` or `slurm`)"
            )),
        }
    }
}

impl std::fmt::Display for Launcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Task record fields (in the task's extra map) set by `wg add --launcher/--slurm-arg`.
pub mod field {
    /// `local` or `slurm`: overrides the executor's and the project's launcher.
    pub const LAUNCHER: &str = "launcher";
    /// Extra `sbatch` arguments for this task (an argv list, e.g. `--gres=gpu:1`).
    pub const SLURM_ARGS: &str = "slurm_args";
}

/// The launcher for a task: the task's own, else its executor's, else the project's.
pub fn launcher_for(
    task: &crate::model::Task,
    executor: Option<Launcher>,
    project: Launcher,
) -> Result<Launcher, String> {
    if let Some(v) = task.extra.get(field::LAUNCHER) {
        let s = v
            .as_str()
            .ok_or_else(|| format!("task `{}`: `launcher` must be a string", task.id))?;
        return Launcher::parse(s).map_err(|e| format!("task `{}`: {e}", task.id));
    }
    if let Some(l) = executor {
        return Ok(l);
    }
    Ok(project)
}

/// The task's own `sbatch` arguments (`wg add --slurm-arg`).
pub fn task_args(task: &crate::model::Task) -> Vec<String> {
    task.extra
        .get(field::SLURM_ARGS)
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Task;

    #[test]
    fn task_beats_executor_beats_project() {
        let mut t = Task::new("t".into(), "T".into(), "now");
        let exec = Launcher::Slurm;
        assert_eq!(
            launcher_for(&t, None, Launcher::Local).unwrap(),
            Launcher::Local
        );
        assert_eq!(
            launcher_for(&t, Some(exec), Launcher::Local).unwrap(),
            Launcher::Slurm
        );
        t.extra.insert(field::LAUNCHER.into(), "local".into());
        assert_eq!(
            launcher_for(&t, Some(exec), Launcher::Slurm).unwrap(),
            Launcher::Local
        );
        t.extra.insert(field::LAUNCHER.into(), "k8s".into());
        let err = launcher_for(&t, None, Launcher::Local).unwrap_err();
        assert!(err.contains("k8s") && err.contains("slurm"), "{err}");
        t.extra.insert(
            field::SLURM_ARGS.into(),
            serde_json::json!(["--gres=gpu:1", "--mem=4G"]),
        );
        assert_eq!(task_args(&t), ["--gres=gpu:1", "--mem=4G"]);
    }
}
