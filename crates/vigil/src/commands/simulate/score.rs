//! `vigil simulate --score DIR`: every scenario of a folder played quietly, and for each
//! whether the best hypothesis, its subject, the actions and the pages were as its `expect`
//! says. A score is a measurement: a wrong answer is counted, not an error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::scenario::RawExpect;
use super::tally::{Tally, Verdict};
use super::{Output, Simulation, load};

/// The columns of the table, in order.
const COLUMNS: [&str; 4] = ["cause", "subject", "actions", "pages"];

/// Plays every `*.yaml` scenario in `dir` (in name order) and prints the table and the
/// totals; exit 0, or 2 when a scenario cannot be loaded or played (the others are scored).
pub async fn score(dir: &Path) -> anyhow::Result<ExitCode> {
    let entries = std::fs::read_dir(dir)
        .map_err(|error| anyhow::anyhow!("cannot read the folder {}: {error}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    paths.sort();
    let width = paths
        .iter()
        .map(|path| stem(path).len())
        .max()
        .unwrap_or_default()
        .max("scenario".len());
    let [cause, subject, actions, pages] = COLUMNS;
    println!(
        "{:<width$}  {cause:<7} {subject:<7} {actions:<7} {pages}",
        "scenario"
    );
    let mut totals = Totals::default();
    let mut n_broken = 0;
    for path in &paths {
        let name = stem(path);
        let Some(verdicts) = play(path).await else {
            n_broken += 1;
            println!("{name:<width$}  cannot be played (see above)");
            continue;
        };
        totals.add(&verdicts);
        let [cause, subject, actions, pages] = verdicts.map(Verdict::as_str);
        println!("{name:<width$}  {cause:<7} {subject:<7} {actions:<7} {pages}");
    }
    println!("\n{}", totals.line());
    if n_broken > 0 {
        eprintln!("{n_broken} scenario(s) could not be played; they are not in the totals");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|stem| stem.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The verdicts of one scenario, in the order of [`COLUMNS`]; `None` (the problem printed)
/// when it cannot be loaded or played.
async fn play(path: &Path) -> Option<[Verdict; 4]> {
    let mut loaded = load(path)?;
    let sim_assistant = match &loaded.scenario.assistant {
        Some(play) => {
            match super::assistant::SimAssistant::start(play, &mut loaded.bundle.engine).await {
                Ok(assistant) => Some(assistant),
                Err(error) => {
                    eprintln!("{}: the assistant: {error:#}", path.display());
                    return None;
                }
            }
        }
        None => None,
    };
    let out = Output::new(false, true, &loaded.scenario);
    let mut simulation = Simulation::new(loaded.bundle, &loaded.scenario, out, false);
    simulation.assistant = sim_assistant;
    if let Err(error) = simulation.run(&loaded.scenario).await {
        eprintln!("{}: {error:#}", path.display());
        return None;
    }
    Some(verdicts(&simulation.tally, &loaded.scenario.expect))
}

fn verdicts(tally: &Tally, expect: &RawExpect) -> [Verdict; 4] {
    [
        tally.cause(expect),
        tally.subject(expect),
        tally.actions(expect),
        tally.pages(expect),
    ]
}

/// Per column: how many were right, of how many the scenarios stated.
#[derive(Debug, Default)]
struct Totals {
    right: [usize; 4],
    stated: [usize; 4],
}

impl Totals {
    fn add(&mut self, verdicts: &[Verdict; 4]) {
        for ((verdict, right), stated) in verdicts
            .iter()
            .zip(self.right.iter_mut())
            .zip(self.stated.iter_mut())
        {
            match verdict {
                Verdict::Right => {
                    *right += 1;
                    *stated += 1;
                }
                Verdict::Wrong => *stated += 1,
                Verdict::Unstated => {}
            }
        }
    }

    /// `causes 12/14, subjects 11/14, actions 13/14, pages 14/14`.
    fn line(&self) -> String {
        let names = ["causes", "subjects", "actions", "pages"];
        names
            .iter()
            .zip(self.right.iter().zip(self.stated.iter()))
            .map(|(name, (right, stated))| format!("{name} {right}/{stated}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
