//! The read model: the read-only HTTP surface for the terminal UI and the web dashboard.
//!
//! Its behaviour arrives with a later issue; today the crate holds the acknowledgement of the
//! contract versions it is built against (see [`contracts`]).

pub mod contracts;
