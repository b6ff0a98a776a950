//! Contract versions this crate was reviewed against, and the contract types it uses.
//!
//! This is the one place where this crate states which contract versions it was reviewed
//! against. When `cargo xtask codegen` regenerates a schema with a new version, the line
//! naming it stops compiling: review this crate's use of that schema, then update the version
//! here. Code in this crate reaches contract types only through this module.

observatory_contracts::reviewed_against! {
        api_error::v1 = "1.0.0",
        job_submission::v2 = "2.0.0",
        event_envelope::v1 = "1.0.0",
        health_status::v1 = "1.0.0",
}
