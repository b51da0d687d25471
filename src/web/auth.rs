//! Who may look and who may act: the access token printed at start, the sessions it opens
//! (an `HttpOnly` cookie), and the CSRF value each session's forms carry. Pure but for the
//! random numbers, so every rule is unit-tested.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The session cookie's name.
pub const COOKIE: &str = "wg_session";
/// The form field (or `x-csrf-token` header) that carries a session's CSRF value.
pub const CSRF_FIELD: &str = "csrf";
/// Sessions kept at most; the oldest goes first (a browser that logs in again gets a new one).
const MAX_SESSIONS: usize = 256;
/// A session ends after this long without a request.
const IDLE: Duration = Duration::from_secs(7 * 24 * 3600);

/// `n` random bytes as lowercase hex: 32 bytes are 256 bits, past any guessing.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).expect("the OS random source is available");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time comparison, so a secret cannot be found byte by byte from response times.
pub fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len()
        && !a.is_empty()
        && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Session {
    csrf: String,
    last_seen: Instant,
}

/// The access token and the open sessions.
pub struct Sessions {
    token: String,
    open: HashMap<String, Session>,
}

/// What a request proves about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// No valid cookie and no bearer token.
    Nobody,
    /// A browser session: may act with its CSRF value.
    Session { csrf: String },
    /// `Authorization: Bearer TOKEN`: a script, which a page cannot forge, so no CSRF value.
    Bearer,
}

impl Sessions {
    pub fn new(token: String) -> Sessions {
        Sessions {
            token,
            open: HashMap::new(),
        }
    }

    /// A new session when `given` is the access token: its id (the cookie's value).
    pub fn login(&mut self, given: &str) -> Option<String> {
        if !same_secret(given.trim(), &self.token) {
            return None;
        }
        if self.open.len() >= MAX_SESSIONS {
            if let Some(oldest) = self
                .open
                .iter()
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(k, _)| k.clone())
            {
                self.open.remove(&oldest);
            }
        }
        let id = random_hex(32);
        self.open.insert(
            id.clone(),
            Session {
                csrf: random_hex(32),
                last_seen: Instant::now(),
            },
        );
        Some(id)
    }

    pub fn logout(&mut self, cookie_header: Option<&str>) {
        if let Some(id) = cookie_header.and_then(|h| cookie_value(h, COOKIE)) {
            self.open.remove(id);
        }
    }

    /// Who sent a request with these `Cookie` and `Authorization` headers.
    pub fn who(&mut self, cookie_header: Option<&str>, authorization: Option<&str>) -> Who {
        if let Some(t) = authorization.and_then(|a| a.strip_prefix("Bearer ")) {
            return if same_secret(t.trim(), &self.token) {
                Who::Bearer
            } else {
                Who::Nobody
            };
        }
        let Some(id) = cookie_header.and_then(|h| cookie_value(h, COOKIE)) else {
            return Who::Nobody;
        };
        let now = Instant::now();
        self.open
            .retain(|_, s| now.duration_since(s.last_seen) < IDLE);
        match self.open.iter_mut().find(|(k, _)| same_secret(k, id)) {
            Some((_, s)) => {
                s.last_seen = now;
                Who::Session {
                    csrf: s.csrf.clone(),
                }
            }
            None => Who::Nobody,
        }
    }
}

/// Whether `who` may perform an action carrying `given` as its CSRF value.
pub fn may_act(who: &Who, given: Option<&str>) -> bool {
    match who {
        Who::Nobody => false,
        Who::Bearer => true,
        Who::Session { csrf } => given.is_some_and(|g| same_secret(g, csrf)),
    }
}

/// The `Set-Cookie` value for a new session: not readable by scripts, never sent by another
/// site's page (`SameSite=Strict`), `Secure` when served over TLS by a proxy in front.
pub fn set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{}",
        if secure { "; Secure" } else { "" }
    )
}

/// One cookie's value from a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_token_opens_a_session_and_the_cookie_finds_it() {
        let mut s = Sessions::new("t0ken".into());
        assert_eq!(s.login("wrong"), None);
        assert_eq!(s.login(""), None);
        let id = s.login(" t0ken\n").expect("the token logs in");
        let header = format!("other=1; {COOKIE}={id}");
        let Who::Session { csrf } = s.who(Some(&header), None) else {
            panic!("the cookie names a session")
        };
        assert_eq!(csrf.len(), 64);
        assert_eq!(s.who(Some("wg_session=forged"), None), Who::Nobody);
        assert_eq!(s.who(None, None), Who::Nobody);
        s.logout(Some(&header));
        assert_eq!(s.who(Some(&header), None), Who::Nobody);
    }

    #[test]
    fn a_session_acts_only_with_its_csrf_value_and_a_bearer_token_without_one() {
        let mut s = Sessions::new("t0ken".into());
        let id = s.login("t0ken").unwrap();
        let who = s.who(Some(&format!("{COOKIE}={id}")), None);
        let Who::Session { csrf } = &who else {
            panic!()
        };
        assert!(may_act(&who, Some(csrf)));
        assert!(!may_act(&who, None));
        assert!(!may_act(&who, Some("")));
        assert!(
            !may_act(&who, Some(&id)),
            "the session id is not the CSRF value"
        );
        assert!(!may_act(&Who::Nobody, Some(csrf)));
        assert_eq!(s.who(None, Some("Bearer t0ken")), Who::Bearer);
        assert_eq!(s.who(None, Some("Bearer nope")), Who::Nobody);
        assert!(may_act(&Who::Bearer, None));
    }

    #[test]
    fn the_cookie_is_http_only_and_same_site() {
        let c = set_cookie("abc", false);
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
        assert!(!c.contains("Secure"));
        assert!(set_cookie("abc", true).ends_with("; Secure"));
    }

    #[test]
    fn sessions_are_bounded() {
        let mut s = Sessions::new("t".into());
        for _ in 0..MAX_SESSIONS + 10 {
            s.login("t").unwrap();
        }
        assert_eq!(s.open.len(), MAX_SESSIONS);
    }
}
