//! The printed report: how the traffic was built, the keys, and per shape what each detector
//! caught, how late, what it paged and its false alarms, then the targets.

use std::fmt::Write as _;

use vigil_core::detector::spike::SpikeThresholds;

use super::harness::{Alarm, GRACE_SCRAPES, score};
use super::shapes::{INJECTED_RANKS, NIGHTLY_STARTS, STARTS, Shape};
use super::traffic::{
    DIURNAL, SCRAPE_MS, SCRAPES_PER_DAY, SCRAPES_PER_HOUR, ServiceTrace, Traffic,
};
use super::{Case, DetectorRun, N_DAYS};

/// The spike detector's absolute floor, for the "under floor" column.
const SPIKE_MIN_RATE_PER_SEC: f64 = 50.0;

/// One row of the results: the cases (or nights) of a shape and each detector's tallies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// Cases (or nights) in the row.
    pub n: usize,
    /// Of them, detected.
    pub found: usize,
    /// Delays of the detected ones, sorted.
    pub delays: Vec<usize>,
    /// Detected with a page-severity finding.
    pub paged: usize,
    /// Findings on other keys during the injections.
    pub collateral: usize,
    /// Cases that reach 5x, and of them the ones found within 2 scrapes of reaching it.
    pub due_5x: usize,
    /// See `due_5x`.
    pub within_2_of_5x: usize,
    /// Of the cases (or nights), those the clean run had a finding for on the same key in the
    /// same window: "detected" by chance, with no injection at all.
    pub chance: usize,
}

impl Tally {
    fn empty() -> Self {
        Tally {
            n: 0,
            found: 0,
            delays: Vec::new(),
            paged: 0,
            collateral: 0,
            due_5x: 0,
            within_2_of_5x: 0,
            chance: 0,
        }
    }

    /// The median delay (the upper one of an even count).
    #[must_use]
    pub fn median(&self) -> Option<usize> {
        self.delays.get(self.delays.len() / 2).copied()
    }
}

/// Which nights of a nightly batch a row counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nights {
    /// Every episode (shapes with one).
    All,
    /// The first night only.
    First,
    /// Every night after the first.
    Later,
}

/// Tallies one detector's outcomes for the cases of report row `row`.
#[must_use]
pub fn tally(cases: &[Case], run: &DetectorRun, row: usize, nights: Nights) -> Tally {
    let mut tally = Tally::empty();
    for (case, outcome) in cases.iter().zip(&run.outcomes) {
        if case.row != row {
            continue;
        }
        let by_chance = score(&run.clean, case.key, case.start, &case.shape.episodes());
        let chance_episodes = by_chance
            .episodes
            .iter()
            .map(|episode| episode.delay.is_some());
        for (night, (episode, chance)) in outcome.episodes.iter().zip(chance_episodes).enumerate() {
            let counted = match nights {
                Nights::All => true,
                Nights::First => night == 0,
                Nights::Later => night > 0,
            };
            if !counted {
                continue;
            }
            tally.n += 1;
            tally.chance += usize::from(chance);
            if let Some(delay) = episode.delay {
                tally.found += 1;
                tally.delays.push(delay);
                tally.paged += usize::from(episode.page);
            }
            if let Some(due) = case.shape.reaches_5x_at() {
                tally.due_5x += 1;
                tally.within_2_of_5x += usize::from(episode.delay.is_some_and(|d| d <= due + 2));
            }
        }
        tally.collateral += outcome.collateral;
    }
    tally.delays.sort_unstable();
    tally
}

/// Renders the whole report.
#[must_use]
pub fn render(
    services: &[ServiceTrace],
    traffic: &Traffic,
    cases: &[Case],
    runs: &[DetectorRun],
    keys_per_service: usize,
) -> String {
    let mut out = String::new();
    render_traffic(&mut out, services, traffic, keys_per_service);
    render_cases(&mut out, cases);
    render_table(&mut out, traffic, cases, runs);
    render_clean(&mut out, runs);
    render_targets(&mut out, cases, runs);
    out
}

