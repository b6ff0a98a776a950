//! The embedded broker's journal: every queued message also lives in a SQLite file until it is
//! settled, so that a crash of the process loses nothing a publish confirmed.
//!
//! One writer task owns the database and commits in groups: it takes every operation waiting
//! when it wakes (inserts of publishes, deletes of settlements) and applies them in one
//! transaction, so that many concurrent publishes cost one commit. A publish is confirmed only
//! after its commit; a settlement's delete is not waited for (lost by a crash, it only means
//! the message is delivered again, which consumers absorb). The file uses write-ahead logging
//! with `synchronous = NORMAL` (see `observatory-sqlite`): a commit survives a crash of the
//! process, not necessarily of the machine.

use observatory_sqlite::{Location, SqlitePool};
use sqlx::{QueryBuilder, Sqlite};
use tokio::sync::{mpsc, oneshot};

use crate::{BrokerError, MessageMeta};

/// Most operations applied in one transaction.
const GROUP: usize = 1024;
/// Most ids one `DELETE … IN (…)` binds.
const DELETE_CHUNK: usize = 500;

/// One message as the journal keeps it, for one queue.
#[derive(Debug, Clone)]
pub(crate) struct JournalRow {
    pub queue: String,
    pub exchange: String,
    pub routing_key: String,
    pub meta: MessageMeta,
    pub body: Vec<u8>,
}

/// A row of the `messages` table.
#[derive(sqlx::FromRow)]
struct StoredRow {
    id: i64,
    queue: String,
    exchange: String,
    routing_key: String,
    message_id: Option<String>,
    correlation_id: Option<String>,
    headers: String,
    body: Vec<u8>,
}

enum Op {
    Insert {
        rows: Vec<JournalRow>,
        reply: oneshot::Sender<Result<Vec<i64>, String>>,
    },
    Delete(Vec<i64>),
    Clear(oneshot::Sender<Result<(), String>>),
}

/// The journal's handle; cheap to clone.
#[derive(Clone)]
pub(crate) struct Journal {
    ops: mpsc::UnboundedSender<Op>,
    location: String,
}

fn failed(error: impl std::fmt::Display) -> String {
    error.to_string()
}

impl Journal {
    /// Opens (creating when missing) the journal at `location`; returns it with the messages
    /// it holds, by queue in publish order, each with its row id.
    pub async fn open(location: &Location) -> Result<(Self, Vec<(i64, JournalRow)>), BrokerError> {
        let journal_error = |e: String| BrokerError::Journal(format!("{location}: {e}"));
        // One connection: the writer is the only user.
        let pool = observatory_sqlite::open(location, 1)
            .await
            .map_err(|e| journal_error(e.to_string()))?;
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS messages (\
               id INTEGER PRIMARY KEY AUTOINCREMENT, \
               queue TEXT NOT NULL, exchange TEXT NOT NULL, routing_key TEXT NOT NULL, \
               message_id TEXT, correlation_id TEXT, headers TEXT NOT NULL, body BLOB NOT NULL\
             ) STRICT",
        )
        .execute(&pool)
        .await
        .map_err(|e| journal_error(failed(e)))?;
        let stored: Vec<StoredRow> = sqlx::query_as(
            "SELECT id, queue, exchange, routing_key, message_id, correlation_id, headers, body \
             FROM messages ORDER BY id",
        )
        .fetch_all(&pool)
        .await
        .map_err(|e| journal_error(failed(e)))?;
        let mut rows = Vec::with_capacity(stored.len());
        for row in stored {
            let id = row.id;
            let headers = serde_json::from_str::<Vec<(String, String)>>(&row.headers)
                .map_err(|e| journal_error(format!("message {id} has unreadable headers: {e}")))?;
            rows.push((
                id,
                JournalRow {
                    queue: row.queue,
                    exchange: row.exchange,
                    routing_key: row.routing_key,
                    meta: MessageMeta {
                        message_id: row.message_id,
                        correlation_id: row.correlation_id,
                        headers,
                    },
                    body: row.body,
                },
            ));
        }
        let (ops, receiver) = mpsc::unbounded_channel();
        tokio::spawn(write(pool, receiver));
        Ok((
            Self {
                ops,
                location: location.to_string(),
            },
            rows,
        ))
    }

    /// Stores `rows` durably (one commit with whatever else is waiting); their ids, in order.
    pub async fn insert(&self, rows: Vec<JournalRow>) -> Result<Vec<i64>, BrokerError> {
        let (reply, answer) = oneshot::channel();
        self.ops
            .send(Op::Insert { rows, reply })
            .map_err(|_| self.stopped())?;
        answer
            .await
            .map_err(|_| self.stopped())?
            .map_err(|e| BrokerError::Journal(format!("{}: {e}", self.location)))
    }

    /// Forgets settled messages (not waited for: see the module documentation).
    pub fn delete(&self, ids: Vec<i64>) {
        if !ids.is_empty() && self.ops.send(Op::Delete(ids)).is_err() {
            tracing::debug!(
                "the journal is closed; settled messages are delivered again after a restart"
            );
        }
    }

    /// Forgets every message.
    pub async fn clear(&self) -> Result<(), BrokerError> {
        let (reply, answer) = oneshot::channel();
        self.ops
            .send(Op::Clear(reply))
            .map_err(|_| self.stopped())?;
        answer
            .await
            .map_err(|_| self.stopped())?
            .map_err(|e| BrokerError::Journal(format!("{}: {e}", self.location)))
    }

    /// Where it is, for logs and banners.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn stopped(&self) -> BrokerError {
        BrokerError::Journal(format!("{}: the journal's writer stopped", self.location))
    }
}

