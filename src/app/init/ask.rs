//! How `edgeup init` asks: the `Ask` trait (so the interview runs against
//! scripted answers in tests) and its terminal implementation (dialoguer,
//! on stderr; plain theme without colour when NO_COLOR is set).

use crate::exit;
use crate::report::plain::color_enabled;
use anyhow::Result;
use dialoguer::theme::{ColorfulTheme, SimpleTheme, Theme};
use dialoguer::{Confirm, Input, Password, Select};
use std::io::IsTerminal;

/// Checks one typed answer: `Err` holds the sentence shown before asking again.
pub type Validator<'a> = &'a dyn Fn(&str) -> Result<(), String>;

pub trait Ask {
    /// A free-text answer, asked again until `valid` accepts it. Enter takes
    /// `default`; an empty answer is possible only with `allow_empty`.
    fn text(
        &mut self,
        prompt: &str,
        default: Option<&str>,
        allow_empty: bool,
        valid: Validator,
    ) -> Result<String>;
    /// A secret (an EAB HMAC key): not echoed while typed, never a default.
    fn secret(&mut self, prompt: &str, allow_empty: bool, valid: Validator) -> Result<String> {
        self.text(prompt, None, allow_empty, valid)
    }
    /// One of `items` (index), starting on `default`.
    fn choose(&mut self, prompt: &str, items: &[String], default: usize) -> Result<usize>;
    fn confirm(&mut self, prompt: &str, default: bool) -> Result<bool>;
    /// A line of explanation between questions.
    fn note(&mut self, text: &str);
    /// Something to know that does not stop the interview.
    fn warn(&mut self, text: &str);
}

/// dialoguer on the terminal (stderr).
pub struct Terminal {
    theme: Box<dyn Theme>,
    color: bool,
}

impl Terminal {
    pub fn new() -> Terminal {
        let color = color_enabled(std::io::stderr().is_terminal());
        let theme: Box<dyn Theme> = if color {
            Box::new(ColorfulTheme::default())
        } else {
            Box::new(SimpleTheme)
        };
        Terminal { theme, color }
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

impl Default for Terminal {
    fn default() -> Self {
        Terminal::new()
    }
}

fn unanswered(e: dialoguer::Error) -> anyhow::Error {
    exit::invalid(format!(
        "could not read the answer ({e}); nothing was written"
    ))
}

impl Ask for Terminal {
    fn text(
        &mut self,
        prompt: &str,
        default: Option<&str>,
        allow_empty: bool,
        valid: Validator,
    ) -> Result<String> {
        let mut input = Input::<String>::with_theme(self.theme.as_ref())
            .with_prompt(prompt)
            .allow_empty(allow_empty)
            .validate_with(|value: &String| valid(value.trim()));
        if let Some(default) = default.filter(|d| !d.is_empty()) {
            input = input.default(default.to_string());
        }
        let answer = input.interact_text().map_err(unanswered)?;
        Ok(answer.trim().to_string())
    }

    fn secret(&mut self, prompt: &str, allow_empty: bool, valid: Validator) -> Result<String> {
        let answer = Password::with_theme(self.theme.as_ref())
            .with_prompt(prompt)
            .allow_empty_password(allow_empty)
            .validate_with(|value: &String| valid(value.trim()))
            .interact()
            .map_err(unanswered)?;
        Ok(answer.trim().to_string())
    }

    fn choose(&mut self, prompt: &str, items: &[String], default: usize) -> Result<usize> {
        Select::with_theme(self.theme.as_ref())
            .with_prompt(prompt)
            .items(items)
            .default(default.min(items.len().saturating_sub(1)))
            .interact()
            .map_err(unanswered)
    }

    fn confirm(&mut self, prompt: &str, default: bool) -> Result<bool> {
        Confirm::with_theme(self.theme.as_ref())
            .with_prompt(prompt)
            .default(default)
            .interact()
            .map_err(unanswered)
    }

    fn note(&mut self, text: &str) {
        eprintln!("{text}");
    }

    fn warn(&mut self, text: &str) {
        eprintln!("{} {text}", self.paint("warning:", "33;1"));
    }
}

/// Ctrl-C while a question is on screen: show the cursor again (a selection
/// list hides it), say that nothing was written, exit 130. Only for the
/// interview; `default_interrupt` restores the usual behaviour before the
/// file is written.
pub fn interrupt_writes_nothing() {
    extern "C" fn on_interrupt(_: libc::c_int) {
        const TEXT: &[u8] = b"\x1b[?25h\nedgeup init: interrupted; nothing was written\n";
        // SAFETY: write(2) and _exit(2) are async-signal-safe; TEXT is static.
        unsafe {
            libc::write(libc::STDERR_FILENO, TEXT.as_ptr().cast(), TEXT.len());
            libc::_exit(130);
        }
    }
    let handler: extern "C" fn(libc::c_int) = on_interrupt;
    // SAFETY: the handler only calls async-signal-safe functions.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
    }
}

/// The usual Ctrl-C (terminate) again.
pub fn default_interrupt() {
    // SAFETY: restoring the default disposition has no preconditions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
    }
}
