//! The Numenta Anomaly Benchmark: loading its folder, scoring detections as NAB does, and
//! running a streaming detector over every series.
//!
//! [`data`] reads a NAB folder (`data/<category>/<series>.csv` and `combined_windows.json`),
//! [`score`] is NAB's scoring function (pure, no I/O), [`run`] steps a detector through
//! each series and prints the results table, and [`cv`] cross-validates the adaptive
//! detector's settings, leaving one category out at a time.

pub mod cv;
pub mod data;
pub mod run;
pub mod score;
