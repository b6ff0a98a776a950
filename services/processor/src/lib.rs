//! The processor: runs jobs, owns their state in PostgreSQL and announces every change through a transactional outbox.
//!
//! Its behaviour arrives with a later issue; today the crate holds the acknowledgement of the
//! contract versions it is built against (see [`contracts`]).

pub mod contracts;
