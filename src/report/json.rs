//! One JSON object per line on stdout; the last line is the recap.

use super::{Event, Reporter};

pub struct JsonReporter;

impl Reporter for JsonReporter {
    fn event(&mut self, event: &Event) {
        match serde_json::to_string(event) {
            Ok(line) => crate::outln!("{line}"),
            Err(e) => eprintln!("edgeup: could not encode an event as JSON: {e}"),
        }
    }
}
