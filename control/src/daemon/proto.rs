//! The control socket's protocol: one JSON object per line each way.
//! Request: `{"cmd": "add-br", "args": ["br-int"]}`.
//! Reply: `{"ok": true, "output": "..."}` or `{"ok": false, "error": "..."}`.

use serde::{Deserialize, Serialize};

/// A request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// Command name (`show`, `add-br`, ...).
    pub cmd: String,
    /// Its arguments, as on the command line.
    #[serde(default)]
    pub args: Vec<String>,
    /// `json` for machine-readable output of read commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// A reply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Success.
    pub ok: bool,
    /// Output to print (success).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub output: String,
    /// What went wrong (failure), one line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

impl Reply {
    /// A success with output.
    pub fn ok(output: impl Into<String>) -> Reply {
        Reply {
            ok: true,
            output: output.into(),
            error: String::new(),
        }
    }

    /// A failure.
    pub fn err(error: impl Into<String>) -> Reply {
        Reply {
            ok: false,
            output: String::new(),
            error: error.into(),
        }
    }
}
