//! feedbench-netem (work in progress).
pub mod error;
pub mod link;
pub mod profiles;
pub mod spec;
