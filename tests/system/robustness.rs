//! Robustness scenarios on a booted container: drift repair, crash safety,
//! concurrency, bad input (issue: system proof).
