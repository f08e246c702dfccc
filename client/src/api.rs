//! A blocking client for a node's HTTP/JSON API.

use std::time::Duration;

use serde_json::Value;

/// Why a call to a node failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The node answered with an error status and its one-line reason.
    #[error("{reason} (HTTP {status})")]
    Refused { status: u16, reason: String },
    #[error("cannot reach the node: {0}")]
    Transport(String),
    #[error("unexpected answer from the node: {0}")]
    BadAnswer(String),
}

/// Largest answer the client reads from a node.
const ANSWER_BYTES_MAX: u64 = 64 * 1024 * 1024;

pub struct ApiClient {
    base: String,
    agent: ureq::Agent,
}

impl ApiClient {
    pub fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Self {
            base: base.trim_end_matches('/').to_string(),
            agent,
        }
    }

    fn answer(
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Vec<u8>, ApiError> {
        let mut response = response.map_err(|e| ApiError::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(ANSWER_BYTES_MAX)
            .read_to_vec()
            .map_err(|e| ApiError::Transport(e.to_string()))?;
        if status >= 400 {
            let reason = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
            return Err(ApiError::Refused { status, reason });
        }
        Ok(body)
    }

    fn json(body: &[u8]) -> Result<Value, ApiError> {
        serde_json::from_slice(body).map_err(|e| ApiError::BadAnswer(e.to_string()))
    }

    pub fn get_json(&self, path: &str) -> Result<Value, ApiError> {
        let url = format!("{}{}", self.base, path);
        Self::json(&Self::answer(self.agent.get(&url).call())?)
    }

    pub fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ApiError> {
        let url = format!("{}{}", self.base, path);
        Self::answer(self.agent.get(&url).call())
    }

    pub fn status(&self) -> Result<Value, ApiError> {
        self.get_json("/v1/status")
    }

    pub fn block(&self, height: u64) -> Result<Value, ApiError> {
        self.get_json(&format!("/v1/blocks/{height}"))
    }

    /// Submits an encoded signed transaction; with `wait`, returns once it is committed.
    pub fn submit(&self, tx: &[u8], wait: bool) -> Result<Value, ApiError> {
        let url = format!(
            "{}/v1/txs{}",
            self.base,
            if wait { "?wait=commit" } else { "" }
        );
        let response = self
            .agent
            .post(&url)
            .header("content-type", "application/octet-stream")
            .send(tx);
        Self::json(&Self::answer(response)?)
    }

    /// POSTs raw bytes and reads a JSON answer.
    pub fn post_bytes(&self, path: &str, body: &[u8]) -> Result<Value, ApiError> {
        let url = format!("{}{}", self.base, path);
        let response = self
            .agent
            .post(&url)
            .header("content-type", "application/octet-stream")
            .send(body);
        Self::json(&Self::answer(response)?)
    }

    /// The signer's last committed nonce, if it ever signed anything.
    pub fn last_nonce(&self, key_hex: &str) -> Result<Option<u64>, ApiError> {
        let v = self.get_json(&format!("/v1/nonce/{key_hex}"))?;
        Ok(v.get("last_nonce").and_then(Value::as_u64))
    }
}
