//! Why the processor could not start or had to stop.

use observatory_runtime::http::RouterError;
use observatory_validation::SchemaError;

#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("a contract schema does not compile: {0}")]
    Schema(#[from] SchemaError),
    #[error("building the HTTP router: {0}")]
    Router(#[from] RouterError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    #[error("a processor task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}
