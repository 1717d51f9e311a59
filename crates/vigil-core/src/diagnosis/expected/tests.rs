//! Tests of expected activity.
