//! vigil's evaluation harness: benchmarks that score vigil's detectors on public data.
//!
//! NAB, the Numenta Anomaly Benchmark ([`nab`]), scores the adaptive detector; the Azure LLM
//! inference trace ([`azure`]) counts false positives on real traffic. The `vigil-eval`
//! binary is their command line.

pub mod azure;
pub mod drift;
pub mod nab;
pub mod spikes;
