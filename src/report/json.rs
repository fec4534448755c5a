//! One JSON object per line on stdout (a `Line`: the event and `v`); the
//! last line is the recap.

use super::{Event, Line, Reporter};
use serde::Serialize;

pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn event(&mut self, event: &Event) {
        write(&Line::new(event));
    }
}

/// Prints `line` as one line of JSON on stdout.
pub fn write<E: Serialize>(line: &Line<E>) {
    match serde_json::to_string(line) {
        Ok(text) => crate::outln!("{text}"),
        Err(e) => eprintln!("edgeup: could not encode an event as JSON: {e}"),
    }
}
