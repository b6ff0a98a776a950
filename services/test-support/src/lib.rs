//! Shared by the service crates' tests (as a dev-dependency): where the real servers are, and
//! names that keep concurrent tests and runs apart. Tests talk to real PostgreSQL, Redis,
//! RabbitMQ and a MongoDB wire-protocol server; `cargo xtask test` makes sure they run.
//!
//! Isolation: every test gets its own PostgreSQL database ([`fresh_postgres_database`]) and
//! uses [`unique_name`] as its Redis key prefix, MongoDB database and RabbitMQ exchange/queue
//! prefix, so tests run in parallel and runs never see each other's data.

pub mod fuzz;

use std::sync::atomic::{AtomicU32, Ordering};

/// Prefix of every database and name the tests create; `cargo xtask test` drops leftover
/// PostgreSQL databases with this prefix before a run.
pub const TEST_PREFIX: &str = "obs_test";

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

/// An administrative PostgreSQL URL (a database that exists, with rights to create databases).
pub fn postgres_url() -> String {
    env_or(
        "OBSERVATORY_TEST_POSTGRES_URL",
        "postgres://postgres@127.0.0.1:5432/postgres",
    )
}

pub fn redis_url() -> String {
    env_or("OBSERVATORY_TEST_REDIS_URL", "redis://127.0.0.1:6379")
}

pub fn rabbitmq_url() -> String {
    env_or(
        "OBSERVATORY_TEST_RABBITMQ_URL",
        "amqp://guest:guest@127.0.0.1:5672/%2f",
    )
}

pub fn mongodb_url() -> String {
    env_or(
        "OBSERVATORY_TEST_MONGODB_URL",
        "mongodb://127.0.0.1:27017/?directConnection=true",
    )
}

/// A name no other test or run uses: `obs_test_<pid>_<counter>_<random>`, lowercase ASCII,
/// usable as a database name, key prefix or queue prefix.
pub fn unique_name() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{TEST_PREFIX}_{}_{n}_{}", std::process::id(), &random[..6])
}

/// Creates an empty PostgreSQL database for one test and returns its URL.
pub async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let admin = postgres_url();
    let name = unique_name();
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is not reachable ({e}); run `cargo xtask test`, which starts it"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("creating test database {name}: {e}"));
    let base = admin
        .rsplit_once('/')
        .map_or(admin.as_str(), |(base, _)| base);
    format!("{base}/{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_names_differ_and_are_identifiers() {
        let (a, b) = (unique_name(), unique_name());
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{a}"
        );
    }
}
