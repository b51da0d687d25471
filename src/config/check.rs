//! The ranges of settings, checked after the file's types are read: every check names the
//! setting, and `wg config set`, a load, a live reload and `wg doctor` all run this one.

use super::{key_name, validate_endpoint_url, Config, Dur};

impl Config {
    /// Every setting that holds the name of an environment variable, with its value.
    pub(super) fn key_name_settings(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        if let Some(v) = &self.endpoint.api_key_env {
            out.push(("endpoint.api_key_env".to_string(), v.as_str()));
        }
        if let Some(v) = &self.evaluate.api_key_env {
            out.push(("evaluate.api_key_env".to_string(), v.as_str()));
        }
        if let Some(v) = &self.notify.token_env {
            out.push(("notify.token_env".to_string(), v.as_str()));
        }
        for (name, x) in &self.executors {
            if let Some(v) = &x.api_key_env {
                out.push((format!("executors.{name}.api_key_env"), v.as_str()));
            }
            for v in &x.pass_env {
                out.push((format!("executors.{name}.pass_env"), v.as_str()));
            }
        }
        out
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        for (setting, value) in self.key_name_settings() {
            key_name::check(value).map_err(|e| format!("{setting}: {e}"))?;
        }
        if let Some(url) = &self.endpoint.url {
            validate_endpoint_url(url).map_err(|e| format!("endpoint.url: {e}"))?;
        }
        if let Some(url) = &self.evaluate.endpoint {
            validate_endpoint_url(url).map_err(|e| format!("evaluate.endpoint: {e}"))?;
        }
        if self.workspace.dir.trim().is_empty() {
            return Err("workspace.dir is empty".into());
        }
        self.web.check()?;
        self.checks.validate()?;
        self.check_durations()?;
        self.check_counts()?;
        self.check_scores()?;
        for (model, price) in &self.pricing {
            price
                .validate()
                .map_err(|e| format!("pricing.\"{model}\".{e}"))?;
        }
        self.check_executors()
    }

    /// A zero poll spins the idle coordinator; a zero timeout kills every run at once and
    /// spends every retry. Only the grace period may be zero (stop at once).
    fn check_durations(&self) -> Result<(), String> {
        let (c, h, cl) = (&self.coordinator, &self.handler, &self.claude);
        let all: [(&str, Option<&Dur>); 16] = [
            ("coordinator.poll_interval", Some(&c.poll_interval)),
            ("coordinator.retry_backoff", Some(&c.retry_backoff)),
            (
                "coordinator.endpoint_backoff_max",
                Some(&c.endpoint_backoff_max),
            ),
            ("coordinator.hard_timeout", c.hard_timeout.as_ref()),
            ("coordinator.idle_timeout", c.idle_timeout.as_ref()),
            (
                "coordinator.first_output_timeout",
                c.first_output_timeout.as_ref(),
            ),
            (
                "handler.first_output_timeout",
                Some(&h.first_output_timeout),
            ),
            ("handler.idle_timeout", Some(&h.idle_timeout)),
            ("handler.turn_timeout", Some(&h.turn_timeout)),
            ("handler.stream_idle_timeout", Some(&h.stream_idle_timeout)),
            ("handler.first_byte_timeout", Some(&h.first_byte_timeout)),
            ("handler.max_wall", h.max_wall.as_ref()),
            ("claude.api_timeout", Some(&cl.api_timeout)),
            ("claude.stream_idle_timeout", Some(&cl.stream_idle_timeout)),
            ("slurm.poll_interval", Some(&self.slurm.poll_interval)),
            ("evaluate.timeout", Some(&self.evaluate.timeout)),
        ];
        for (key, d) in all {
            if let Some(d) = d.filter(|d| d.get().is_zero()) {
                return Err(format!("{key} = \"{d}\": must be more than zero"));
            }
        }
        Ok(())
    }

    /// Budgets and sizes: a 0 that would fail every task, or starve every prompt, is refused.
    fn check_counts(&self) -> Result<(), String> {
        let (c, h, e) = (&self.coordinator, &self.handler, &self.evaluate);
        let all: [(&str, Option<u64>, u64); 11] = [
            ("coordinator.max_agents", Some(c.max_agents as u64), 1),
            (
                "codex.history_budget_chars",
                self.codex.history_budget_chars.map(|v| v as u64),
                1,
            ),
            ("handler.max_turns", h.max_turns, 1),
            ("handler.max_tokens", h.max_tokens, 1),
            ("handler.log_max_bytes", Some(h.log_max_bytes), 1024),
            (
                "handler.max_message_chars",
                Some(h.max_message_chars as u64),
                1,
            ),
            ("evaluate.max_rejections", Some(e.max_rejections as u64), 1),
            (
                "workspace.land_rounds",
                Some(self.workspace.land_rounds as u64),
                1,
            ),
            (
                "workspace.land_batch",
                Some(self.workspace.land_batch as u64),
                1,
            ),
            ("evaluate.budget_chars", Some(e.budget_chars as u64), 1),
            (
                "endpoint.model_context_window",
                self.endpoint.model_context_window,
                1,
            ),
        ];
        for (key, value, min) in all {
            if let Some(v) = value.filter(|v| *v < min) {
                return Err(format!("{key} = {v}: must be at least {min}"));
            }
        }
        Ok(())
    }

    /// Scores are in [0, 1]: a pass mark of 2 rejects every piece of work.
    fn check_scores(&self) -> Result<(), String> {
        let e = &self.evaluate;
        let mut all = vec![("evaluate.pass".to_string(), e.pass)];
        all.extend(
            e.weights
                .iter()
                .map(|(k, w)| (format!("evaluate.weights.{k}"), *w)),
        );
        for (key, v) in all {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{key} = {v}: must be between 0 and 1"));
            }
        }
        Ok(())
    }

    fn check_executors(&self) -> Result<(), String> {
        for (name, x) in &self.executors {
            if let Some(url) = &x.endpoint {
                validate_endpoint_url(url).map_err(|e| format!("executors.{name}: {e}"))?;
            }
            if x.command.as_ref().is_some_and(|c| c.is_empty()) {
                return Err(format!(
                    "executors.{name}.command is empty: give the agent's argv, e.g. [\"my-agent\", \"{{task_id}}\"]"
                ));
            }
        }
        Ok(())
    }
}
