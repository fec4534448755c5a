//! Many jobs, at most `limit` of them at a time, each result in its job's
//! place: the two ways a batch of certificates runs its work (blocking
//! preflights on threads, ACME orders as futures on one runtime). A job's
//! result is its own; one failing never stops or changes another.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

/// `f` on every item, on at most `limit` threads at once; the results in
/// the items' order. Blocking work (the preflight's connects and reads).
/// Should no thread start, the items are done here, one after another.
pub fn on_threads<T, R, F>(items: &[T], limit: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let next = AtomicUsize::new(0);
    let slots: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            let Some(item) = items.get(i) else { break };
            let result = f(item);
            if let Some(Ok(mut slot)) = slots.get(i).map(Mutex::lock) {
                *slot = Some(result);
            }
        }
    };
    std::thread::scope(|scope| {
        let workers = limit.max(1).min(items.len());
        let started = (0..workers)
            .filter(|_| {
                std::thread::Builder::new()
                    .spawn_scoped(scope, work)
                    .is_ok()
            })
            .count();
        if started == 0 {
            work();
        }
    });
    // Every slot is filled: a worker that panicked would have re-raised its
    // panic when the scope ended.
    slots
        .into_iter()
        .filter_map(|slot| slot.into_inner().ok().flatten())
        .collect()
}

/// Awaits `futures` with at most `limit` of them in progress (the next one
/// starts as soon as one finishes); their outputs in the futures' order.
/// One task: the futures may borrow (an account, the responder) and need
/// not be `Send`.
pub async fn in_order<F: Future>(limit: usize, futures: Vec<F>) -> Vec<F::Output> {
    let limit = limit.max(1);
    let mut waiting: Vec<Option<Pin<Box<F>>>> =
        futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = waiting.iter().map(|_| None).collect();
    let mut active: Vec<usize> = Vec::with_capacity(limit);
    let mut next = 0;
    std::future::poll_fn(|cx| {
        loop {
            while active.len() < limit && next < waiting.len() {
                active.push(next);
                next += 1;
            }
            let before = active.len();
            active.retain(|&i| {
                let Some(Some(future)) = waiting.get_mut(i) else {
                    return false;
                };
                match future.as_mut().poll(cx) {
                    Poll::Pending => true,
                    Poll::Ready(output) => {
                        if let Some(slot) = outputs.get_mut(i) {
                            *slot = Some(output);
                        }
                        if let Some(done) = waiting.get_mut(i) {
                            *done = None;
                        }
                        false
                    }
                }
            });
            if active.is_empty() && next >= waiting.len() {
                return Poll::Ready(());
            }
            // Nothing finished: every active future has registered its
            // wake-up. Something did: start the next ones at once.
            if active.len() == before {
                return Poll::Pending;
            }
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::time::{Duration, Instant};

    /// Counts jobs in progress and remembers the most at once.
    #[derive(Default)]
    struct Gauge {
        now: AtomicUsize,
        most: AtomicUsize,
    }

    impl Gauge {
        fn enter(&self) {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
        }
        fn leave(&self) {
            self.now.fetch_sub(1, Ordering::SeqCst);
        }
        fn most(&self) -> usize {
            self.most.load(Ordering::SeqCst)
        }
    }

    #[test]
    fn threads_run_at_most_the_limit_at_once_and_keep_the_order() {
        let gauge = Gauge::default();
        let items: Vec<u64> = (0..12).collect();
        // Later items finish first: the order comes from the slots, not
        // from completion.
        let results = on_threads(&items, 3, |&i| {
            gauge.enter();
            std::thread::sleep(Duration::from_millis(40 - 3 * i));
            gauge.leave();
            if i == 5 {
                Err(format!("job {i} failed"))
            } else {
                Ok(i * 10)
            }
        });
        assert_eq!(gauge.most(), 3, "three at once, never more");
        assert_eq!(results.len(), 12);
        for (i, result) in results.iter().enumerate() {
            match i {
                5 => assert_eq!(result, &Err("job 5 failed".to_string())),
                _ => assert_eq!(result, &Ok(i as u64 * 10), "job {i}"),
            }
        }
    }

    #[test]
    fn threads_with_fewer_items_than_the_limit_and_with_none() {
        assert_eq!(on_threads(&[1, 2], 8, |i| i + 1), [2, 3]);
        assert_eq!(on_threads(&[] as &[u8], 8, |i| *i), Vec::<u8>::new());
        assert_eq!(on_threads(&[7], 0, |i| *i), [7], "a limit of 0 means 1");
    }

    #[test]
    fn futures_run_at_most_the_limit_at_once_and_keep_the_order() -> anyhow::Result<()> {
        let now = Cell::new(0usize);
        let most = Cell::new(0usize);
        let started = Instant::now();
        let jobs: Vec<_> = (0..10u64)
            .map(|i| {
                let (now, most) = (&now, &most);
                async move {
                    now.set(now.get() + 1);
                    most.set(most.get().max(now.get()));
                    tokio::time::sleep(Duration::from_millis(60 - 5 * i)).await;
                    now.set(now.get() - 1);
                    if i == 3 { Err(i) } else { Ok(i) }
                }
            })
            .collect();
        let results = crate::acme::block_on(in_order(4, jobs))?;
        assert_eq!(most.get(), 4, "four in flight, never more");
        let expected: Vec<Result<u64, u64>> = (0..10)
            .map(|i| if i == 3 { Err(3) } else { Ok(i) })
            .collect();
        assert_eq!(results, expected, "each output in its job's place");
        // Sequentially the sleeps add up to 375 ms; four at a time, ~3 waves.
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        Ok(())
    }

    #[test]
    fn no_futures_and_ready_futures() -> anyhow::Result<()> {
        let none: Vec<std::future::Ready<u8>> = Vec::new();
        assert!(crate::acme::block_on(in_order(8, none))?.is_empty());
        let ready: Vec<_> = (0..20).map(std::future::ready).collect();
        assert_eq!(
            crate::acme::block_on(in_order(3, ready))?,
            (0..20).collect::<Vec<_>>()
        );
        Ok(())
    }
}
