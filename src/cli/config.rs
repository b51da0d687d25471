use clap::Subcommand;
use toml_edit::DocumentMut;

use crate::cli::Ctx;
use crate::config::{edit, guard, key_name, Config};
use crate::error::{config_error, not_found as _nf, usage_error, CliError, CliResult, Kind};
use crate::store::atomic::write_atomic;

/// Read and change `.wg/config.toml` (comments and order are kept).
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print one setting, e.g. `wg config get coordinator.max_agents`.
    Get { key: String },
    /// Change one setting; numbers and booleans are stored as such. A value the setting cannot
    /// take (wrong type, unknown word, out of range) is refused with the words a load would use.
    Set { key: String, value: String },
    /// Print every setting in the file.
    List,
    /// Confirm the file as it is now. A running coordinator holds an edit that drops settings
    /// its running file has (a file an editor emptied or half wrote) until it is confirmed;
    /// `wg config set` confirms the file it writes.
    Confirm,
}

pub fn cmd_config(ctx: &Ctx, cmd: &ConfigCommand) -> CliResult {
    let _ = _nf;
    let path = ctx.layout.config();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| config_error(format!("cannot read {}: {e}", path.display())))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| config_error(format!("{} is not valid TOML: {e}", path.display())))?;
    match cmd {
        ConfigCommand::Get { key } => {
            let item = edit::get(&doc, key).ok_or_else(|| {
                CliError::new(
                    Kind::NotFound,
                    anyhow::anyhow!("`{key}` is not set in {}", path.display()),
                )
                .hinted("`wg config list` shows what is set")
            })?;
            let value = toml_item_to_json(item);
            ctx.out.either(&value, || match item.as_str() {
                Some(s) => s.to_string(),
                None => item.to_string().trim().to_string(),
            })?;
        }
        ConfigCommand::Set { key, value } => {
            if key.to_ascii_lowercase().ends_with("api_key")
                || key.to_ascii_lowercase().ends_with(".key")
            {
                return Err(usage_error(format!("`{key}` looks like a secret; wg never stores keys"))
                    .hinted("set `endpoint.api_key_env` to the NAME of the environment variable that holds the key"));
            }
            // A setting that names a variable must get a name: checked before anything else,
            // and the value is never echoed in full (it may be the key itself).
            let names_a_var = key.ends_with("_env");
            if names_a_var {
                key_name::check(value).map_err(|e| {
                    let hint = if e.is_pasted() {
                        format!(
                            "give the variable's NAME (`wg config set {key} WG_API_KEY`) and \
                             export the key under it; the config file was not changed"
                        )
                    } else {
                        "the config file was not changed".to_string()
                    };
                    usage_error(format!("{key}: {e}")).hinted(hint)
                })?;
            }
            edit::set(&mut doc, key, edit::parse_value(value)).map_err(usage_error)?;
            let new_text = doc.to_string();
            // Refuse a change that would make the config invalid, before writing anything.
            Config::parse(&new_text).map_err(|e| {
                let shown = if names_a_var {
                    key_name::masked(value)
                } else {
                    value.clone()
                };
                // The load's own words when they name the setting, so `wg config set`, a load
                // and a live reload say the same thing.
                if e.starts_with(key.as_str()) {
                    usage_error(e)
                } else {
                    usage_error(format!("{key} = {shown}: {e}"))
                }
                .hinted("the config file was not changed")
            })?;
            // Deliberate: a running coordinator applies it even if it drops a setting.
            guard::confirm(&ctx.layout, &new_text)?;
            write_atomic(&path, new_text.as_bytes(), true)?;
            ctx.out.either(&serde_json::json!({"key": key, "value": toml_item_to_json(edit::get(&doc, key).expect("just set"))}), || {
                format!("{key} = {}", edit::get(&doc, key).expect("just set").to_string().trim())
            })?;
        }
        ConfigCommand::Confirm => {
            Config::from_text(&path, &text).map_err(|e| {
                config_error(e.to_string()).hinted("fix the file first; nothing was confirmed")
            })?;
            guard::confirm(&ctx.layout, &text)?;
            ctx.out.either(
                &serde_json::json!({"confirmed": guard::fingerprint(&text)}),
                || "confirmed: a running coordinator applies the file as it is now".to_string(),
            )?;
        }
        ConfigCommand::List => {
            let rows = edit::list(&doc);
            let map: serde_json::Map<String, serde_json::Value> = rows
                .iter()
                .map(|(k, _)| {
                    (
                        k.clone(),
                        toml_item_to_json(edit::get(&doc, k).expect("listed")),
                    )
                })
                .collect();
            ctx.out.either(&map, || {
                rows.iter()
                    .map(|(k, v)| format!("{k} = {v}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
    }
    Ok(())
}

fn toml_item_to_json(item: &toml_edit::Item) -> serde_json::Value {
    let text = format!("v = {}", item.to_string().trim());
    match toml::from_str::<toml::Table>(&text) {
        Ok(t) => serde_json::to_value(&t["v"]).unwrap_or(serde_json::Value::Null),
        Err(_) => serde_json::Value::String(item.to_string().trim().to_string()),
    }
}
