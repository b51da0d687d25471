//! The handler's side of the credential proxy (`crate::bridge`): which proxy an agent needs,
//! and the environment the agent starts with. The agent gets the proxy's address and a token
//! valid for one turn, never the key; see docs/proxy.md.

use std::path::Path;

use super::events::Dialect;
use crate::bridge::{UpstreamAuth, Wire};

/// The variable that carries the turn's token to codex (its provider's `env_key`).
pub const TOKEN_ENV: &str = "WG_PROXY_TOKEN";

/// Where Claude Code sends requests when no endpoint is configured.
const ANTHROPIC_DEFAULT: &str = "https://api.anthropic.com";

/// The proxy an agent's turns go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub wire: Wire,
    pub upstream: String,
    pub auth: UpstreamAuth,
}

/// Which proxy, if any. codex talks through one whenever wg gives it an endpoint; without one
/// it uses its own login and no key of wg's is involved. claude talks through one whenever
/// there is an endpoint or a key (without an endpoint the key is for Anthropic's own API).
pub fn plan(
    dialect: Dialect,
    endpoint: Option<&str>,
    has_key: bool,
    chat: bool,
    claude_auth: &str,
) -> Option<Plan> {
    match dialect {
        Dialect::Codex => endpoint.map(|url| Plan {
            wire: if chat { Wire::Chat } else { Wire::Responses },
            upstream: url.to_string(),
            auth: UpstreamAuth::Bearer,
        }),
        Dialect::Claude if endpoint.is_some() || has_key => Some(Plan {
            wire: Wire::Anthropic,
            upstream: anthropic_base_url(endpoint.unwrap_or(ANTHROPIC_DEFAULT)),
            auth: if claude_auth == "bearer" {
                UpstreamAuth::Bearer
            } else {
                UpstreamAuth::ApiKeyHeader
            },
        }),
        Dialect::Claude => None,
    }
}

/// `http://h/v1` → `http://h`: the CLI appends `/v1/messages?beta=true` itself and keeps any
/// other path prefix.
pub fn anthropic_base_url(url: &str) -> String {
    let u = url.trim_end_matches('/');
    u.strip_suffix("/v1").unwrap_or(u).to_string()
}

/// The agent's whole environment, built the way the coordinator builds an agent's: the
/// allowlist and the executor's `pass_env` from this process's environment, `PATH` with wg's
/// directory first, then `extra` (wg's variables, the proxy's address and token). Nothing
/// else of the handler's environment, the key above all, reaches the agent, also when
/// `wg handler` is run by hand from a shell that exports it.
pub fn agent_env(
    wg_bin_dir: &Path,
    pass_env: &[String],
    extra: Vec<(String, String)>,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<(String, String)> {
    let extra = extra.into_iter().filter(|(k, _)| k != "PATH").collect();
    crate::executor::process::build_env(wg_bin_dir, pass_env, extra, lookup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_gets_a_proxy_of_its_wire() {
        let p = plan(Dialect::Codex, Some("http://h/v1"), true, false, "api-key").unwrap();
        assert_eq!(
            (p.wire, p.upstream.as_str()),
            (Wire::Responses, "http://h/v1")
        );
        let p = plan(Dialect::Codex, Some("http://h/v1"), false, true, "api-key").unwrap();
        assert_eq!(p.wire, Wire::Chat);
        assert_eq!(plan(Dialect::Codex, None, true, false, "api-key"), None);
        let p = plan(Dialect::Claude, Some("http://h/v1"), true, false, "api-key").unwrap();
        assert_eq!(
            (p.wire, p.upstream.as_str(), p.auth),
            (Wire::Anthropic, "http://h", UpstreamAuth::ApiKeyHeader)
        );
        let p = plan(Dialect::Claude, None, true, false, "bearer").unwrap();
        assert_eq!(
            (p.upstream.as_str(), p.auth),
            (ANTHROPIC_DEFAULT, UpstreamAuth::Bearer)
        );
        assert_eq!(plan(Dialect::Claude, None, false, false, "api-key"), None);
    }

    #[test]
    fn the_agent_env_holds_only_the_allowlist_and_what_wg_sets() {
        let lookup = |k: &str| match k {
            "HOME" => Some("/home/u".to_string()),
            "PATH" => Some("/usr/bin".to_string()),
            "WG_API_KEY" | "OPENAI_API_KEY" | "ANTHROPIC_API_KEY" => Some("sk-secret".into()),
            "HTTPS_PROXY" => Some("http://proxy".into()),
            _ => None,
        };
        let env = agent_env(
            Path::new("/opt/wg"),
            &["HTTPS_PROXY".to_string()],
            vec![
                ("PATH".into(), "ignored".into()),
                (TOKEN_ENV.into(), "tok".into()),
            ],
            lookup,
        );
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("HOME"), Some("/home/u"));
        assert_eq!(get("HTTPS_PROXY"), Some("http://proxy"));
        assert_eq!(get("PATH"), Some("/opt/wg:/usr/bin"));
        assert_eq!(get(TOKEN_ENV), Some("tok"));
        assert!(env.iter().all(|(_, v)| v != "sk-secret"), "{env:?}");
    }
}
