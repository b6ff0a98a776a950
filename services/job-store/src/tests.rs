//! Tests that need the crate's internals: the page query's plan.

use super::*;

fn producer() -> EventProducer {
    serde_json::from_value(serde_json::json!({
        "service": "processor", "instanceId": "test", "version": "0.0.0"
    }))
    .expect("a valid producer")
}

/// Every filter combination of a job page is answered from an index, in index order (no Seq
/// Scan on jobs, no Sort), on a table large enough that the planner has a real choice.
#[tokio::test]
async fn every_job_page_query_is_an_index_scan_without_sort() {
    let url = observatory_test_support::fresh_postgres_database().await;
    let store = JobStore::connect(&url, 2, producer()).await.unwrap();
    sqlx::query(
        "INSERT INTO jobs (id, type, status, payload, attempts, max_attempts, correlation_id, created_at, updated_at) \
         SELECT gen_random_uuid(), CASE WHEN i % 100 = 1 THEN 'fail' ELSE 'sleep' END, \
                CASE WHEN i % 100 = 0 THEN 'FAILED' ELSE 'COMPLETED' END, \
                '{}', 1, 3, 'corr', now() - i * interval '1 second', now() \
         FROM generate_series(1, 20000) AS i",
    )
    .execute(&store.pool)
    .await
    .unwrap();
    sqlx::query("ANALYZE jobs")
        .execute(&store.pool)
        .await
        .unwrap();

    let cursor = Keyset {
        at: now() - chrono::TimeDelta::hours(1),
        id: Uuid::new_v4(),
    };
    let since = now() - chrono::TimeDelta::hours(2);
    let by_status = |status| JobFilter {
        status: Some(status),
        ..JobFilter::default()
    };
    let by_type = |job_type: &str| JobFilter {
        job_type: Some(job_type.parse().unwrap()),
        ..JobFilter::default()
    };
    // Each filter and the index that should answer it: a selective filter (1% of the jobs
    // are FAILED, 1% are of type fail) its own index, a common one any (…, created_at, id) index.
    let filters = [
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
                created_after: Some(since),
                created_before: Some(now()),
                ..JobFilter::default()
            },
            "jobs_created_idx",
        ),
    ];
    for (filter, index) in &filters {
        for after in [None, Some(cursor)] {
            let mut query = QueryBuilder::<Postgres>::new("EXPLAIN SELECT * FROM jobs");
            push_job_page_clauses(&mut query, filter, after, 101);
            let plan: Vec<String> = query
                .build_query_scalar()
                .fetch_all(&store.pool)
                .await
                .unwrap();
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
