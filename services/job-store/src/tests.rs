//! Tests of one adapter's internals (schema, query plans), and of the two adapters together.
//! Behaviour that both adapters share is tested in `conformance.rs`.

use chrono::{SubsecRound, TimeDelta, Utc};
use observatory_sqlite::Location;
use sqlx::postgres::Postgres;
use sqlx::sqlite::Sqlite;
use sqlx::{PgPool, QueryBuilder};
use uuid::Uuid;

use crate::conformance::producer;
use crate::contracts::job::JobStatus;
use crate::contracts::job_created::JobCreated;
use crate::contracts::job_page::JobPage;
use crate::cursor::Keyset;
use crate::{JobFilter, JobStore, PostgresJobStore, SqliteJobStore, now, push_job_page_clauses};

fn created(job_id: Uuid, job_type: &str, submitted_at: chrono::DateTime<Utc>) -> JobCreated {
    serde_json::from_value(serde_json::json!({
        "contractVersion": "1.0.0",
        "eventType": "job.created",
        "eventId": Uuid::new_v4(),
        "occurredAt": submitted_at,
        "producer": {"service": "gateway", "instanceId": "gateway-1", "version": "0.1.0"},
        "correlationId": "req-1",
        "idempotencyKey": format!("{job_id}:created"),
        "payload": {
            "jobId": job_id,
            "type": job_type,
            "payload": {},
            "maxAttempts": 3,
            "submittedAt": submitted_at,
        }
    }))
    .expect("a valid job.created event")
}

/// The filter combinations of a job page, and for PostgreSQL the index that should answer
/// each: a selective filter (1% of the jobs are FAILED, 1% are of type fail) its own index, a
/// common one any (…, created_at, id) index.
fn page_filters() -> Vec<(JobFilter, &'static str)> {
    let by_status = |status| JobFilter {
        status: Some(status),
        ..JobFilter::default()
    };
    let by_type = |job_type: &str| JobFilter {
        job_type: Some(job_type.parse().expect("a job type")),
        ..JobFilter::default()
    };
    vec![
        (JobFilter::default(), "jobs_created_idx"),
        (by_status(JobStatus::Failed), "jobs_status_created_idx"),
        (by_type("fail"), "jobs_type_created_idx"),
        (by_status(JobStatus::Completed), "_created_idx"),
        (
            JobFilter {
                status: Some(JobStatus::Failed),
                ..by_type("sleep")
            },
            "_created_idx",
        ),
        (
            JobFilter {
                created_after: Some(now() - TimeDelta::hours(2)),
                created_before: Some(now()),
                ..JobFilter::default()
            },
            "jobs_created_idx",
        ),
    ]
}

#[test]
fn an_id_prefix_is_the_range_of_ids_that_start_with_it() {
    use crate::JobIdPrefix;
    let range = |text: &str| JobIdPrefix::parse(text).map(|p| p.range());
    let id = |text: &str| Uuid::parse_str(text).expect("a uuid");
    assert_eq!(
        range("0b4B"),
        Some((
            id("0b4b0000-0000-0000-0000-000000000000"),
            id("0b4bffff-ffff-ffff-ffff-ffffffffffff")
        ))
    );
    let whole = "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d11";
    assert_eq!(range(whole), Some((id(whole), id(whole))));
    assert_eq!(range(&whole.replace('-', "")), Some((id(whole), id(whole))));
    for bad in [
        "",
        "-",
        "0b4g",
        "0b4bd3a4-94b4-4b4e-9a35-3a1d6f6c9d110",
        "zz",
    ] {
        assert_eq!(range(bad), None, "{bad:?}");
    }
}

// ----- PostgreSQL only -----------------------------------------------------------------------