fn render_traffic(
    out: &mut String,
    services: &[ServiceTrace],
    traffic: &Traffic,
    keys_per_service: usize,
) {
    let _ = writeln!(
        out,
        "Runaway keys in LLM traffic: the spike detector measured on what it is for (issue 16 item 4)\n"
    );
    let spans: Vec<String> = services
        .iter()
        .map(|service| {
            let requests: usize = service.buckets.iter().map(Vec::len).sum();
            format!(
                "{} {requests} requests over {} buckets of 15 s",
                service.name,
                service.buckets.len()
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "How the traffic was built (deterministic, splitmix64 seeded):\n\
         - Azure LLM inference trace 2023 (Patel et al., ISCA 2024): {}; a request's tokens are\n  \
           ContextTokens + GeneratedTokens, counted in the 15 s scrape interval it arrived in.\n\
         - Each service's requests are split over {keys_per_service} synthetic keys with Zipf shares (key k gets\n  \
           1/k of the weight: key 1 {:.0}%, key {keys_per_service} {:.1}%), a fresh draw per request in each hour tile.\n\
         - {N_DAYS} days of 24 hour tiles. Tile t reads the service's 15 s buckets cyclically from a\n  \
           rotation drawn for the tile (the trace holds under an hour, so a tile wraps around it).\n\
         - Diurnal level: each request is kept with the probability of its hour of day (UTC, linear\n  \
           between hours): {} (00:00 .. 23:00).\n\
         - Each key's token counter (`{}` by `{}`) and request counter (`{}`) are scraped\n  \
           every {} s; days start at midnight UTC, 2023-11-20. An injection adds its multiple\n  \
           of the key's typical rate to both (a loop re-sends the key's typical request).",
        spans.join(", "),
        100.0 / harmonic(keys_per_service),
        100.0 / (keys_per_service as f64 * harmonic(keys_per_service)),
        DIURNAL
            .iter()
            .map(|level| format!("{level:.2}"))
            .collect::<Vec<_>>()
            .join(" "),
        super::harness::METRIC,
        super::harness::KEY_LABEL,
        super::traffic::Signal::Requests.metric(),
        SCRAPE_MS / 1000
    );
    let _ = writeln!(
        out,
        "\n{:<18}{:>12}{:>14}{:>14}",
        "key (tokens/s)", "day mean", "04:00-05:00", "12:00-13:00"
    );
    let hour_mean = |row: &[f64], hour: usize| {
        let from = SCRAPES_PER_DAY + hour * SCRAPES_PER_HOUR;
        row.get(from..from + SCRAPES_PER_HOUR).map_or(0.0, |slice| {
            slice.iter().sum::<f64>() / SCRAPES_PER_HOUR as f64
        }) / (SCRAPE_MS as f64 / 1000.0)
    };
    for (key, row) in traffic.keys.iter().zip(&traffic.tokens) {
        let day = row
            .get(SCRAPES_PER_DAY..2 * SCRAPES_PER_DAY)
            .map_or(0.0, |slice| {
                slice.iter().sum::<f64>() / SCRAPES_PER_DAY as f64
            })
            / (SCRAPE_MS as f64 / 1000.0);
        let _ = writeln!(
            out,
            "{key:<18}{day:>12.0}{:>14.0}{:>14.0}",
            hour_mean(row, 4),
            hour_mean(row, 12)
        );
    }
    let _ = writeln!(out, "(rates of day 1)");
}

fn harmonic(n: usize) -> f64 {
    (1..=n).map(|k| 1.0 / k as f64).sum()
}

fn render_cases(out: &mut String, cases: &[Case]) {
    let when = |starts: &[(usize, usize, usize)]| {
        starts
            .iter()
            .map(|(day, hour, minute)| format!("day {day} {hour:02}:{minute:02}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "\nInjected runaways ({} cases), one key at a time: keys of rank {:?} of each service,\n\
         starting at {} (nightly batches: first night {}).\n\
         The key's typical rate is its mean over the hour before the start; a loop or burst of Nx\n\
         adds (N-1)x it every scrape, a ramp adds (N(t)-1)x with N climbing linearly, a nightly batch\n\
         adds 20x it for 30 min at the same time each night. Each case runs from a copy of the\n\
         detector as the clean run left it. Detected: a finding on the key from the first scrape\n\
         that sees the injection to {GRACE_SCRAPES} scrapes after it ends. Delay: scrapes from the start to the\n\
         finding, both counted (1 = the first scrape that saw it; fire_after_samples 2 makes 2 the\n\
         spike detector's best). page: the finding's severity is page. other keys: findings on other\n\
         keys in the same window (false alarms). <50/s: cases whose injected rate stays under the\n\
         spike detector's absolute floor (min_rate_per_sec 50), which it can never fire on.\n\
         5x<=2: of the cases reaching 5x, found within 2 scrapes of reaching it. chance: cases whose\n\
         window on the same key had a finding in the clean run too (found with no injection).",
        cases.len(),
        INJECTED_RANKS,
        when(&STARTS),
        when(&NIGHTLY_STARTS)
    );
}

fn render_table(out: &mut String, traffic: &Traffic, cases: &[Case], runs: &[DetectorRun]) {
    let _ = write!(out, "\n{:<28}{:>6}{:>7}", "shape", "cases", "<50/s");
    for run in runs {
        let _ = write!(out, " | {:<46}", run.name);
    }
    let _ = writeln!(out);
    let _ = write!(out, "{:<41}", "");
    for _ in runs {
        let _ = write!(
            out,
            " | {:>7}{:>5}{:>5}{:>7}{:>7}{:>8}{:>7}",
            "found", "med", "max", "page", "other", "5x<=2", "chance"
        );
    }
    let _ = writeln!(out);
    for (row, shape) in Shape::all().iter().enumerate() {
        let kinds: &[(Nights, &str)] = match shape {
            Shape::Nightly { .. } => &[(Nights::First, " night 1"), (Nights::Later, " nights 2+")],
            Shape::Loop { .. } | Shape::Ramp { .. } | Shape::Burst { .. } => &[(Nights::All, "")],
        };
        for (nights, suffix) in kinds {
            let in_row: Vec<&Case> = cases.iter().filter(|case| case.row == row).collect();
            let under_floor = in_row
                .iter()
                .filter(|case| {
                    let peak = (0..case.shape.extra_tokens(1.0).len())
                        .map(|offset| case.shape.factor_at(offset))
                        .fold(1.0, f64::max);
                    peak * traffic.typical(case.key, case.start) / (SCRAPE_MS as f64 / 1000.0)
                        < SPIKE_MIN_RATE_PER_SEC
                })
                .count();
            let label = format!("{}{suffix}", shape.label());
            let first = runs.first().map(|run| tally(cases, run, row, *nights));
            let n = first.as_ref().map_or(in_row.len(), |tally| tally.n);
            let _ = write!(out, "{label:<28}{n:>6}{under_floor:>7}");
            for run in runs {
                let tally = tally(cases, run, row, *nights);
                let show = |value: Option<usize>| value.map_or("-".to_owned(), |v| v.to_string());
                let due = if tally.due_5x == 0 {
                    "-".to_owned()
                } else {
                    format!("{}/{}", tally.within_2_of_5x, tally.due_5x)
                };
                let _ = write!(
                    out,
                    " | {:>7}{:>5}{:>5}{:>7}{:>7}{:>8}{:>7}",
                    format!("{}/{}", tally.found, tally.n),
                    show(tally.median()),
                    show(tally.delays.last().copied()),
                    tally.paged,
                    tally.collateral,
                    due,
                    tally.chance
                );
            }
            let _ = writeln!(out);
        }
    }
    let _ = writeln!(out, "{}", super::anomaly::SETTINGS);
}

fn per_day(alarms: &[Alarm]) -> Vec<(usize, usize)> {
    let mut days = vec![(0, 0); N_DAYS];
    for alarm in alarms {
        if let Some(day) = days.get_mut(alarm.scrape / SCRAPES_PER_DAY) {
            day.0 += 1;
            day.1 += usize::from(alarm.page);
        }
    }
    days
}

fn render_clean(out: &mut String, runs: &[DetectorRun]) {
    let _ = writeln!(
        out,
        "\nClean traffic ({N_DAYS} days, no injection): findings on any key per day (of them pages)"
    );
    for run in runs {
        let days = per_day(&run.clean);
        let total: usize = days.iter().map(|day| day.0).sum();
        let after_first: usize = days.iter().skip(1).map(|day| day.0).sum();
        let _ = writeln!(
            out,
            "{:<20} by day {}; {:.1} a day over days 1-{} (day 0 learns)",
            run.name,
            days.iter()
                .map(|(all, pages)| format!("{all} ({pages})"))
                .collect::<Vec<_>>()
                .join(", "),
            after_first as f64 / (N_DAYS - 1).max(1) as f64,
            N_DAYS - 1
        );
        let mut keys: Vec<usize> = run.clean.iter().filter_map(|alarm| alarm.key).collect();
        keys.sort_unstable();
        keys.dedup();
        let _ = writeln!(
            out,
            "{:<20} {total} findings in all, on {} key(s)",
            "",
            keys.len()
        );
    }
}

fn render_targets(out: &mut String, cases: &[Case], runs: &[DetectorRun]) {
    let _ = writeln!(out, "\nTargets (issue 16), reported, not tuned to:");
    for run in runs {
        let (mut due, mut caught) = (0, 0);
        let (mut first_nights, mut later_paged, mut later) = (0, 0, 0);
        let mut bursts_found = 0;
        for (row, shape) in Shape::all().iter().enumerate() {
            let all = tally(cases, run, row, Nights::All);
            due += all.due_5x;
            caught += all.within_2_of_5x;
            if shape.is_burst() {
                bursts_found += all.found;
            }
            if matches!(shape, Shape::Nightly { .. }) {
                first_nights += tally(cases, run, row, Nights::First).found;
                let later_tally = tally(cases, run, row, Nights::Later);
                later_paged += later_tally.found;
                later += later_tally.n;
            }
        }
        let clean_after_first = run
            .clean
            .iter()
            .filter(|alarm| alarm.scrape >= SCRAPES_PER_DAY)
            .count();
        let verdict = |met: bool| if met { "met" } else { "NOT met" };
        let _ = writeln!(
            out,
            "{}:\n  every runaway of 5x or more found within 2 scrapes of reaching 5x: {caught}/{due}, {}\n  \
             0 false alarms a day on clean traffic: {clean_after_first} over days 1-{}, {}\n  \
             a nightly batch pages at most on its first night: later nights found {later_paged}/{later} (first nights {first_nights}), {}\n  \
             short bursts (should not page): {bursts_found} found",
            run.name,
            verdict(caught == due),
            N_DAYS - 1,
            verdict(clean_after_first == 0),
            verdict(later_paged == 0),
        );
    }
}

/// The seed and the shipped spike thresholds the report was made with.
#[must_use]
pub fn settings(seed: u64, thresholds: &SpikeThresholds) -> String {
    format!(
        "\nSettings: traffic seed {seed:#x}; token-spike (shipped) = SpikeThresholds::default(): {thresholds:?}; \
         spike (before: avg memory) = the same with run_evidence false and season_memory average; \
         key-request-spike (shipped) = the same thresholds on `{}` with min_rate_per_sec {}; \
         both = the findings of either, one on a key found within {} scrapes before joining it\n",
        super::traffic::Signal::Requests.metric(),
        super::REQUEST_MIN_RATE_PER_SEC,
        super::JOIN_SCRAPES,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spikes::harness::{Episode, Outcome};

    fn episode(delay: Option<usize>, page: bool) -> Episode {
        Episode { delay, page }
    }

    #[test]
    fn a_row_tallies_found_delays_pages_the_5x_target_and_chance() {
        let ramp = Shape::Ramp {
            peak: 10.0,
            ramp_scrapes: 120,
            hold_scrapes: 40,
        };
        let nightly = Shape::Nightly {
            extra: 20.0,
            scrapes: 120,
            nights: 3,
        };
        let cases = [
            Case {
                row: 0,
                shape: ramp,
                key: 0,
                start: 1000,
            },
            Case {
                row: 0,
                shape: ramp,
                key: 1,
                start: 1000,
            },
            Case {
                row: 0,
                shape: ramp,
                key: 2,
                start: 5000,
            },
            Case {
                row: 1,
                shape: nightly,
                key: 0,
                start: 6000,
            },
        ];
        let run = DetectorRun {
            name: "test".to_owned(),
            // Key 2 had a finding in its window on clean traffic.
            clean: vec![Alarm {
                scrape: 5010,
                key: Some(2),
                page: false,
            }],
            case_alarms: Vec::new(),
            outcomes: vec![
                // Ramp reaches 5x at offset 53: delay 55 is within 2 scrapes of it, 56 is not.
                Outcome {
                    episodes: vec![episode(Some(55), true)],
                    collateral: 1,
                },
                Outcome {
                    episodes: vec![episode(Some(56), false)],
                    collateral: 0,
                },
                Outcome {
                    episodes: vec![episode(None, false)],
                    collateral: 2,
                },
                Outcome {
                    episodes: vec![
                        episode(Some(2), true),
                        episode(None, false),
                        episode(Some(3), false),
                    ],
                    collateral: 0,
                },
            ],
        };
        let ramps = tally(&cases, &run, 0, Nights::All);
        assert_eq!(
            ramps,
            Tally {
                n: 3,
                found: 2,
                delays: vec![55, 56],
                paged: 1,
                collateral: 3,
                due_5x: 3,
                within_2_of_5x: 1,
                chance: 1,
            }
        );
        assert_eq!(ramps.median(), Some(56));
        let first = tally(&cases, &run, 1, Nights::First);
        assert_eq!((first.n, first.found, first.paged), (1, 1, 1));
        let later = tally(&cases, &run, 1, Nights::Later);
        assert_eq!((later.n, later.found, later.delays), (2, 1, vec![3]));
    }
}
