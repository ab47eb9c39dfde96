//! wasmtap: SystemTap-style tracing with eBPF capture and Wasm handlers.
//!
//! The binary's pipeline: [`catalog`] describes the system to the compiler,
//! the compiler (`wasmtap-compiler`) turns a script into a bundle, and
//! [`session`] runs it: [`kernel`] loads and attaches the eBPF side and
//! drains records, [`sandbox`] runs the handlers in wasmtime.

pub mod catalog;
pub mod daemon;
pub mod elf;
pub mod kernel;
pub mod output;
pub mod plugin;
pub mod policy;
pub mod sandbox;
pub mod session;
pub mod signals;
pub mod stacks;
pub mod target;
