//! `[evaluate]`: when and how finished work is scored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `[evaluate]` in config.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvaluateConfig {
    /// The coordinator evaluates every task that ends done.
    pub auto: bool,
    /// Weighted total at or above which work passes.
    pub pass: f64,
    /// The rejection that fails the task.
    pub max_rejections: u32,
    /// Evaluator model and endpoint; default to the project's.
    pub model: Option<String>,
    pub endpoint: Option<String>,
    pub api_key_env: Option<String>,
    /// `chat` (Chat Completions) or `responses`.
    pub wire_api: Option<super::WireApi>,
    pub weights: BTreeMap<String, f64>,
    /// Characters of evidence in the prompt.
    pub budget_chars: usize,
    pub timeout: super::Dur,
}

impl Default for EvaluateConfig {
    fn default() -> Self {
        EvaluateConfig {
            auto: false,
            pass: 0.7,
            max_rejections: 3,
            model: None,
            endpoint: None,
            api_key_env: None,
            wire_api: None,
            weights: default_weights(),
            budget_chars: 60_000,
            timeout: super::Dur::of("120s"),
        }
    }
}

/// Default weights: what the work does counts most, how it reads least.
pub fn default_weights() -> BTreeMap<String, f64> {
    [
        ("correctness", 0.30),
        ("completeness", 0.20),
        ("constraint_fidelity", 0.15),
        ("intent_fidelity", 0.15),
        ("style", 0.05),
        ("downstream_usability", 0.10),
        ("efficiency", 0.05),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}
