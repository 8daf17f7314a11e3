//! The results file the load generator writes: the types of `feedbench-results`, re-exported
//! so `crate::results::X` names them throughout the load generator.
//!
//! The types, `schema.json` and its validation live in the `feedbench-results` crate, the
//! one contract with `report`, `compare`, `validate` and CI. Filling them is the load
//! generator's job: a scenario builds its [`ScenarioResult`], the runner its [`Results`] and
//! writes it with [`write_json_atomic`], and `crossing` computes the [`P99Limit`].

pub use feedbench_results::*;