/// The writer: applies every waiting operation in one transaction, then answers them.
async fn write(pool: SqlitePool, mut ops: mpsc::UnboundedReceiver<Op>) {
    let mut group = Vec::with_capacity(GROUP);
    while let Some(first) = ops.recv().await {
        group.push(first);
        while group.len() < GROUP {
            match ops.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        match apply(&pool, &group).await {
            Ok(mut ids) => {
                for op in group.drain(..) {
                    match op {
                        Op::Insert { rows, reply } => {
                            let rest = ids.split_off(rows.len().min(ids.len()));
                            let _ = reply.send(Ok(std::mem::replace(&mut ids, rest)));
                        }
                        Op::Clear(reply) => {
                            let _ = reply.send(Ok(()));
                        }
                        Op::Delete(_) => {}
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "the embedded broker's journal could not commit");
                for op in group.drain(..) {
                    match op {
                        Op::Insert { reply, .. } => {
                            let _ = reply.send(Err(error.clone()));
                        }
                        Op::Clear(reply) => {
                            let _ = reply.send(Err(error.clone()));
                        }
                        Op::Delete(_) => {}
                    }
                }
            }
        }
    }
    pool.close().await;
}

/// One transaction: every insert (their ids in order), delete and clear of `group`.
async fn apply(pool: &SqlitePool, group: &[Op]) -> Result<Vec<i64>, String> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(failed)?;
    let mut ids = Vec::new();
    for op in group {
        match op {
            Op::Insert { rows, .. } => {
                for row in rows {
                    let headers = serde_json::to_string(&row.meta.headers).map_err(failed)?;
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO messages \
                         (queue, exchange, routing_key, message_id, correlation_id, headers, body) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
                    )
                    .bind(&row.queue)
                    .bind(&row.exchange)
                    .bind(&row.routing_key)
                    .bind(&row.meta.message_id)
                    .bind(&row.meta.correlation_id)
                    .bind(headers)
                    .bind(&row.body)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(failed)?;
                    ids.push(id);
                }
            }
            Op::Delete(deleted) => {
                for chunk in deleted.chunks(DELETE_CHUNK) {
                    let mut query =
                        QueryBuilder::<Sqlite>::new("DELETE FROM messages WHERE id IN (");
                    let mut list = query.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    list.push_unseparated(")");
                    query.build().execute(&mut *tx).await.map_err(failed)?;
                }
            }
            Op::Clear(_) => {
                sqlx::query("DELETE FROM messages")
                    .execute(&mut *tx)
                    .await
                    .map_err(failed)?;
            }
        }
    }
    tx.commit().await.map_err(failed)?;
    Ok(ids)
}
