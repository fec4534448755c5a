//! A scripted command runner for transcript tests: answers commands from
//! rules (first matching prefix wins), optionally simulates their effect on
//! the fixture root, and records every command line in order.

use super::{Cmd, CmdOutput, Runner};
use anyhow::Result;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

type Effect = Box<dyn Fn(&std::path::Path) -> Result<()>>;

struct Rule {
    prefix: String,
    output: CmdOutput,
    effect: Option<Effect>,
}

pub struct ScriptedRunner {
    root: PathBuf,
    rules: Vec<Rule>,
    log: Arc<Mutex<Vec<String>>>,
}

impl ScriptedRunner {
    pub fn new(root: PathBuf) -> ScriptedRunner {
        ScriptedRunner {
            root,
            rules: Vec::new(),
            log: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Commands whose display form starts with `prefix` answer `output`.
    pub fn respond(mut self, prefix: &str, output: CmdOutput) -> ScriptedRunner {
        self.rules.push(Rule {
            prefix: prefix.to_string(),
            output,
            effect: None,
        });
        self
    }

    /// Like `respond`, and also changes the fixture tree the way the real command would.
    pub fn effect(
        mut self,
        prefix: &str,
        output: CmdOutput,
        effect: impl Fn(&std::path::Path) -> Result<()> + 'static,
    ) -> ScriptedRunner {
        self.rules.push(Rule {
            prefix: prefix.to_string(),
            output,
            effect: Some(Box::new(effect)),
        });
        self
    }

    /// The shared transcript: every command line run so far, fixture root
    /// replaced by nothing so transcripts read like the real host's.
    pub fn transcript(&self) -> Arc<Mutex<Vec<String>>> {
        Arc::clone(&self.log)
    }
}

impl Runner for ScriptedRunner {
    fn run(&self, cmd: &Cmd) -> Result<CmdOutput> {
        let root = self
            .root
            .to_string_lossy()
            .trim_end_matches('/')
            .to_string();
        let line = if root.is_empty() {
            cmd.display()
        } else {
            cmd.display().replace(&root, "")
        };
        if let Ok(mut log) = self.log.lock() {
            log.push(line.clone());
        }
        match self.rules.iter().find(|r| line.starts_with(&r.prefix)) {
            Some(rule) => {
                if let Some(effect) = &rule.effect {
                    effect(&self.root)?;
                }
                Ok(rule.output.clone())
            }
            None => Ok(CmdOutput::ok("")),
        }
    }
}