/// Every filter combination of a job page is answered from an index, in index order (no Seq
/// Scan on jobs, no Sort), on a table large enough that the planner has a real choice.
#[tokio::test]
async fn postgres_every_job_page_query_is_an_index_scan_without_sort() {
    let url = observatory_test_support::fresh_postgres_database().await;
    let store = PostgresJobStore::connect(&url, 2, producer())
        .await
        .expect("connect");
    sqlx::query(
        "INSERT INTO jobs (id, type, status, payload, attempts, runs, max_attempts, correlation_id, created_at, updated_at) \
         SELECT gen_random_uuid(), CASE WHEN i % 100 = 1 THEN 'fail' ELSE 'sleep' END, \
                CASE WHEN i % 100 = 0 THEN 'FAILED' ELSE 'COMPLETED' END, \
                '{}', 1, 1, 3, 'corr', now() - i * interval '1 second', now() \
         FROM generate_series(1, 20000) AS i",
    )
    .execute(&store.pool)
    .await
    .expect("fill");
    sqlx::query("ANALYZE jobs")
        .execute(&store.pool)
        .await
        .expect("analyze");

    let cursor = Keyset {
        at: now() - TimeDelta::hours(1),
        id: Uuid::new_v4(),
    };
    for (filter, index) in &page_filters() {
        for after in [None, Some(cursor)] {
            let mut query = QueryBuilder::<Postgres>::new("EXPLAIN SELECT * FROM jobs");
            crate::postgres::push_job_page(&mut query, filter, after, 101);
            let plan: Vec<String> = query
                .build_query_scalar()
                .fetch_all(&store.pool)
                .await
                .expect("explain");
            let plan = plan.join("\n");
            assert!(
                plan.contains("Index Scan using"),
                "{filter:?} {after:?}:\n{plan}"
            );
            assert!(
                plan.contains(index),
                "{filter:?} {after:?} uses {index}:\n{plan}"
            );
            assert!(!plan.contains("Seq Scan"), "{filter:?} {after:?}:\n{plan}");
            assert!(!plan.contains("Sort"), "{filter:?} {after:?}:\n{plan}");
        }
    }
}

#[tokio::test]
async fn postgres_migrations_apply_once_and_create_every_table() {
    let url = observatory_test_support::fresh_postgres_database().await;
    let store = PostgresJobStore::connect(&url, 2, producer())
        .await
        .expect("connect");
    store.ping().await.expect("ping");
    let db = PgPool::connect(&url).await.expect("second pool");
    for table in ["jobs", "job_attempts", "outbox", "dead_letters"] {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(table)
            .fetch_one(&db)
            .await
            .expect("regclass");
        assert!(exists, "table {table}");
    }
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM _sqlx_migrations")
            .fetch_one(&db)
            .await
            .expect("count")
    };
    let applied = count().await;
    // A second process connecting to the same database applies nothing again.
    let again = PostgresJobStore::with_pool(db.clone(), producer())
        .await
        .expect("migrate again");
    again.ping().await.expect("ping");
    assert_eq!(count().await, applied);
    // The status column accepts only the contract's statuses.
    let bad = sqlx::query(
        "INSERT INTO jobs (id, type, status, payload, attempts, max_attempts, correlation_id, created_at, updated_at) \
         VALUES (gen_random_uuid(), 'sleep', 'DONE', '{}', 0, 1, 'c', now(), now())",
    )
    .execute(&db)
    .await;
    assert!(bad.is_err(), "CHECK rejects an unknown status");
}

// ----- SQLite only ---------------------------------------------------------------------------

#[tokio::test]
async fn sqlite_migrations_apply_once_and_constrain_every_value() {
    let store = SqliteJobStore::open(&Location::Memory, producer())
        .await
        .expect("open");
    let db = store.pool.clone();
    for table in ["jobs", "job_attempts", "outbox", "dead_letters"] {
        let strict: i64 =
            sqlx::query_scalar("SELECT strict FROM pragma_table_list WHERE name = ?1")
                .bind(table)
                .fetch_one(&db)
                .await
                .expect("table exists");
        assert_eq!(strict, 1, "table {table} is STRICT");
    }
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&db)
        .await
        .expect("count");
    assert!(applied >= 1);
    sqlx::migrate!("./migrations/sqlite")
        .run(&db)
        .await
        .expect("migrate again");
    let again: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&db)
        .await
        .expect("count");
    assert_eq!(again, applied, "nothing applied twice");

    let insert = |status: &'static str, created_at: &'static str| {
        let sql = format!(
            "INSERT INTO jobs (id, type, status, payload, attempts, max_attempts, correlation_id, created_at, updated_at) \
             VALUES (randomblob(16), 'sleep', '{status}', '{{}}', 0, 1, 'c', {created_at}, 0)"
        );
        let db = db.clone();
        async move { sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&db).await }
    };
    insert("PENDING", "0").await.expect("a valid row");
    assert!(
        insert("DONE", "0").await.is_err(),
        "CHECK rejects an unknown status"
    );
    assert!(
        insert("PENDING", "'2026-01-01T00:00:00Z'").await.is_err(),
        "STRICT rejects a timestamp that is not integer microseconds"
    );
    store.close().await;
}

