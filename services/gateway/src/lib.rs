//! The gateway: validates job submissions and publishes them as job.created events with publisher confirms.
//!
//! Its behaviour arrives with a later issue; today the crate holds the acknowledgement of the
//! contract versions it is built against (see [`contracts`]).

pub mod contracts;
