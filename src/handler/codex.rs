//! codex behind [`AgentCli`]: `codex exec` pointed at the credential proxy (which holds the
//! real key and forwards to the endpoint), with a project-local CODEX_HOME.

use super::agent::{AgentCli, Invocation};
use super::command::{self, CodexParams, Endpoint};
use super::error::SessionError;
use super::events::{self, Dialect, TurnEvents};
use super::files::{self, HandlerLog};
use super::log::Level;
use super::proxy::TOKEN_ENV;
use super::resolve::{Resolved, CODEX_HOME_LOG_CAP};
use crate::config::Config;
use crate::outcome::ErrorKind;

pub struct Codex;

impl AgentCli for Codex {
    fn dialect(&self) -> Dialect {
        Dialect::Codex
    }

    fn invocation(
        &self,
        r: &Resolved,
        config: &Config,
        log: &mut HandlerLog,
        turn: u64,
    ) -> Result<Invocation, SessionError> {
        let params = CodexParams {
            binary: r.binary.clone(),
            workdir: r.workdir.clone(),
            add_dirs: r.add_dirs.clone(),
            model: r.model.clone(),
            endpoint: r.endpoint.as_ref().map(|url| Endpoint {
                url: r
                    .bridge
                    .as_ref()
                    .map_or(url.clone(), |b| b.base_url().to_string()),
                key_env: if r.bridge.is_some() {
                    TOKEN_ENV.to_string()
                } else {
                    r.key_env.clone()
                },
                model_context_window: config.endpoint.model_context_window,
            }),
            sandbox: r.sandbox,
            request_max_retries: config.handler.request_max_retries,
            stream_max_retries: config.handler.stream_max_retries,
            stream_idle_timeout_ms: r.stream_idle_ms,
        };
        let mut inv = Invocation {
            args: command::codex_args(&params),
            home: (
                "codex_home",
                r.codex_home
                    .as_ref()
                    .map_or("user".into(), |h| h.display().to_string()),
            ),
            ..Invocation::default()
        };
        // The token of the current turn (the session starts a turn on the proxy first).
        if let Some(b) = &r.bridge {
            inv.env.push((TOKEN_ENV.to_string(), b.token()));
        }
        if let Some(home) = &r.codex_home {
            // codex fails with "Error finding codex home" unless it exists.
            std::fs::create_dir_all(home)?;
            let freed = files::prune_codex_home(home, CODEX_HOME_LOG_CAP);
            if freed > 0 {
                log.write(
                    Level::Info,
                    turn,
                    "codex_home.pruned",
                    &[("bytes", freed.to_string())],
                );
            }
            inv.env
                .push(("CODEX_HOME".to_string(), home.display().to_string()));
        }
        Ok(inv)
    }

    fn classify(&self, events: &TurnEvents, detail: &str) -> ErrorKind {
        events::classify(events, detail)
    }
}
