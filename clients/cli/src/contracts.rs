//! Contract versions this crate was reviewed against (see `observatory_contracts::reviewed_against!`).
//! When `cargo xtask codegen` bumps one of these schemas, its line stops compiling: review how
//! the commands submit, parse or render that type, then acknowledge the new version here.
//! Code in this crate reaches contract types only through this module.

observatory_contracts::reviewed_against! {
    api_error::v1 = "1.0.0",
    event_envelope::v1 = "1.0.0",
    job::v1 = "1.0.0",
    job_acceptance::v1 = "1.0.0",
    job_attempt::v1 = "1.0.0",
    job_detail::v1 = "1.0.0",
    job_page::v1 = "1.0.0",
    job_submission::v2 = "2.0.0",
    page_cursor::v2 = "2.0.0",
}
