//! One `sbatch` submission: its arguments and its job script, built from the same argv,
//! environment and working directory a local agent gets.
//!
//! Secrets never reach a command line or the job script: `--export=NONE,NAME,...` lists only
//! variable *names*; sbatch reads their values from its own environment, which the caller
//! sets on the sbatch process. Slurm hands them to the job without printing them in
//! `scontrol show job` or the stored batch script.

use std::path::PathBuf;
use std::time::Duration;

/// `[slurm]` settings that go on every submission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Site {
    pub partition: Option<String>,
    pub account: Option<String>,
    pub qos: Option<String>,
    /// Extra `sbatch` arguments, one argv element each.
    pub extra_args: Vec<String>,
}

/// Everything about one agent's job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submit {
    pub task: String,
    /// Stored as the job's comment: recovery finds a job by it when agents.json missed it.
    pub agent_id: String,
    pub argv: Vec<String>,
    pub chdir: PathBuf,
    /// The task's agent.log; appended to, as a local agent's is.
    pub output: PathBuf,
    /// The task's hard timeout; Slurm ends the job on its own past it (rounded up to minutes).
    pub time_limit: Option<Duration>,
    /// Names of the variables the job gets; their values come from sbatch's environment.
    pub env_names: Vec<String>,
    /// The task's own `--slurm-arg` values, after the site's.
    pub task_args: Vec<String>,
}

/// The job name wg gives a task's job.
pub fn job_name(task: &str) -> String {
    format!("wg-{task}")
}

/// Minutes for `--time`, rounded up, at least 1.
pub fn time_minutes(limit: Duration) -> u64 {
    limit.as_secs().div_ceil(60).max(1)
}

/// The `sbatch` arguments (without the program name). The script comes on stdin.
pub fn args(site: &Site, s: &Submit) -> Vec<String> {
    let mut a = vec![
        "--parsable".to_string(),
        format!("--job-name={}", job_name(&s.task)),
        format!("--comment={}", s.agent_id),
        format!("--chdir={}", s.chdir.display()),
        format!("--output={}", s.output.display()),
        // Slurm truncates the output file by default; agent.log holds every run.
        "--open-mode=append".to_string(),
        format!("--export={}", export_value(&s.env_names)),
    ];
    if let Some(limit) = s.time_limit {
        a.push(format!("--time={}", time_minutes(limit)));
    }
    for (flag, v) in [
        ("--partition", &site.partition),
        ("--account", &site.account),
        ("--qos", &site.qos),
    ] {
        if let Some(v) = v {
            a.push(format!("{flag}={v}"));
        }
    }
    a.extend(site.extra_args.iter().cloned());
    a.extend(s.task_args.iter().cloned());
    a
}

/// `NONE` plus the names: the job sees only these (and Slurm's own `SLURM_*`).
fn export_value(names: &[String]) -> String {
    let mut v = String::from("NONE");
    for n in names {
        v.push(',');
        v.push_str(n);
    }
    v
}

/// Whether a variable name can go into `--export` (a comma or `=` would change its meaning).
pub fn exportable_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// The job script: `exec` of the agent's argv, every element single-quoted, so no task text
/// is interpreted by the shell.
pub fn script(argv: &[String]) -> String {
    let mut s = String::from("#!/bin/sh\nexec");
    for a in argv {
        s.push(' ');
        s.push_str(&quote(a));
    }
    s.push('\n');
    s
}

/// POSIX single quoting: `'` becomes `'\''`.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The job id from `sbatch --parsable` (`ID` or `ID;CLUSTER`).
pub fn parse_job_id(stdout: &str) -> Result<u64, String> {
    let line = stdout.lines().map(str::trim).find(|l| !l.is_empty());
    let Some(line) = line else {
        return Err("sbatch printed no job id".into());
    };
    let id = line.split(';').next().unwrap_or(line);
    id.parse()
        .map_err(|_| format!("sbatch printed `{line}`, not a job id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn submit() -> Submit {
        Submit {
            task: "parser".into(),
            agent_id: "agent-1-2".into(),
            argv: vec!["/opt/wg".into(), "handler".into(), "parser".into()],
            chdir: "/shared/p".into(),
            output: "/shared/p/.wg/tasks/parser/agent.log".into(),
            time_limit: Some(Duration::from_secs(90)),
            env_names: vec!["WG_DIR".into(), "WG_API_KEY".into()],
            task_args: vec!["--gres=gpu:1".into()],
        }
    }

    #[test]
    fn arguments_name_the_job_and_carry_only_variable_names() {
        let site = Site {
            partition: Some("gpu".into()),
            account: None,
            qos: Some("low".into()),
            extra_args: vec!["--mem=4G".into()],
        };
        let a = args(&site, &submit());
        assert_eq!(
            a,
            [
                "--parsable",
                "--job-name=wg-parser",
                "--comment=agent-1-2",
                "--chdir=/shared/p",
                "--output=/shared/p/.wg/tasks/parser/agent.log",
                "--open-mode=append",
                "--export=NONE,WG_DIR,WG_API_KEY",
                "--time=2",
                "--partition=gpu",
                "--qos=low",
                "--mem=4G",
                "--gres=gpu:1",
            ]
        );
        let mut s = submit();
        s.time_limit = None;
        s.env_names.clear();
        let a = args(&Site::default(), &s);
        assert!(a.contains(&"--export=NONE".to_string()));
        assert!(!a.iter().any(|x| x.starts_with("--time")));
    }

    #[test]
    fn time_is_rounded_up_to_whole_minutes() {
        assert_eq!(time_minutes(Duration::from_secs(1)), 1);
        assert_eq!(time_minutes(Duration::from_secs(60)), 1);
        assert_eq!(time_minutes(Duration::from_secs(61)), 2);
        assert_eq!(time_minutes(Duration::from_secs(7200)), 120);
    }

    #[test]
    fn script_quotes_every_element() {
        let argv: Vec<String> = ["echo", "it's $(rm -rf /)", "a b"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            script(&argv),
            "#!/bin/sh\nexec 'echo' 'it'\\''s $(rm -rf /)' 'a b'\n"
        );
        // The shell gives back exactly the original elements.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "printf '%s\\n' {}",
                argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "echo\nit's $(rm -rf /)\na b\n"
        );
    }

    #[test]
    fn job_ids_and_names() {
        assert_eq!(parse_job_id("42\n"), Ok(42));
        assert_eq!(parse_job_id("42;wgtest\n"), Ok(42));
        assert!(parse_job_id("").is_err());
        assert!(parse_job_id("Submitted batch job 42").is_err());
        assert!(exportable_name("WG_API_KEY"));
        assert!(!exportable_name("A,B"));
        assert!(!exportable_name("A=1"));
        assert!(!exportable_name("1A"));
    }
}