/// Every job page query walks an index in order: no temporary B-tree for the ORDER BY.
#[tokio::test]
async fn sqlite_every_job_page_query_walks_an_index_without_sorting() {
    let store = SqliteJobStore::open(&Location::Memory, producer())
        .await
        .expect("open");
    let cursor = Keyset {
        at: now() - TimeDelta::hours(1),
        id: Uuid::new_v4(),
    };
    for (filter, _) in &page_filters() {
        for after in [None, Some(cursor)] {
            let mut query = QueryBuilder::<Sqlite>::new("EXPLAIN QUERY PLAN SELECT * FROM jobs");
            push_job_page_clauses(&mut query, filter, after, 101, |at| at.timestamp_micros());
            let plan: Vec<String> = query
                .build()
                .fetch_all(&store.pool)
                .await
                .expect("explain")
                .iter()
                .map(|row| sqlx::Row::get::<String, _>(row, "detail"))
                .collect();
            let plan = plan.join("\n");
            assert!(
                plan.contains("USING INDEX"),
                "{filter:?} {after:?}:\n{plan}"
            );
            assert!(
                !plan.contains("TEMP B-TREE"),
                "{filter:?} {after:?}:\n{plan}"
            );
        }
    }
}

// ----- both ----------------------------------------------------------------------------------

/// The same jobs in both stores page identically, and a cursor one adapter issued continues
/// the walk in the other: cursors are part of the port, not of an adapter.
#[tokio::test]
async fn cursors_are_interchangeable_between_adapters() {
    let url = observatory_test_support::fresh_postgres_database().await;
    let postgres = PostgresJobStore::connect(&url, 2, producer())
        .await
        .expect("connect");
    let sqlite = SqliteJobStore::open(&Location::Memory, producer())
        .await
        .expect("open");
    let stores: [&dyn JobStore; 2] = [&postgres, &sqlite];
    let base = Utc::now().trunc_subsecs(6) - TimeDelta::days(1);
    for i in 0..9 {
        // Triples share a creation time (with nanoseconds the stores drop), so ids break ties.
        let at = base + TimeDelta::seconds(i / 3) + TimeDelta::nanoseconds(i * 7);
        let event = created(Uuid::new_v4(), "sleep", at);
        for store in stores {
            store.accept(&event).await.expect("accept");
        }
    }
    // `updatedAt` is each store's own clock; the position of a job is `(createdAt, id)`.
    let positions = |page: &JobPage| {
        page.items
            .iter()
            .map(|j| (j.created_at, j.id))
            .collect::<Vec<_>>()
    };
    let filter = JobFilter::default();
    let first = postgres.list_jobs(&filter, 4, None).await.expect("page");
    let first_sqlite = sqlite.list_jobs(&filter, 4, None).await.expect("page");
    assert_eq!(positions(&first), positions(&first_sqlite));
    assert_eq!(
        first.next_cursor, first_sqlite.next_cursor,
        "the same cursor"
    );
    let cursor = first.next_cursor.clone().expect("more pages");
    let from_postgres = postgres
        .list_jobs(&filter, 4, Some(cursor.as_str()))
        .await
        .expect("page");
    let from_sqlite = sqlite
        .list_jobs(&filter, 4, Some(cursor.as_str()))
        .await
        .expect("page");
    assert_eq!(from_postgres.items.len(), 4);
    assert_eq!(positions(&from_postgres), positions(&from_sqlite));
    assert_ne!(
        positions(&from_postgres)[0],
        positions(&first)[3],
        "no overlap"
    );
}
