//! What the emulation saw: every request with its verb and response code (tests count API calls
//! from it, a benchmark counts tens of thousands), and the requests it could not emulate, which
//! must fail a test loudly instead of passing by accident.

use std::fmt;

/// The apiserver's verb of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    Exec,
    /// Anything the router did not recognize.
    Other,
}

/// One `pods/exec` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecCall {
    pub pod: String,
    pub container: String,
    pub argv: Vec<String>,
}

/// One request as received and answered.
#[derive(Clone, Debug)]
pub struct RequestRecord {
    pub method: String,
    pub path: String,
    pub query: String,
    pub verb: Verb,
    /// The resource's plural (`pods`, `volumesnapshots`), `None` for unrecognized paths.
    pub resource: Option<&'static str>,
    pub subresource: Option<String>,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// The HTTP status sent; 101 for an upgraded exec, 0 when the connection was dropped.
    pub code: u16,
    pub exec: Option<ExecCall>,
}

/// A request the emulation does not implement.
#[derive(Clone, Debug)]
pub struct Unexpected {
    pub method: String,
    pub path: String,
    pub query: String,
    pub why: String,
}

impl fmt::Display for Unexpected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let q = if self.query.is_empty() {
            String::new()
        } else {
            format!("?{}", self.query)
        };
        write!(f, "{} {}{q}: {}", self.method, self.path, self.why)
    }
}

#[derive(Default)]
pub struct Log {
    pub requests: Vec<RequestRecord>,
    pub unexpected: Vec<Unexpected>,
}
