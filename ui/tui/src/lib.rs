//! The terminal UI: overview, jobs, job detail, events, dead letters, alerts and a submit form.
//!
//! Its behaviour arrives with a later issue; today the crate holds the acknowledgement of the
//! contract versions it is built against (see [`contracts`]).

pub mod contracts;
