//! Tests of the demand reading.
