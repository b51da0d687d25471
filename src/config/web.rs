//! `[web]` in config.toml: where the board (`wg web`) listens, and whether `wg service start`
//! serves it too.

use std::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// The coordinator serves the board too (`wg service start`), for as long as it runs.
    pub enabled: bool,
    /// The address to listen on: loopback unless `allow_remote`.
    pub host: String,
    /// 0: any free port (printed at start).
    pub port: u16,
    /// Allows a host other than loopback: anyone who can reach it and holds the token can act.
    pub allow_remote: bool,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            enabled: false,
            host: "127.0.0.1".into(),
            port: 7878,
            allow_remote: false,
        }
    }
}

/// Why an address may not be bound.
pub fn check_bind(host: &str, port: u16, allow_remote: bool) -> Result<SocketAddr, String> {
    let ip: IpAddr = host
        .parse()
        .map_err(|_| format!("web host `{host}` is not an IP address (e.g. 127.0.0.1)"))?;
    if !ip.is_loopback() && !allow_remote {
        return Err(format!(
            "web host {ip} is reachable from other machines; the board lets whoever holds the token act on the project: allow it explicitly (`wg web --allow-remote`, or `allow_remote = true` in [web])"
        ));
    }
    Ok(SocketAddr::new(ip, port))
}

impl WebConfig {
    pub fn check(&self) -> Result<(), String> {
        check_bind(&self.host, self.port, self.allow_remote).map(|_| ())
    }

    pub fn addr(&self) -> Result<SocketAddr, String> {
        check_bind(&self.host, self.port, self.allow_remote)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_by_default_and_anything_else_only_when_allowed() {
        assert!(WebConfig::default().check().is_ok());
        assert!(check_bind("::1", 0, false).is_ok());
        let e = check_bind("0.0.0.0", 80, false).unwrap_err();
        assert!(e.contains("--allow-remote"), "{e}");
        assert!(check_bind("0.0.0.0", 80, true).is_ok());
        assert!(check_bind("localhost", 80, false)
            .unwrap_err()
            .contains("not an IP"));
    }
}
