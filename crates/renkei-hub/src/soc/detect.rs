//! What turns repeated acts into one security event: counts per caller within a window, and
//! each service's requests per hour against its own baseline. Kept in memory, per replica:
//! after a restart a replica learns again (the configured floor keeps a new baseline from
//! being so small that an ordinary hour looks like a surge).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Beyond this many callers tracked, those whose window is over are forgotten.
const TRACKED: usize = 10_000;

/// Counts acts per key within a fixed window; says when a key reaches the threshold, once
/// per window.
pub struct Tally<K> {
    threshold: u32,
    window: Duration,
    counts: Mutex<HashMap<K, (Instant, u32)>>,
}

impl<K: Eq + Hash + Clone> Tally<K> {
    pub fn new(threshold: u32, window: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            window,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one act of `key` at `now`: `Some(count)` when this act reaches the threshold
    /// (the moment to raise an event), `None` before and after it within the same window.
    pub fn count(&self, key: &K, now: Instant) -> Option<u32> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.len() >= TRACKED {
            counts.retain(|_, (start, _)| now.duration_since(*start) < self.window);
        }
        let entry = counts.entry(key.clone()).or_insert((now, 0));
        if now.duration_since(entry.0) >= self.window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        (entry.1 == self.threshold).then_some(entry.1)
    }
}

/// How a service's hourly requests are judged.
#[derive(Debug, Clone, Copy)]
pub struct SurgeRule {
    /// The hour (shorter in tests).
    pub hour: Duration,
    /// How many times its baseline a service must ask for in an hour to raise an event.
    pub factor: u64,
    /// The least baseline assumed, in requests per hour.
    pub floor: u64,
}

/// One service's hour so far and what it asked for in hours before.
struct Hourly {
    started: Instant,
    count: u64,
    /// The average of past hours, recent ones weighing more; `None` before a full hour.
    average: Option<f64>,
    raised: bool,
}

/// Each service's requests naming a resident, hour by hour, against its baseline: the
/// larger of the rule's floor and an exponentially weighted average of its past hours (each
/// hour weighs a fifth, so a week of quiet hours forgets an old busy one). An hour reaching
/// `factor` × the baseline raises one event, at the request that reaches it.
pub struct SurgeWatch {
    rule: SurgeRule,
    services: Mutex<HashMap<String, Hourly>>,
}

/// A surge: the requests so far this hour and the baseline they exceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Surge {
    pub count: u64,
    pub baseline: u64,
}

/// The weight of the hour just ended in the average.
const WEIGHT: f64 = 0.2;
/// At most this many empty hours are folded in at once (after that the average is ~0).
const MAX_QUIET_HOURS: u32 = 168;

impl SurgeWatch {
    pub fn new(rule: SurgeRule) -> Self {
        Self {
            rule,
            services: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one request of `service` naming a resident at `now`.
    pub fn count(&self, service: &str, now: Instant) -> Option<Surge> {
        let mut services = self.services.lock().unwrap_or_else(PoisonError::into_inner);
        let hourly = services.entry(service.to_owned()).or_insert(Hourly {
            started: now,
            count: 0,
            average: None,
            raised: false,
        });
        let hour = self.rule.hour.max(Duration::from_millis(1));
        let elapsed = now.duration_since(hourly.started);
        if elapsed >= hour {
            let hours = u32::try_from(elapsed.as_nanos() / hour.as_nanos()).unwrap_or(u32::MAX);
            #[expect(
                clippy::cast_precision_loss,
                reason = "request counts are far below 2^52"
            )]
            let mut average = fold(hourly.average, hourly.count as f64);
            for _ in 1..hours.min(MAX_QUIET_HOURS) {
                average = fold(Some(average), 0.0);
            }
            *hourly = Hourly {
                started: hourly.started + hour * hours,
                count: 0,
                average: Some(average),
                raised: false,
            };
        }
        hourly.count += 1;
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a non-negative average of counts, rounded up"
        )]
        let learned = hourly.average.map_or(0, |a| a.ceil() as u64);
        let baseline = learned.max(self.rule.floor).max(1);
        if !hourly.raised && hourly.count >= baseline.saturating_mul(self.rule.factor) {
            hourly.raised = true;
            return Some(Surge {
                count: hourly.count,
                baseline,
            });
        }
        None
    }
}

fn fold(average: Option<f64>, hour: f64) -> f64 {
    match average {
        None => hour,
        Some(a) => a * (1.0 - WEIGHT) + hour * WEIGHT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_says_so_once_when_a_key_reaches_the_threshold_within_the_window() {
        let tally = Tally::new(3, Duration::from_secs(60));
        let t = Instant::now();
        assert_eq!(tally.count(&"a", t), None);
        assert_eq!(tally.count(&"b", t), None);
        assert_eq!(tally.count(&"a", t), None);
        assert_eq!(tally.count(&"a", t), Some(3));
        assert_eq!(tally.count(&"a", t), None, "once per window");
        let later = t + Duration::from_secs(61);
        assert_eq!(tally.count(&"a", later), None, "a new window starts over");
    }

    #[test]
    fn a_service_asking_ten_times_its_learned_baseline_is_a_surge() {
        let hour = Duration::from_secs(3600);
        let watch = SurgeWatch::new(SurgeRule {
            hour,
            factor: 10,
            floor: 5,
        });
        let t = Instant::now();
        // Five hours of 20 requests each (under ten times the floor while nothing is learned):
        // the baseline becomes 20 an hour.
        for h in 0..5 {
            for _ in 0..20 {
                assert_eq!(watch.count("clinic", t + hour * h), None);
            }
        }
        let surge_hour = t + hour * 5;
        let mut raised = Vec::new();
        for n in 1..=250 {
            if let Some(s) = watch.count("clinic", surge_hour) {
                raised.push((n, s));
            }
        }
        assert_eq!(
            raised,
            vec![(
                200,
                Surge {
                    count: 200,
                    baseline: 20
                }
            )],
            "raised once, at ten times the baseline"
        );
        assert_eq!(watch.count("other", surge_hour), None, "per service");
    }

    #[test]
    fn the_floor_is_the_baseline_of_a_service_not_yet_learned() {
        let watch = SurgeWatch::new(SurgeRule {
            hour: Duration::from_secs(3600),
            factor: 10,
            floor: 5,
        });
        let t = Instant::now();
        let raised = (1..=60)
            .filter_map(|_| watch.count("new", t))
            .collect::<Vec<_>>();
        assert_eq!(
            raised,
            vec![Surge {
                count: 50,
                baseline: 5
            }]
        );
    }
}
