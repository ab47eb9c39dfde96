//! Empty library target: it lets `host` name this crate as a build
//! dependency so cargo rebuilds the host when the probes change. The
//! programs themselves are the `wasmtap-probes` binary.
#![no_std]
