//! Settings such as `endpoint.api_key_env` hold the *name* of an environment variable. A key
//! pasted there would be written to `config.toml` and from there reach the outbox, handler.log
//! and `wg doctor`, so such a value is refused wherever a name is expected. Pure.
//!
//! Messages never quote the value: they show only its first four characters.

/// Why a value is not acceptable as a variable name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadKeyName {
    /// The value looks like a secret, not a name.
    Pasted { shown: String },
    /// Not a shell variable name (letters, digits, `_`, not starting with a digit).
    NotAName { shown: String },
}

impl BadKeyName {
    pub fn is_pasted(&self) -> bool {
        matches!(self, BadKeyName::Pasted { .. })
    }
}

impl std::fmt::Display for BadKeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadKeyName::Pasted { shown } => write!(
                f,
                "`{shown}` looks like an API key, not the name of the environment variable \
                 that holds it"
            ),
            BadKeyName::NotAName { shown } => {
                write!(f, "`{shown}` is not an environment variable name")
            }
        }
    }
}

/// The first four characters and an ellipsis: enough to recognise, too little to use.
pub fn masked(value: &str) -> String {
    let head: String = value.chars().take(4).collect();
    if value.chars().count() > 4 {
        format!("{head}…")
    } else {
        head
    }
}

/// Prefixes of the keys of well-known providers and gateways.
const KEY_PREFIXES: [&str; 6] = ["sk-", "sk_", "key-", "ghp_", "hf_", "xai-"];

/// Accepts `value` as a variable name, or says why not.
///
/// A pasted key is recognised by a provider prefix, by characters a name cannot hold, or by
/// the shape of a random token: 32 or more characters with no `_`, mixing lower case and
/// digits (names are conventionally upper case words joined by `_`).
pub fn check(value: &str) -> Result<(), BadKeyName> {
    let v = value.trim();
    let shown = masked(v);
    let lower = v.to_ascii_lowercase();
    let is_name = !v.is_empty()
        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !v.starts_with(|c: char| c.is_ascii_digit());
    let token_shaped = v.len() >= 32
        && !v.contains('_')
        && v.chars().any(|c| c.is_ascii_lowercase())
        && v.chars().any(|c| c.is_ascii_digit());
    if KEY_PREFIXES.iter().any(|p| lower.starts_with(p))
        || token_shaped
        || (!is_name && v.len() >= 20 && !v.contains(char::is_whitespace))
    {
        return Err(BadKeyName::Pasted { shown });
    }
    if !is_name {
        return Err(BadKeyName::NotAName { shown });
    }
    Ok(())
}

/// The hint for a config file that holds a pasted key under `setting`.
pub fn fix_hint(setting: &str) -> String {
    format!(
        "set `{setting}` to a variable NAME (`wg config set {setting} WG_API_KEY`), export the \
         key under that name (`export WG_API_KEY=...`), and replace the key at your provider: \
         it was written to a file"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_pass() {
        for n in ["WG_API_KEY", "OPENAI_API_KEY", "CK", "_X", "my_key_2"] {
            assert_eq!(check(n), Ok(()), "{n}");
        }
    }

    #[test]
    fn pasted_keys_are_recognised_and_never_quoted_whole() {
        for k in [
            "sk-proj-AbC123dEf456GhI789jKl012MnO345pQr678",
            "sk-ant-api03-xyz",
            "ghp_0123456789abcdefABCDEF0123456789abcd",
            "hf_abcdefghijklmnop",
            "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
        ] {
            let e = check(k).unwrap_err();
            assert!(e.is_pasted(), "{k}: {e}");
            let text = e.to_string();
            assert!(!text.contains(k), "{text}");
            assert!(text.contains(&k[..4]), "{text}");
        }
    }

    #[test]
    fn other_non_names_are_plain_errors() {
        for n in ["", "1ABC", "MY-KEY", "a b"] {
            let e = check(n).unwrap_err();
            assert!(!e.is_pasted(), "{n}: {e}");
        }
    }

    #[test]
    fn masking_keeps_four_characters() {
        assert_eq!(masked("sk-proj-secret"), "sk-p…");
        assert_eq!(masked("abc"), "abc");
    }
}
