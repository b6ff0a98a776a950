//! What the binary's end-to-end tests share: the `observatory` command without the settings a
//! developer's environment might hold, and free ports.

#![allow(dead_code)] // each test file uses its own part

use std::process::Command;

/// Variables that would make `up` use a server, or change its addresses, if the test's own
/// environment had them.
pub const INHERITED: [&str; 14] = [
    "OBSERVATORY_RABBITMQ_URL",
    "OBSERVATORY_POSTGRES_URL",
    "OBSERVATORY_REDIS_URL",
    "OBSERVATORY_MONGODB_URL",
    "OBSERVATORY_DATA_DIR",
    "OBSERVATORY_GATEWAY_ADDR",
    "OBSERVATORY_READ_MODEL_ADDR",
    "OBSERVATORY_PROCESSOR_ADDR",
    "OBSERVATORY_METRICS_ENGINE_ADDR",
    "OBSERVATORY_BROKER_PREFIX",
    "OBSERVATORY_REDIS_PREFIX",
    "OBSERVATORY_MONGODB_DATABASE",
    "OBSERVATORY_GATEWAY_URL",
    "OBSERVATORY_READ_MODEL_URL",
];

/// The `observatory` binary of this build, with a clean environment for its settings.
pub fn observatory() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_observatory"));
    for name in INHERITED {
        command.env_remove(name);
    }
    command
}

/// A local port that was free a moment ago (for a process that must restart on the same one).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// `up`'s flags for this machine's servers, under prefixes and a database of its own.
pub async fn real_server_args(name: &str) -> Vec<String> {
    use observatory_test_support::{fresh_postgres_database, mongodb_url, rabbitmq_url, redis_url};
    [
        "--rabbitmq-url",
        &rabbitmq_url(),
        "--postgres-url",
        &fresh_postgres_database().await,
        "--redis-url",
        &redis_url(),
        "--mongodb-url",
        &mongodb_url(),
        "--broker-prefix",
        name,
        "--redis-prefix",
        name,
        "--mongodb-database",
        name,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Deletes the queues of the broker prefix `name` on this machine's RabbitMQ.
pub async fn delete_queues(name: &str) {
    use observatory_messaging::{BrokerConnector, RabbitMq, Topology};
    let broker = RabbitMq::new(
        observatory_test_support::rabbitmq_url(),
        Topology::new(name),
    )
    .connect()
    .await
    .expect("RabbitMQ");
    let _ = broker.delete_queues().await;
}
