//! The only place wg runs git for workspaces. Every call is `git -C <dir> ...` with output
//! captured; a failure carries git's own stderr, which is what a person needs to act on.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{parse_worktree_list, Worktree};

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("cannot run git in {dir}")]
    Spawn {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`git {args}` failed in {dir}: {stderr}")]
    Failed {
        dir: String,
        args: String,
        stderr: String,
    },
}

/// Runs `git -C dir args`; stdout on success.
pub fn run(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    run_with(dir, &[], args)
}

/// `git -C dir -c CONFIG... args`.
pub fn run_with(dir: &Path, config: &[&str], args: &[&str]) -> Result<String, GitError> {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(dir);
    for c in config {
        cmd.arg("-c").arg(c);
    }
    // Never ask a person for anything: there is nobody at a coordinator's terminal.
    let out = cmd
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| GitError::Spawn {
            dir: dir.display().to_string(),
            source,
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        return Err(GitError::Failed {
            dir: dir.display().to_string(),
            args: args.join(" "),
            stderr: if stderr.is_empty() { stdout } else { stderr },
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `dir` is inside a git work tree.
pub fn is_repo(dir: &Path) -> bool {
    run(dir, &["rev-parse", "--is-inside-work-tree"]).is_ok_and(|s| s.trim() == "true")
}

/// The repository's common dir (`.git` of the main checkout, shared by every worktree),
/// absolute: objects, refs and each worktree's index live there, so a commit from a worktree
/// writes under it.
pub fn common_dir(dir: &Path) -> Result<PathBuf, GitError> {
    let s = run(dir, &["rev-parse", "--git-common-dir"])?;
    let p = PathBuf::from(s.trim());
    Ok(if p.is_absolute() { p } else { dir.join(p) })
}

/// The worktree's own git dir (`<common>/worktrees/<name>`: its index, HEAD, logs), absolute.
pub fn git_dir(dir: &Path) -> Result<PathBuf, GitError> {
    let s = run(dir, &["rev-parse", "--absolute-git-dir"])?;
    Ok(PathBuf::from(s.trim()))
}

pub fn list_worktrees(repo: &Path) -> Result<Vec<Worktree>, GitError> {
    Ok(parse_worktree_list(&run(
        repo,
        &["worktree", "list", "--porcelain"],
    )?))
}

/// The commit `rev` names.
pub fn commit_of(repo: &Path, rev: &str) -> Result<String, GitError> {
    Ok(run(
        repo,
        &["rev-parse", "--verify", &format!("{rev}^{{commit}}")],
    )?
    .trim()
    .to_string())
}

/// `refs/heads/x` when `rev` names a branch (`HEAD` on a branch included), else `None`.
pub fn branch_ref(repo: &Path, rev: &str) -> Option<String> {
    let s = run(repo, &["rev-parse", "--symbolic-full-name", rev]).ok()?;
    let s = s.trim();
    s.starts_with("refs/heads/").then(|| s.to_string())
}

pub fn branch_exists(repo: &Path, branch: &str) -> bool {
    run(
        repo,
        &[
            "show-ref",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
    )
    .is_ok()
}

/// `git worktree add -B <branch> <dir> <base>`: the branch is (re)set to `base`.
pub fn add_worktree(repo: &Path, branch: &str, dir: &Path, base: &str) -> Result<(), GitError> {
    if let Some(parent) = dir.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let dir = dir.display().to_string();
    run(
        repo,
        &["worktree", "add", "--quiet", "-B", branch, &dir, base],
    )
    .map(|_| ())
}

/// A worktree on an existing branch, as it is (a retry keeps the earlier attempt's commits).
pub fn add_worktree_existing(repo: &Path, branch: &str, dir: &Path) -> Result<(), GitError> {
    if let Some(parent) = dir.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let dir = dir.display().to_string();
    run(repo, &["worktree", "add", "--quiet", &dir, branch]).map(|_| ())
}

/// Staged, unstaged and untracked changes, as `git status --porcelain` lines (`XY path`).
pub fn dirty_files(dir: &Path) -> Result<Vec<String>, GitError> {
    Ok(
        run(dir, &["status", "--porcelain", "--untracked-files=all"])?
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
    )
}

/// Commits everything in the worktree (`git add -A`). Without a configured identity the
/// commit is made as `wg`, so a missing `user.email` cannot lose an agent's work.
pub fn commit_all(dir: &Path, message: &str) -> Result<String, GitError> {
    run(dir, &["add", "-A"])?;
    run_with(
        dir,
        identity(dir),
        &["commit", "--quiet", "--no-verify", "-m", message],
    )?;
    Ok(run(dir, &["rev-parse", "HEAD"])?.trim().to_string())
}

/// `-c` settings that give a commit an author when the repository has none configured.
pub fn identity(dir: &Path) -> &'static [&'static str] {
    let has_identity = run(dir, &["config", "user.email"]).is_ok_and(|s| !s.trim().is_empty())
        || std::env::var_os("GIT_AUTHOR_EMAIL").is_some();
    if has_identity {
        &[]
    } else {
        &["user.name=wg", "user.email=wg@localhost"]
    }
}

/// Whether commit `a` is an ancestor of (or equal to) `b`.
pub fn is_ancestor(repo: &Path, a: &str, b: &str) -> bool {
    run(repo, &["merge-base", "--is-ancestor", a, b]).is_ok()
}

/// Removes a worktree (even with changes left: callers commit them first) and prunes its
/// administrative files.
pub fn remove_worktree(repo: &Path, dir: &Path) -> Result<(), GitError> {
    let d = dir.display().to_string();
    let removed = run(repo, &["worktree", "remove", "--force", "--force", &d]);
    // A directory someone deleted by hand leaves only the registration behind.
    let _ = run(repo, &["worktree", "prune"]);
    match removed {
        Err(e) if dir.exists() => Err(e),
        _ => Ok(()),
    }
}

/// Fast-forwards `base_ref` (`refs/heads/x`) to `branch`. Where the base branch is checked out
/// (usually the main checkout), `merge --ff-only` there keeps its files in step; elsewhere the
/// ref moves alone. `Err` says why it was not possible.
pub fn fast_forward(repo: &Path, base_ref: &str, branch: &str) -> Result<String, String> {
    let base_tip = commit_of(repo, base_ref).map_err(|e| e.to_string())?;
    let tip = commit_of(repo, branch).map_err(|e| e.to_string())?;
    if base_tip == tip {
        return Ok(format!("{base_ref} already at {}", short(&tip)));
    }
    if run(repo, &["merge-base", "--is-ancestor", &base_tip, &tip]).is_err() {
        return Err(format!(
            "{} has moved on since the task started; not a fast-forward, merge {branch} by hand",
            base_ref.trim_start_matches("refs/heads/")
        ));
    }
    let trees = list_worktrees(repo).map_err(|e| e.to_string())?;
    match trees.iter().find(|w| w.branch.as_deref() == Some(base_ref)) {
        Some(w) => {
            run(&w.path, &["merge", "--ff-only", "--quiet", branch]).map_err(|e| e.to_string())?
        }
        None => run(repo, &["update-ref", base_ref, &tip, &base_tip]).map_err(|e| e.to_string())?,
    };
    Ok(format!(
        "fast-forwarded {} to {}",
        base_ref.trim_start_matches("refs/heads/"),
        short(&tip)
    ))
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}
