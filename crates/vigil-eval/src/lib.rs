//! vigil's evaluation harness: benchmarks that score vigil's detectors on public data.
//!
//! The only benchmark so far is NAB, the Numenta Anomaly Benchmark ([`nab`]); the
//! `vigil-eval` binary is its command line.

pub mod nab;
