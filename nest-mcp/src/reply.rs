//! Notifications a handler sends while it works: the first one turns the response into an
//! event stream, which carries them and then the result.

use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::RequestMeta;

/// The way back to the client while a request runs. Notifications sent after the handler has
/// returned its result are dropped (the stream ends with the result).
#[derive(Debug, Clone)]
pub struct Reply {
    tx: mpsc::Sender<Value>,
    progress_token: Option<Value>,
    log_level: Option<usize>,
}

/// Syslog levels, least severe first (MCP's `LoggingLevel`).
const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

fn rank(level: &str) -> Option<usize> {
    LEVELS.iter().position(|l| *l == level)
}

impl Reply {
    pub(crate) fn new(tx: mpsc::Sender<Value>, meta: &RequestMeta) -> Self {
        Self {
            tx,
            progress_token: meta.progress_token().cloned(),
            log_level: meta.log_level().and_then(rank),
        }
    }

    /// Sends notification `method` with `params`; `false` when the client has gone.
    pub async fn notify(&self, method: &str, params: Value) -> bool {
        let message = json!({"jsonrpc": "2.0", "method": method, "params": params});
        self.tx.send(message).await.is_ok()
    }

    /// Reports progress, when the client asked for it (a `progressToken` in `_meta`).
    pub async fn progress(&self, progress: f64, total: Option<f64>, message: &str) -> bool {
        let Some(token) = &self.progress_token else {
            return true;
        };
        let mut params = json!({"progressToken": token, "progress": progress, "message": message});
        if let Some(total) = total {
            params["total"] = json!(total);
        }
        self.notify("notifications/progress", params).await
    }

    /// Sends a log message at `level`, when the client asked for this level or a lower one
    /// (`io.modelcontextprotocol/logLevel` in `_meta`); without it, nothing is logged.
    pub async fn log(&self, level: &str, logger: &str, data: Value) -> bool {
        match (self.log_level, rank(level)) {
            (Some(wanted), Some(this)) if this >= wanted => {
                let params = json!({"level": level, "logger": logger, "data": data});
                self.notify("notifications/message", params).await
            }
            _ => true,
        }
    }
}
