//! Fair use of the job slots: at most `--type-concurrency` attempts of one job type run at once
//! in this process, so a flood of one type (a thousand one-minute sleeps) cannot take every
//! slot from the others.
//!
//! A job whose type is at its limit is not held in the broker's prefetch window (that would
//! block the jobs of other types queued behind it): it is already stored (PENDING), so its
//! message is acknowledged and the job is *parked* here, in memory, first come first served
//! per type, until a slot of its type frees up. Parking is bounded (`PARK_LIMIT`); beyond it a
//! delivery waits for its type's slot without holding a job slot, and the broker's queue (and
//! the gateway's shedding) takes the pressure. A parked job is durable: if this process dies,
//! the job is still PENDING in the store and the scheduler's sweep of jobs left PENDING starts
//! it (here after a restart, or on any other processor).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use observatory_runtime::shutdown::CancellationToken;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::executor::{BUILT_IN_TYPES, type_label};
use crate::runner::{Claim, JobRunner};

/// Most jobs parked at once (every type together).
pub(crate) const PARK_LIMIT: usize = 10_000;

/// The type labels with a limit of their own: the built-in types and `other`.
fn labels() -> impl Iterator<Item = &'static str> {
    BUILT_IN_TYPES.into_iter().chain(["other"])
}

/// Per-type slots and the jobs parked until one frees up.
pub(crate) struct TypeSlots {
    slots: HashMap<&'static str, Arc<Semaphore>>,
    parked: Mutex<HashMap<&'static str, VecDeque<(Uuid, Claim)>>>,
    wake: HashMap<&'static str, Notify>,
    /// Told whenever the parked jobs may have run out (shutdown waits for it).
    emptied: Notify,
}

/// Whether a job can start now or was parked.
pub(crate) enum Admission {
    /// A slot of its type, and the claim back.
    Now(OwnedSemaphorePermit, Claim),
    /// Parked with its claim; a dispatcher starts it when its type has a free slot.
    Parked,
    /// The parking is full: wait for a slot of the type (given back with the claim).
    Full(Claim),
}

impl TypeSlots {
    pub fn new(per_type: usize) -> Self {
        Self {
            slots: labels()
                .map(|l| (l, Arc::new(Semaphore::new(per_type))))
                .collect(),
            parked: Mutex::new(labels().map(|l| (l, VecDeque::new())).collect()),
            wake: labels().map(|l| (l, Notify::new())).collect(),
            emptied: Notify::new(),
        }
    }

    fn slots(&self, label: &'static str) -> &Arc<Semaphore> {
        // Every label of `type_label` has an entry.
        &self.slots[label]
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, VecDeque<(Uuid, Claim)>>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for a job of `job_type` now, unless jobs of its type are already parked (they
    /// go first); otherwise parks it (its claim kept until it runs).
    pub fn admit(&self, job_type: &str, job_id: Uuid, claim: Claim) -> Admission {
        let label = type_label(job_type);
        let mut parked = self.lock();
        let queue = parked.entry(label).or_default();
        if queue.is_empty()
            && let Ok(permit) = self.slots(label).clone().try_acquire_owned()
        {
            return Admission::Now(permit, claim);
        }
        let total: usize = parked.values().map(VecDeque::len).sum();
        if total >= PARK_LIMIT {
            return Admission::Full(claim);
        }
        parked.entry(label).or_default().push_back((job_id, claim));
        drop(parked);
        self.wake[label].notify_one();
        Admission::Parked
    }

    /// Waits for a slot of `job_type`'s type.
    pub async fn slot(&self, job_type: &str) -> Option<OwnedSemaphorePermit> {
        self.slots(type_label(job_type))
            .clone()
            .acquire_owned()
            .await
            .ok()
    }

    /// Jobs parked now.
    pub fn parked(&self) -> usize {
        self.lock().values().map(VecDeque::len).sum()
    }

    /// Returns once nothing is parked.
    pub async fn wait_until_empty(&self) {
        loop {
            let emptied = self.emptied.notified();
            if self.parked() == 0 {
                return;
            }
            emptied.await;
        }
    }

    fn pop(&self, label: &'static str) -> Option<(Uuid, Claim)> {
        let mut parked = self.lock();
        let next = parked.get_mut(label).and_then(VecDeque::pop_front);
        if parked.values().all(VecDeque::is_empty) {
            self.emptied.notify_waiters();
        }
        next
    }

    fn has_parked(&self, label: &'static str) -> bool {
        self.lock().get(label).is_some_and(|q| !q.is_empty())
    }
}

/// Starts parked jobs of every type as slots free up, until `stop`.
pub(crate) async fn run_dispatchers(runner: Arc<JobRunner>, stop: CancellationToken) {
    let tasks: Vec<_> = labels()
        .map(|label| tokio::spawn(dispatch(runner.clone(), label, stop.clone())))
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// One type's dispatcher: waits for a parked job, then for a slot of its type and a job slot,
/// then runs the longest-parked job of that type.
async fn dispatch(runner: Arc<JobRunner>, label: &'static str, stop: CancellationToken) {
    let slots = &runner.types;
    loop {
        while !slots.has_parked(label) {
            tokio::select! {
                () = slots.wake[label].notified() => {}
                () = stop.cancelled() => return,
            }
        }
        let type_permit = tokio::select! {
            permit = slots.slots(label).clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = stop.cancelled() => return,
        };
        let job_permit = tokio::select! {
            permit = runner.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = stop.cancelled() => return,
        };
        let Some((job_id, claim)) = slots.pop(label) else {
            continue;
        };
        let runner = runner.clone();
        tokio::spawn(async move {
            if let Err(error) = runner.run_next_attempt(job_id).await {
                // It stays PENDING (or RUNNING until its lease runs out) and is picked up again.
                tracing::warn!(%job_id, %error, "running a parked job failed; it will be picked up again");
            }
            drop(claim);
            drop(type_permit);
            drop(job_permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::Claims;

    #[test]
    fn a_type_at_its_limit_parks_first_come_first_served_and_others_still_start() {
        let slots = TypeSlots::new(2);
        let claims = Claims::default();
        let mut held = Vec::new();
        for _ in 0..2 {
            let id = Uuid::new_v4();
            match slots.admit("sleep", id, claims.try_claim(id).unwrap()) {
                Admission::Now(permit, _) => held.push(permit),
                _ => panic!("a free slot"),
            }
        }
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(matches!(
            slots.admit("sleep", a, claims.try_claim(a).unwrap()),
            Admission::Parked
        ));
        assert!(matches!(
            slots.admit("sleep", b, claims.try_claim(b).unwrap()),
            Admission::Parked
        ));
        // Another type is not held up by the parked sleeps.
        let c = Uuid::new_v4();
        assert!(matches!(
            slots.admit("compute", c, claims.try_claim(c).unwrap()),
            Admission::Now(..)
        ));
        // A freed sleep slot does not let a newcomer jump the parked ones.
        held.pop();
        let d = Uuid::new_v4();
        assert!(matches!(
            slots.admit("sleep", d, claims.try_claim(d).unwrap()),
            Admission::Parked
        ));
        assert_eq!(slots.pop("sleep").map(|(id, _)| id), Some(a));
        assert_eq!(slots.pop("sleep").map(|(id, _)| id), Some(b));
        assert_eq!(slots.parked(), 1);
        // Parked jobs keep their claim, so the sweep of stale PENDING jobs leaves them alone.
        assert!(claims.is_claimed(d));
    }
}
