//! `[evaluate]`: when and how finished work is scored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::evaluate::verdict;

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
    pub wire_api: Option<String>,
    pub weights: BTreeMap<String, f64>,
    /// Characters of evidence in the prompt.
    pub budget_chars: usize,
    pub timeout: String,
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
            weights: verdict::default_weights(),
            budget_chars: 60_000,
            timeout: "120s".into(),
        }
    }
}
