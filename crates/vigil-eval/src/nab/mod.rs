//! The Numenta Anomaly Benchmark: loading its folder, scoring detections as NAB does, and
//! running a streaming detector over every series.
//!
//! [`data`] reads a NAB folder (`data/<category>/<series>.csv` and `combined_windows.json`),
//! [`score`] is NAB's scoring function (pure, no I/O), and [`run`] steps a detector through
//! each series and prints the results table.

pub mod data;
pub mod run;
pub mod score;
