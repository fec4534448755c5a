//! A scripted command runner for transcript tests: answers commands from
//! rules (first matching prefix wins), optionally simulates their effect on
//! the fixture root, and records every command line in order.
//!
//! Rules are matched against the command's display form with the fixture
//! root removed (`haproxy -c -q -f /etc/haproxy/...`), so a rule reads like
//! the command on a real host. An unmatched command answers success with no
//! output; a catch-all rule (`respond("", ...)`, added last) makes unknown
//! commands fail instead.

use super::{Cmd, CmdOutput, Runner};
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

type Effect = Box<dyn Fn(&Path) -> Result<()>>;
type Answer = Box<dyn Fn(&Path, &Cmd) -> Result<CmdOutput>>;

enum Response {
    /// A canned output, optionally with a simulated effect on the fixture.
    Fixed {
        output: CmdOutput,
        effect: Option<Effect>,
    },
    /// Computed from the fixture's state and the command itself (and free
    /// to change the fixture the way the real command would).
    Dynamic(Answer),
}

struct Rule {
    prefix: String,
    response: Response,
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
            response: Response::Fixed {
                output,
                effect: None,
            },
        });
        self
    }

    /// Like `respond`, and also changes the fixture tree the way the real command would.
    pub fn effect(
        mut self,
        prefix: &str,
        output: CmdOutput,
        effect: impl Fn(&Path) -> Result<()> + 'static,
    ) -> ScriptedRunner {
        self.rules.push(Rule {
            prefix: prefix.to_string(),
            response: Response::Fixed {
                output,
                effect: Some(Box::new(effect)),
            },
        });
        self
    }

    /// Commands starting with `prefix` are answered by `answer`, called with
    /// the fixture root and the command (its arguments still hold real
    /// paths under the root). The answer may depend on the fixture's state
    /// (`systemctl show` reports a unit active only after `systemctl start`
    /// left its marker) and may change it (`dnf install` adds packages).
    pub fn dynamic(
        mut self,
        prefix: &str,
        answer: impl Fn(&Path, &Cmd) -> Result<CmdOutput> + 'static,
    ) -> ScriptedRunner {
        self.rules.push(Rule {
            prefix: prefix.to_string(),
            response: Response::Dynamic(Box::new(answer)),
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
            Some(Rule {
                response: Response::Fixed { output, effect },
                ..
            }) => {
                if let Some(effect) = effect {
                    effect(&self.root)?;
                }
                Ok(output.clone())
            }
            Some(Rule {
                response: Response::Dynamic(answer),
                ..
            }) => answer(&self.root, cmd),
            None => Ok(CmdOutput::ok("")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_rule_wins_and_root_is_stripped() -> Result<()> {
        let dir = std::env::temp_dir().join(format!("edgeup-scripted-{}", std::process::id()));
        let runner = ScriptedRunner::new(dir.clone())
            .respond("systemctl reload", CmdOutput::failed(1, "no"))
            .dynamic("systemctl", |root, cmd| {
                Ok(CmdOutput::ok(&format!(
                    "{} {}",
                    root.display(),
                    cmd.args.join(" ")
                )))
            })
            .respond("", CmdOutput::failed(127, "unknown"));
        let log = runner.transcript();
        let file = dir.join("etc/haproxy/haproxy.cfg");
        let validate = Cmd::new("haproxy").arg("-c").arg(file.to_string_lossy());
        assert_eq!(runner.run(&validate)?.status, 127);
        assert_eq!(
            runner.run(&Cmd::new("systemctl").args(["reload", "x"]))?,
            CmdOutput::failed(1, "no")
        );
        let show = runner.run(&Cmd::new("systemctl").args(["show", "x"]))?;
        assert_eq!(show.stdout, format!("{} show x", dir.display()));
        let lines = log.lock().map(|l| l.clone()).unwrap_or_default();
        assert_eq!(
            lines,
            [
                "haproxy -c /etc/haproxy/haproxy.cfg",
                "systemctl reload x",
                "systemctl show x"
            ]
        );
        Ok(())
    }
}
