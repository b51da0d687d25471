//! Puts one turn's agent CLI in its box (see `crate::sandbox`): the bwrap command line around
//! it, the turn's broker for its `wg` commands and the relay to the credential proxy. What
//! this returns lives as long as the turn; dropping it closes the broker (the token dies).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::resolve::Resolved;
use crate::sandbox::broker::{self, Broker, Identity};
use crate::sandbox::relay::Outside;
use crate::sandbox::{self, Mode, Network, Plan, Setting};

/// A boxed turn: run `program` with `args`; keep the rest alive until the turn ends.
pub struct Boxed {
    pub program: PathBuf,
    pub args: Vec<String>,
    _broker: Broker,
    _relay: Option<Outside>,
    // Last: the sockets live in it.
    _runtime: tempfile::TempDir,
}

/// bwrap, probed once per handler run.
fn bwrap(path_env: &str) -> Result<PathBuf, String> {
    static PROBED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PROBED.get_or_init(|| sandbox::probe(path_env)).clone()
}

fn token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("cannot make a broker token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The proxy's address, from the base URL the agent is given.
fn proxy_addr(r: &Resolved) -> Option<SocketAddr> {
    let url = r.bridge.as_ref()?.base_url();
    let rest = url.strip_prefix("http://")?;
    rest.split('/').next()?.parse().ok()
}

/// codex's argv without `--add-dir` of `.wg/`: in the box `.wg/` is read-only, and codex's
/// own sandbox would fail to set up protections inside a writable root it cannot write.
fn without_wg_dir(argv: Vec<String>, wg_dir: &Path) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut it = argv.into_iter().peekable();
    while let Some(a) = it.next() {
        if a == "--add-dir" && it.peek().is_some_and(|d| Path::new(d).starts_with(wg_dir)) {
            it.next();
            continue;
        }
        out.push(a);
    }
    out
}

/// Boxes `binary argv` for task `id` unless `setting` opts out (then `None`). `env` is the
/// agent's environment: the broker runs the agent's `wg` commands with it as it is now, and
/// the agent gets the broker's address and token added. An error means the turn must not
/// run: a boxed executor never quietly runs unboxed.
pub fn wrap(
    setting: Setting,
    r: &Resolved,
    id: &str,
    command: (&Path, Vec<String>),
    env: &mut Vec<(String, String)>,
) -> Result<Option<Boxed>, String> {
    if setting.mode == Mode::None {
        return Ok(None);
    }
    let bwrap = bwrap(&r.path_env)?;
    let runtime = tempfile::Builder::new()
        .prefix("wg-turn-")
        .tempdir()
        .map_err(|e| format!("cannot make the turn's socket directory: {e}"))?;
    let token = token()?;
    let identity = Identity {
        task: id.to_string(),
        env: env.clone(),
        workdir: r.workdir.clone(),
    };
    let broker_sock = runtime.path().join("broker.sock");
    let broker = Broker::start(&broker_sock, token.clone(), identity)
        .map_err(|e| format!("cannot start the broker: {e}"))?;
    env.push((broker::SOCKET_ENV.into(), broker_sock.display().to_string()));
    env.push((broker::TOKEN_ENV.into(), token));

    let wg = std::env::current_exe().map_err(|e| format!("cannot find wg: {e}"))?;
    let mut init = vec![wg.display().to_string(), sandbox::init::WORD.to_string()];
    let mut relay = None;
    if let (Some(addr), Network::Loopback) = (proxy_addr(r), setting.network) {
        let sock = runtime.path().join("proxy.sock");
        relay = Some(
            Outside::start(&sock, addr)
                .map_err(|e| format!("cannot start the proxy relay: {e}"))?,
        );
        init.extend([
            "--listen".into(),
            addr.to_string(),
            "--to".into(),
            sock.display().to_string(),
        ]);
    }
    init.push("--".into());
    init.push(command.0.display().to_string());
    let mut argv = command.1;
    if r.dialect == super::events::Dialect::Codex && argv.first().is_some_and(|a| a == "exec") {
        argv = without_wg_dir(argv, &r.wg_dir);
        // codex's own sandbox stays as the inner layer for files, but its network filter
        // would also refuse the broker's Unix socket; the box already allows no network
        // but its own loopback.
        argv.splice(
            1..1,
            [
                "-c".to_string(),
                "sandbox_workspace_write.network_access=true".to_string(),
            ],
        );
    }
    init.extend(argv);

    let mut writable: Vec<PathBuf> = r.codex_home.iter().cloned().collect();
    if r.dialect == super::events::Dialect::Claude {
        writable.push(r.claude_dir.clone());
    }
    // A worktree's git common dir stays writable (commits); `.wg/` never does.
    writable.extend(
        r.add_dirs
            .iter()
            .filter(|d| !d.starts_with(&r.wg_dir))
            .cloned(),
    );
    let programs = [wg.parent(), command.0.parent().and_then(Path::parent)]
        .into_iter()
        .flatten()
        .map(Path::to_path_buf)
        .collect();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let plan = Plan {
        home_files: home.as_deref().map(sandbox::home_files).unwrap_or_default(),
        workdir: r.workdir.clone(),
        wg_dir: r.wg_dir.clone(),
        writable,
        programs,
        runtime: runtime.path().to_path_buf(),
        home,
        network: setting.network,
    };
    let mut args = sandbox::bwrap_args(&plan);
    args.push("--".into());
    args.extend(init);
    Ok(Some(Boxed {
        program: bwrap,
        args,
        _broker: broker,
        _relay: relay,
        _runtime: runtime,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codex_is_not_given_wg_dir_as_a_writable_root() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let argv = v(&["exec", "--add-dir", "/p/.wg", "--add-dir", "/p/.git", "-"]);
        assert_eq!(
            without_wg_dir(argv, Path::new("/p/.wg")),
            v(&["exec", "--add-dir", "/p/.git", "-"])
        );
    }
}
