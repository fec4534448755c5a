//! The first question when the site file already has sites: add one, edit
//! one, or remove one.

use super::ask::Ask;
use anyhow::{Result, bail};

#[derive(Debug, Clone, PartialEq)]
pub enum Choice {
    Add,
    Edit(String),
    Remove(String),
}

/// `Add a site`, then `Edit <domain>` and `Remove <domain>` for each site.
/// With one site, editing it is the default (what re-running `init` did
/// before a file could hold several).
pub fn choose(ask: &mut dyn Ask, domains: &[&str]) -> Result<Choice> {
    let mut choices = vec![Choice::Add];
    choices.extend(domains.iter().map(|d| Choice::Edit(d.to_string())));
    choices.extend(domains.iter().map(|d| Choice::Remove(d.to_string())));
    let items: Vec<String> = choices.iter().map(label).collect();
    let default = usize::from(domains.len() == 1);
    let picked = ask.choose("What do you want to do?", &items, default)?;
    match choices.get(picked) {
        Some(choice) => Ok(choice.clone()),
        None => bail!("no menu entry {picked} (a bug in edgeup); nothing was written"),
    }
}

fn label(choice: &Choice) -> String {
    match choice {
        Choice::Add => "Add a site".to_string(),
        Choice::Edit(domain) => format!("Edit {domain}"),
        Choice::Remove(domain) => format!("Remove {domain}"),
    }
}
