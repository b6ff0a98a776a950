//! The metrics engine: stores every job event once in the event log and counts it once in Redis.
//!
//! Its behaviour arrives with a later issue; today the crate holds the acknowledgement of the
//! contract versions it is built against (see [`contracts`]).

pub mod contracts;
