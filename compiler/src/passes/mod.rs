//! The semantic passes between parsing and code generation.
pub mod aliases;
pub mod resolve;
pub mod restrict;
pub mod symbols;
pub mod tracepoints;
pub mod types;
pub mod uprobe;
pub mod userpath;
