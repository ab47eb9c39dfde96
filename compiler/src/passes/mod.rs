//! The semantic passes between parsing and code generation.
pub mod aliases;
pub mod resolve;
pub mod symbols;
pub mod types;
