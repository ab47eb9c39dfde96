//! Multi-tenant tracing: a root daemon runs unprivileged users' scripts
//! under the operator's [`crate::policy`], and a client that feels like the
//! local CLI.

pub mod client;
pub mod protocol;
pub mod server;
pub mod target;
