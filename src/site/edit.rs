//! Textual edits of the site file for `edgeup site add`, `edgeup site remove`
//! and `edgeup init` (add, edit or remove one site).
//!
//! The file belongs to the user: deserializing and serializing it again would
//! drop their comments and reorder their keys. So these functions splice lines
//! and leave every other byte alone. They understand only block-style YAML of
//! the shapes edgeup writes and people hand-edit (a top-level mapping whose
//! `sites:` is a block sequence of mappings, or the legacy one-site form), and
//! return an error for anything else so the caller can rewrite the file instead.

use super::config::SITE_KEYS;
use anyhow::{Result, bail};

/// Indentation of the dashes of a new `sites:` sequence.
const NEW_INDENT: usize = 2;

/// Characters that cannot start a plain `key:` at the top level.
const INDICATORS: &[char] = &[
    '?', '[', ']', '{', '}', ',', '&', '*', '!', '|', '>', '%', '@', '`',
];

/// Appends `entry` (the YAML of one site mapping, block style, no leading `- `, e.g.
/// "domain: b.example.com\nbackends:\n- 127.0.0.1:3001\n") as the last element of the
/// top-level `sites:` block sequence. A legacy one-site file is first converted:
/// its top-level site keys (with the comment lines directly above each and their
/// nested/continuation lines) move, in their original order, into the first element
/// of a new `sites:` sequence appended at the end of the file; the shared keys stay where they were.
/// Errors (caller falls back to rewriting the file) when the shape is not one of these
/// (flow-style `sites: [...]`, tabs, a document marker `---` after content, anchors/aliases `&`/`*` at line start of values, no site at all...).
pub fn add_site(text: &str, entry: &str) -> Result<String> {
    let lines = split_lines(text)?;
    let blocks = top_level(&lines)?;
    let new = split_lines(entry)?;
    let new_blocks = top_level(&new)?;
    let (Some(new_first), Some(new_last)) = (new_blocks.first(), new_blocks.last()) else {
        bail!("the new site has no keys");
    };
    if !new_blocks.iter().any(|b| b.key == "domain") {
        bail!("the new site has no `domain:`");
    }
    // The entry up to the end of its last key (stray lines after it are dropped).
    let new = new.get(..new_last.end).unwrap_or_default();

    let mut out = String::new();
    if let Some(sites) = blocks.iter().find(|b| b.key == "sites") {
        if let Some(b) = blocks.iter().find(|b| is_site_key(b)) {
            bail!(
                "line {}: top-level `{}:` next to `sites:`",
                b.line + 1,
                b.key
            );
        }
        let indent = match elements(&lines, sites)?.first() {
            Some(e) => indent_of(lines.get(e.item).unwrap_or(&"")),
            None => NEW_INDENT,
        };
        push_lines(&mut out, lines.get(..sites.end).unwrap_or_default());
        push_element(&mut out, new, new_first.line, indent);
        push_lines(&mut out, lines.get(sites.end..).unwrap_or_default());
        return Ok(out);
    }

    // Legacy one-site form: move the site keys into a new `sites:` at the end.
    let moved: Vec<&Block> = blocks.iter().filter(|b| is_site_key(b)).collect();
    if !moved.iter().any(|b| b.key == "domain") {
        bail!("no site in the file: neither `sites:` nor a top-level `domain:`");
    }
    let mut site = Vec::new();
    let mut keep = vec![true; lines.len()];
    for b in &moved {
        site.extend_from_slice(lines.get(b.start..b.end).unwrap_or_default());
        // The blank lines after a moved key go too, so no gap is left behind.
        let mut gap_end = b.end;
        while lines.get(gap_end).is_some_and(|l| is_blank(l)) {
            gap_end += 1;
        }
        if let Some(gone) = keep.get_mut(b.start..gap_end) {
            gone.fill(false);
        }
    }
    for (line, _) in lines.iter().zip(&keep).filter(|(_, k)| **k) {
        push_line(&mut out, line);
    }
    out.push_str("sites:\n");
    let first_key = moved.first().map_or(0, |b| b.line.saturating_sub(b.start));
    push_element(&mut out, &site, first_key, NEW_INDENT);
    push_element(&mut out, new, new_first.line, NEW_INDENT);
    Ok(out)
}

/// Removes the element of the top-level `sites:` block sequence whose `domain` is `domain`
/// (with the comment lines directly above it). Errors when not found, when the file is
/// the legacy form, or when the shape is not block style.
pub fn remove_site(text: &str, domain: &str) -> Result<String> {
    let lines = split_lines(text)?;
    let blocks = top_level(&lines)?;
    let (elements, k) = find_site(&lines, &blocks, domain)?;
    let Some(e) = elements.get(k) else {
        bail!("`{domain}` is not in the site file");
    };
    let previous = k.checked_sub(1).and_then(|p| elements.get(p));
    // Also cut the blank lines that separated it from a neighbour, so the spacing stays even.
    let cut = match (previous, elements.get(k + 1)) {
        (_, Some(next)) => e.start..next.start,
        (Some(previous), None) => previous.end..e.end,
        (None, None) => bail!("`{domain}` is the only site; a site file needs at least one"),
    };
    let mut out = String::new();
    for (j, line) in lines.iter().enumerate() {
        if !cut.contains(&j) {
            push_line(&mut out, line);
        }
    }
    Ok(out)
}

/// Replaces the element of the top-level `sites:` block sequence whose `domain` is
/// `domain` with `entry` (one site mapping, as for `add_site`). Only that element
/// changes, and in it only what `entry` changes: the comment lines above it stay,
/// and so does every key (its lines and comments) whose value `entry` leaves as it
/// was. A changed key takes `entry`'s lines in its place (the comments above it
/// stay), a key `entry` lacks goes, a new one follows the element's last key.
/// Errors as `remove_site` does (not found, one-site form, not block style).
pub fn replace_site(text: &str, domain: &str, entry: &str) -> Result<String> {
    let lines = split_lines(text)?;
    let blocks = top_level(&lines)?;
    let (elements, k) = find_site(&lines, &blocks, domain)?;
    let Some(e) = elements.get(k) else {
        bail!("`{domain}` is not in the site file");
    };
    let new = split_lines(entry)?;
    let new_blocks = top_level(&new)?;
    if !new_blocks.iter().any(|b| b.key == "domain") {
        bail!("the new site has no `domain:`");
    }
    let element = Mapping::of(&lines, e)?;
    let old_blocks = top_level(&element.lines)?;
    let merged = merge(&element.lines, &old_blocks, &new, &new_blocks);
    let mut out = String::new();
    push_lines(&mut out, lines.get(..e.item).unwrap_or_default());
    element.push(&mut out, &merged);
    push_lines(&mut out, lines.get(e.end..).unwrap_or_default());
    Ok(out)
}

/// The elements of the top-level `sites:` list and the index of the one
/// whose `domain` is `domain` (exactly one).
fn find_site(lines: &[&str], blocks: &[Block], domain: &str) -> Result<(Vec<Element>, usize)> {
    let Some(sites) = blocks.iter().find(|b| b.key == "sites") else {
        if blocks.iter().any(|b| b.key == "domain") {
            bail!(
                "the site file has the one-site form (a top-level `domain:`), not a `sites:` list"
            );
        }
        bail!("the site file has no `sites:` list");
    };
    let elements = elements(lines, sites)?;
    let mut found = Vec::new();
    for (k, e) in elements.iter().enumerate() {
        // Unreadable (e.g. a flow mapping): it could be the site asked for.
        let Some(d) = domain_of(lines, e) else {
            bail!(
                "line {}: a site whose `domain:` cannot be read here",
                e.item + 1
            );
        };
        if d == domain {
            found.push(k);
        }
    }
    match found[..] {
        [k] => Ok((elements, k)),
        [] => bail!("`{domain}` is not in the site file"),
        _ => bail!("`{domain}` is in the site file {} times", found.len()),
    }
}

/// A `sites:` element as the mapping it holds: its lines moved left to
/// column 0 (the key indentation), and how to put them back.
struct Mapping<'a> {
    lines: Vec<&'a str>,
    /// The `- ` line as written.
    dash: &'a str,
    /// Whether the first key is on the `- ` line.
    inline: bool,
    key_indent: usize,
}

impl<'a> Mapping<'a> {
    fn of(lines: &[&'a str], e: &Element) -> Result<Mapping<'a>> {
        let dash = lines.get(e.item).copied().unwrap_or_default();
        let after = dash
            .trim_start_matches(' ')
            .strip_prefix('-')
            .unwrap_or_default();
        let rest = after.trim_start_matches(' ');
        let inline = !is_empty_value(rest);
        let body = lines.get(e.item + 1..e.end).unwrap_or_default();
        let key_indent = if inline {
            dash.len() - rest.len()
        } else {
            match body.iter().find(|l| !is_blank(l) && !is_comment(l)) {
                Some(l) => indent_of(l),
                None => bail!("line {}: a site with no keys", e.item + 1),
            }
        };
        let mut mapping: Vec<&str> = inline.then_some(rest).into_iter().collect();
        for (j, line) in body.iter().enumerate() {
            if is_blank(line) {
                mapping.push("");
            } else if indent_of(line) >= key_indent {
                mapping.push(line.get(key_indent..).unwrap_or_default());
            } else if is_comment(line) {
                mapping.push(line.trim_start_matches(' '));
            } else {
                bail!(
                    "line {}: not indented like the keys of its site",
                    e.item + j + 2
                );
            }
        }
        Ok(Mapping {
            lines: mapping,
            dash,
            inline,
            key_indent,
        })
    }

    /// Writes `mapping` back in this element's place and layout.
    fn push(&self, out: &mut String, mapping: &[&str]) {
        let first = mapping.iter().position(|l| !is_blank(l) && !is_comment(l));
        if !self.inline {
            push_line(out, self.dash);
        }
        let prefix = self.dash.get(..self.key_indent).unwrap_or_default();
        let dash_indent = indent_of(self.dash);
        for (k, line) in mapping.iter().enumerate() {
            if is_blank(line) {
                out.push('\n');
                continue;
            }
            match (self.inline, first.map(|f| k.cmp(&f))) {
                (true, Some(std::cmp::Ordering::Equal)) => out.push_str(prefix),
                // Comments above a new first key go above the dash.
                (true, Some(std::cmp::Ordering::Less)) => out.push_str(&" ".repeat(dash_indent)),
                _ => out.push_str(&" ".repeat(self.key_indent)),
            }
            push_line(out, line);
        }
    }
}

/// The old mapping with `new`'s keys merged in (see `replace_site`).
fn merge<'a>(
    old: &[&'a str],
    old_blocks: &[Block],
    new: &[&'a str],
    new_blocks: &[Block],
) -> Vec<&'a str> {
    let lines = |from: &[&'a str], range: std::ops::Range<usize>| -> Vec<&'a str> {
        from.get(range).unwrap_or_default().to_vec()
    };
    let mut out = Vec::new();
    let mut at = 0;
    for b in old_blocks {
        out.extend(lines(old, at..b.start));
        match new_blocks.iter().find(|n| n.key == b.key) {
            Some(n) if same_value(&lines(old, b.line..b.end), &lines(new, n.line..n.end)) => {
                out.extend(lines(old, b.start..b.end));
            }
            Some(n) => {
                out.extend(lines(old, b.start..b.line));
                out.extend(lines(new, n.line..n.end));
            }
            None => {}
        }
        at = b.end;
    }
    for n in new_blocks
        .iter()
        .filter(|n| !old_blocks.iter().any(|b| b.key == n.key))
    {
        out.extend(lines(new, n.start..n.end));
    }
    out.extend(lines(old, at..old.len()));
    out
}

/// Whether two `key: value` blocks mean the same (as parsed YAML); false
/// when either does not parse.
fn same_value(a: &[&str], b: &[&str]) -> bool {
    let parse =
        |lines: &[&str]| serde_saphyr::from_str::<serde_json::Value>(&lines.join("\n")).ok();
    matches!((parse(a), parse(b)), (Some(a), Some(b)) if a == b)
}

/// A top-level key: `start..end` covers the comment lines directly above it,
/// its key line (`line`) and its body, without trailing blank lines.
struct Block {
    key: String,
    start: usize,
    line: usize,
    end: usize,
}

/// An element of the `sites:` sequence: `start..end` covers the comment lines
/// directly above it, its `-` line (`item`) and its continuation lines,
/// without trailing blank lines.
struct Element {
    start: usize,
    item: usize,
    end: usize,
}

/// What a line is, seen from the top level.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Blank,
    /// A comment at column 0.
    Comment,
    Indented,
    /// A line at column 0 starting with `-` (an element of a sequence at indent 0).
    Dash,
    /// `---` or `...` at column 0.
    Marker,
    Key,
}

fn kind(line: &str) -> Kind {
    if is_blank(line) {
        Kind::Blank
    } else if line.starts_with(' ') {
        Kind::Indented
    } else if line.starts_with('#') {
        Kind::Comment
    } else if line.starts_with("---") || line.starts_with("...") {
        Kind::Marker
    } else if line.starts_with('-') {
        Kind::Dash
    } else {
        Kind::Key
    }
}

fn is_blank(line: &str) -> bool {
    line.trim_start_matches(' ').is_empty()
}

/// A comment line at any indentation.
fn is_comment(line: &str) -> bool {
    line.trim_start_matches(' ').starts_with('#')
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_site_key(block: &Block) -> bool {
    SITE_KEYS.contains(&block.key.as_str())
}

/// The lines of `text` without their `\n` (the output puts one after every line).
fn split_lines(text: &str) -> Result<Vec<&str>> {
    if text.contains('\t') {
        bail!("tabs are not supported");
    }
    if text.contains('\r') {
        bail!("carriage returns (CRLF line ends) are not supported");
    }
    if text.is_empty() {
        return Ok(Vec::new());
    }
    Ok(text
        .strip_suffix('\n')
        .unwrap_or(text)
        .split('\n')
        .collect())
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

fn push_lines(out: &mut String, lines: &[&str]) {
    for line in lines {
        push_line(out, line);
    }
}

/// Writes the lines of a mapping as one sequence element with its dash at
/// `indent`: lines above line `first_key` (comments) go above the dash, line
/// `first_key` gets the `- `, later lines shift right by `indent + 2`.
fn push_element(out: &mut String, lines: &[&str], first_key: usize, indent: usize) {
    for (k, line) in lines.iter().enumerate() {
        if k == first_key {
            out.push_str(&" ".repeat(indent));
            out.push_str("- ");
        } else if !is_blank(line) {
            let pad = if k < first_key { indent } else { indent + 2 };
            out.push_str(&" ".repeat(pad));
        }
        out.push_str(line);
        out.push('\n');
    }
}

/// Splits `key: value` (or `key:` alone) into the unquoted key and what follows the colon.
fn split_key(s: &str) -> Option<(String, &str)> {
    let quote = s.chars().next().filter(|c| *c == '"' || *c == '\'');
    if let Some(q) = quote {
        let (key, rest) = s.strip_prefix(q)?.split_once(q)?;
        let rest = rest.strip_prefix(':')?;
        return (rest.is_empty() || rest.starts_with(' ')).then(|| (key.to_string(), rest));
    }
    let (key, rest) = match s.split_once(": ") {
        Some(pair) => pair,
        None => (s.strip_suffix(':')?, ""),
    };
    Some((key.trim_end_matches(' ').to_string(), rest))
}

/// A value that is nothing, or only a comment.
fn is_empty_value(value: &str) -> bool {
    let value = value.trim_start_matches(' ');
    value.is_empty() || value.starts_with('#')
}

/// The string a scalar value stands for: plain (up to a ` #` comment),
/// 'single' or "double" quoted (simple escapes only).
fn scalar(value: &str) -> Option<String> {
    let value = value.trim_start_matches(' ');
    let mut out = String::new();
    if let Some(inner) = value.strip_prefix('"') {
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => return Some(out),
                '\\' => out.push(chars.next()?),
                c => out.push(c),
            }
        }
        None
    } else if let Some(inner) = value.strip_prefix('\'') {
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '\'' {
                out.push(c);
            } else if chars.next_if_eq(&'\'').is_some() {
                out.push('\'');
            } else {
                return Some(out);
            }
        }
        None
    } else {
        let plain = value.split_once(" #").map_or(value, |(v, _)| v);
        let plain = plain.trim_end_matches(' ');
        (!is_empty_value(plain)).then(|| plain.to_string())
    }
}

/// Why a line cannot be edited safely, if it cannot: an anchor or alias where
/// a node starts (moving lines could put an alias before its anchor), or a
/// quoted or flow value that goes on past the line (its next lines are not keys).
fn unsupported(line: &str) -> Option<&'static str> {
    let mut node = line.trim_start_matches(' ');
    while let Some(rest) = node
        .strip_prefix('-')
        .filter(|r| r.is_empty() || r.starts_with(' '))
    {
        node = rest.trim_start_matches(' ');
    }
    if node.starts_with('#') {
        return None;
    }
    let value = split_key(node).map_or(node, |(_, v)| v.trim_start_matches(' '));
    // A flow collection may be the node itself (`- {a: b}`) or a key's value.
    let flow = [node, value]
        .into_iter()
        .find(|v| v.starts_with(['[', '{']));
    let flow = flow.map(|v| {
        v.split_once(" #")
            .map_or(v, |(v, _)| v)
            .trim_end_matches(' ')
    });
    if node.starts_with(['&', '*']) || value.starts_with(['&', '*']) {
        Some("anchors and aliases are not supported")
    } else if (value.starts_with(['\'', '"']) && scalar(value).is_none())
        || flow.is_some_and(|v| !v.ends_with([']', '}']))
    {
        Some("values continued on the next line are not supported")
    } else {
        None
    }
}

/// The top-level keys of the file, in order. Errors on lines that fit no block.
fn top_level(lines: &[&str]) -> Result<Vec<Block>> {
    for (j, line) in lines.iter().enumerate() {
        if let Some(why) = unsupported(line) {
            bail!("line {}: {why}", j + 1);
        }
    }
    let mut blocks: Vec<Block> = Vec::new();
    let mut marker_allowed = true; // a single `---` may open the document
    let mut i = 0;
    while let Some(&line) = lines.get(i) {
        match kind(line) {
            Kind::Blank | Kind::Comment => i += 1,
            Kind::Indented if is_comment(line) => i += 1,
            Kind::Marker if marker_allowed && line.trim_end_matches(' ') == "---" => {
                marker_allowed = false;
                i += 1;
            }
            Kind::Marker => bail!("line {}: document markers are not supported here", i + 1),
            Kind::Indented | Kind::Dash => bail!("line {}: not under a top-level key", i + 1),
            Kind::Key => {
                marker_allowed = false;
                let key = split_key(line).filter(|_| !line.starts_with(INDICATORS));
                let Some((key, _)) = key else {
                    bail!("line {}: expected a `key:` line", i + 1);
                };
                if blocks.iter().any(|b| b.key == key) {
                    bail!("line {}: top-level `{key}:` appears twice", i + 1);
                }
                let floor = blocks.last().map_or(0, |b| b.end);
                let mut start = i;
                while start > floor
                    && lines
                        .get(start - 1)
                        .is_some_and(|l| kind(l) == Kind::Comment)
                {
                    start -= 1;
                }
                let end = block_end(lines, i);
                blocks.push(Block {
                    key,
                    start,
                    line: i,
                    end,
                });
                i = end;
            }
        }
    }
    Ok(blocks)
}

/// The end of the body of the top-level key on line `i`: the lines after it
/// that are blank or indented or, when its value is a sequence at column 0,
/// start with `-`. A column-0 comment belongs to the body when more body
/// follows it (past comments and blank lines). Trailing blank lines are left out.
fn block_end(lines: &[&str], i: usize) -> usize {
    let empty_value = lines
        .get(i)
        .and_then(|l| split_key(l))
        .is_some_and(|(_, v)| is_empty_value(v));
    let first = lines
        .iter()
        .skip(i + 1)
        .find(|l| !is_blank(l) && !is_comment(l));
    let seq0 = empty_value && first.is_some_and(|l| kind(l) == Kind::Dash);
    let in_body = |l: &str| kind(l) == Kind::Indented || (seq0 && kind(l) == Kind::Dash);
    let (mut j, mut end) = (i + 1, i + 1);
    while let Some(&line) = lines.get(j) {
        match kind(line) {
            Kind::Blank => {}
            Kind::Comment => {
                let next = (lines.iter().skip(j))
                    .find(|l| !matches!(kind(l), Kind::Blank | Kind::Comment));
                if !next.is_some_and(|l| in_body(l)) {
                    break;
                }
            }
            _ if in_body(line) => end = j + 1,
            _ => break,
        }
        j += 1;
    }
    end
}

/// The elements of the `sites:` block sequence. Errors unless `sites:` is a
/// (possibly empty) block sequence.
fn elements(lines: &[&str], sites: &Block) -> Result<Vec<Element>> {
    let value = lines.get(sites.line).and_then(|l| split_key(l));
    if !value.is_some_and(|(_, v)| is_empty_value(v)) {
        bail!("line {}: `sites:` is not a block sequence", sites.line + 1);
    }
    let body = sites.line + 1..sites.end;
    let mut dash = None;
    let mut items = Vec::new();
    for (j, line) in lines.iter().enumerate().take(body.end).skip(body.start) {
        if is_blank(line) || is_comment(line) {
            continue;
        }
        let indent = indent_of(line);
        let dash = *dash.get_or_insert(indent);
        if indent > dash {
            continue; // inside the current element
        }
        let node = line.trim_start_matches(' ');
        if indent < dash || !(node == "-" || node.starts_with("- ")) {
            bail!("line {}: `sites:` is not a block sequence of sites", j + 1);
        }
        items.push(j);
    }
    // Each element starts at the comment lines directly above its `-` line.
    let starts: Vec<usize> = items
        .iter()
        .enumerate()
        .map(|(k, &item)| {
            let floor = k
                .checked_sub(1)
                .and_then(|p| items.get(p))
                .map_or(body.start, |p| p + 1);
            let mut start = item;
            while start > floor && lines.get(start - 1).is_some_and(|l| is_comment(l)) {
                start -= 1;
            }
            start
        })
        .collect();
    let elements = items
        .iter()
        .zip(&starts)
        .enumerate()
        .map(|(k, (&item, &start))| {
            // It ends where the next one starts, less the blank lines between them.
            let mut end = starts.get(k + 1).copied().unwrap_or(body.end);
            while end > item + 1 && lines.get(end - 1).is_some_and(|l| is_blank(l)) {
                end -= 1;
            }
            Element { start, item, end }
        })
        .collect();
    Ok(elements)
}

/// The `domain:` of an element, read at the element's own key indentation:
/// on its `- ` line, or on a later line indented like its keys.
fn domain_of(lines: &[&str], element: &Element) -> Option<String> {
    let item = lines.get(element.item)?;
    let inline = item
        .trim_start_matches(' ')
        .strip_prefix('-')?
        .trim_start_matches(' ');
    // The element's nodes as (indent, text), starting with what follows its `- `.
    let first = (!is_empty_value(inline)).then(|| (item.len() - inline.len(), inline));
    let rest = lines.get(element.item + 1..element.end)?;
    let rest = rest
        .iter()
        .filter(|l| !is_blank(l) && !is_comment(l))
        .map(|l| (indent_of(l), l.trim_start_matches(' ')));
    let mut nodes = first.into_iter().chain(rest).peekable();
    let key_indent = nodes.peek()?.0;
    while let Some((indent, text)) = nodes.next() {
        let Some((key, value)) = split_key(text).filter(|_| indent == key_indent) else {
            continue;
        };
        if key == "domain" {
            // A deeper line after it would continue the value.
            let continued = nodes.peek().is_some_and(|(i, _)| *i > key_indent);
            return if continued { None } else { scalar(value) };
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct F {
        sites: Vec<S>,
    }

    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct S {
        domain: String,
    }

    /// The domains of `sites:` once parsed as YAML.
    fn domains(yaml: &str) -> Vec<String> {
        let f: F = serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        f.sites.into_iter().map(|s| s.domain).collect()
    }

    const MULTI: &str = "\
# comment
email: ops@example.com            # shared
acme: {directory: letsencrypt}
sites:
  # the chat app
  - domain: chat.example.com
    aliases: [www.chat.example.com]
    backends: [127.0.0.1:3000]
  - domain: grafana.example.com   # trailing comment
    backends:
      - 127.0.0.1:3001
";

    const ENTRY: &str = "domain: b.example.com\nbackends:\n- 127.0.0.1:3001\n";

    const LEGACY: &str = "\
# The site edgeup last applied
domain: chat.example.com
email: you@example.com
backends:
- 127.0.0.1:3000
routing: subdomain
firewall: auto
acme:
  directory: letsencrypt
  client: builtin
";

    #[test]
    fn adds_to_a_multi_site_file() {
        let out = add_site(MULTI, ENTRY).unwrap();
        let added = "  - domain: b.example.com\n    backends:\n    - 127.0.0.1:3001\n";
        assert_eq!(out, format!("{MULTI}{added}"));
        assert_eq!(
            domains(&out),
            ["chat.example.com", "grafana.example.com", "b.example.com"]
        );
    }

    #[test]
    fn adds_inside_sites_when_other_keys_follow() {
        let text = "sites:\n    - domain: a\n      backends: [x]\n\n# shared\nemail: e\n";
        let out = add_site(text, "domain: b\n# its apps\nbackends: [y]\n").unwrap();
        assert_eq!(
            out,
            "sites:\n    - domain: a\n      backends: [x]\n    - domain: b\n      # its apps\n      backends: [y]\n\n# shared\nemail: e\n"
        );
        assert_eq!(domains(&out), ["a", "b"]);
    }

    #[test]
    fn adds_to_a_zero_indent_sequence() {
        let text = "sites:\n# first\n- domain: a\n  backends: [x]\nemail: e";
        let out = add_site(text, ENTRY).unwrap();
        assert_eq!(
            out,
            "sites:\n# first\n- domain: a\n  backends: [x]\n- domain: b.example.com\n  backends:\n  - 127.0.0.1:3001\nemail: e\n"
        );
        assert_eq!(domains(&out), ["a", "b.example.com"]);
    }

    #[test]
    fn converts_a_legacy_file() {
        let out = add_site(LEGACY, ENTRY).unwrap();
        let expected = "\
email: you@example.com
firewall: auto
acme:
  directory: letsencrypt
  client: builtin
sites:
  # The site edgeup last applied
  - domain: chat.example.com
    backends:
    - 127.0.0.1:3000
    routing: subdomain
  - domain: b.example.com
    backends:
    - 127.0.0.1:3001
";
        assert_eq!(out, expected);
        assert_eq!(domains(&out), ["chat.example.com", "b.example.com"]);
    }

    #[test]
    fn legacy_conversion_takes_nested_lines_comments_and_following_blanks() {
        let text = "email: e\n\n# the app\nbackends:\n  - x\n\n# shared\nfirewall: auto\n\ndomain: a # mine\nhealth:\n  path: /up\n";
        let out = add_site(text, "domain: b\n").unwrap();
        assert_eq!(
            out,
            "email: e\n\n# shared\nfirewall: auto\n\nsites:\n  # the app\n  - backends:\n      - x\n    domain: a # mine\n    health:\n      path: /up\n  - domain: b\n"
        );
        assert_eq!(domains(&out), ["a", "b"]);
    }

    const THREE: &str = "\
email: e
sites:
  # first
  # (two lines)
  - domain: a
    backends: [x]
  # second
  - domain: 'b'
    backends:
      - y
  -   domain: \"c\" # third
email2: f
";

    #[test]
    fn removes_the_first_element_with_its_comments() {
        let out = remove_site(THREE, "a").unwrap();
        assert_eq!(
            out,
            THREE.replace(
                "  # first\n  # (two lines)\n  - domain: a\n    backends: [x]\n",
                ""
            )
        );
        assert_eq!(domains(&out), ["b", "c"]);
    }

    #[test]
    fn removes_a_middle_element_with_its_comments() {
        let out = remove_site(THREE, "b").unwrap();
        assert_eq!(
            out,
            THREE.replace(
                "  # second\n  - domain: 'b'\n    backends:\n      - y\n",
                ""
            )
        );
        assert_eq!(domains(&out), ["a", "c"]);
    }

    #[test]
    fn removes_the_last_element() {
        let out = remove_site(THREE, "c").unwrap();
        assert_eq!(out, THREE.replace("  -   domain: \"c\" # third\n", ""));
        assert_eq!(domains(&out), ["a", "b"]);
    }

    #[test]
    fn removal_keeps_blank_line_spacing_even() {
        let text = "sites:\n- domain: a\n\n- domain: b\n\n-\n  domain: c\n\nemail: e\n";
        let without = |d| remove_site(text, d).unwrap();
        assert_eq!(
            without("a"),
            "sites:\n- domain: b\n\n-\n  domain: c\n\nemail: e\n"
        );
        assert_eq!(
            without("b"),
            "sites:\n- domain: a\n\n-\n  domain: c\n\nemail: e\n"
        );
        assert_eq!(
            without("c"),
            "sites:\n- domain: a\n\n- domain: b\n\nemail: e\n"
        );
    }

    #[test]
    fn reads_the_domain_at_the_element_key_indent_only() {
        let text = "sites:\n  - name: x\n    proxy:\n      domain: a\n    domain: \"b\\\"q\"\n  - domain: c\n";
        assert!(remove_site(text, "a").is_err());
        assert_eq!(
            remove_site(text, "b\"q").unwrap(),
            "sites:\n  - domain: c\n"
        );
    }

    #[test]
    fn quoted_domains() {
        let text = "sites:\n  - domain: 'it''s.example'   # odd\n  - \"domain\": \"q.example\"\n  - domain: p.example # c\n";
        assert_eq!(
            remove_site(text, "it's.example").unwrap(),
            "sites:\n  - \"domain\": \"q.example\"\n  - domain: p.example # c\n"
        );
        assert_eq!(
            remove_site(text, "q.example").unwrap(),
            "sites:\n  - domain: 'it''s.example'   # odd\n  - domain: p.example # c\n"
        );
        assert_eq!(
            remove_site(text, "p.example").unwrap(),
            "sites:\n  - domain: 'it''s.example'   # odd\n  - \"domain\": \"q.example\"\n"
        );
    }

    #[test]
    fn remove_errors() {
        let err = |text: &str, d: &str| remove_site(text, d).unwrap_err().to_string();
        assert!(err(MULTI, "nope.example.com").contains("not in the site file"));
        assert!(err(LEGACY, "chat.example.com").contains("one-site form"));
        assert!(err("sites: [{domain: a}, {domain: b}]\n", "a").contains("not a block sequence"));
        assert!(err("sites:\n  - domain: a\n", "a").contains("only site"));
        assert!(err("sites:\n  - domain: a\n  - domain: a\n", "a").contains("2 times"));
        assert!(err("sites:\n  domain: a\n", "a").contains("not a block sequence"));
        assert!(err("sites:\n  - {domain: b}\n  - domain: a\n", "a").contains("cannot be read"));
        assert!(
            err("sites:\n  - domain: b\n      - x\n  - domain: a\n", "b")
                .contains("cannot be read")
        );
    }

    #[test]
    fn replace_keeps_every_unchanged_key_with_its_comments() {
        // grafana: new backend, new health, same domain (its trailing comment stays).
        let entry =
            "domain: grafana.example.com\nbackends:\n- 127.0.0.1:3002\nhealth: /api/health\n";
        let out = replace_site(MULTI, "grafana.example.com", entry).unwrap();
        let expected = MULTI.replace(
            "    backends:\n      - 127.0.0.1:3001\n",
            "    backends:\n    - 127.0.0.1:3002\n    health: /api/health\n",
        );
        assert_eq!(out, expected);
        assert_eq!(domains(&out), ["chat.example.com", "grafana.example.com"]);
    }

    #[test]
    fn replace_with_the_same_values_changes_no_byte() {
        let chat = "domain: chat.example.com\naliases:\n- www.chat.example.com\nbackends:\n- 127.0.0.1:3000\n";
        assert_eq!(
            replace_site(MULTI, "chat.example.com", chat).unwrap(),
            MULTI
        );
        let text = "sites:\n  -\n    # c\n    domain: c\n    backends: [x]\n  -   domain: 'd' # d\n      backends:\n      - y\n";
        let c = "domain: c\nbackends:\n- x\n";
        let d = "domain: d\nbackends: [y]\n";
        assert_eq!(replace_site(text, "c", c).unwrap(), text);
        assert_eq!(replace_site(text, "d", d).unwrap(), text);
    }

    #[test]
    fn replace_keeps_comments_above_a_changed_key_and_drops_a_removed_key() {
        let text = "\
# shared
email: e
sites:
  # the first
  - domain: a
    # where the app listens
    backends: [x] # docker
    health: /up
  # the second
  - domain: b
    backends: [y]
firewall: auto
";
        let out = replace_site(text, "a", "domain: a2\nbackends:\n- z\nemail: me@a2\n").unwrap();
        let expected = "\
# shared
email: e
sites:
  # the first
  - domain: a2
    # where the app listens
    backends:
    - z
    email: me@a2
  # the second
  - domain: b
    backends: [y]
firewall: auto
";
        assert_eq!(out, expected);
        assert_eq!(domains(&out), ["a2", "b"]);
    }

    #[test]
    fn replace_a_last_element_in_a_zero_indent_sequence() {
        let text = "sites:\n- domain: a\n- domain: b\n  backends:\n  - y\nemail: e\n";
        let out = replace_site(text, "b", "domain: b\nbackends:\n- w\n").unwrap();
        assert_eq!(
            out,
            "sites:\n- domain: a\n- domain: b\n  backends:\n  - w\nemail: e\n"
        );
        // A renamed site keeps its place; a first key that goes leaves the dash to the next.
        let out = replace_site(text, "b", "domain: c\nbackends:\n- y\n").unwrap();
        assert_eq!(
            out,
            "sites:\n- domain: a\n- domain: c\n  backends:\n  - y\nemail: e\n"
        );
        let text = "sites:\n- health: /up\n  # its name\n  domain: b\n";
        let out = replace_site(text, "b", "domain: b\n").unwrap();
        assert_eq!(out, "sites:\n# its name\n- domain: b\n");
        assert_eq!(domains(&out), ["b"]);
    }

    #[test]
    fn replace_errors() {
        let err = |text: &str, d: &str, entry: &str| {
            replace_site(text, d, entry).unwrap_err().to_string()
        };
        assert!(err(MULTI, "nope.example.com", ENTRY).contains("not in the site file"));
        assert!(err(LEGACY, "chat.example.com", ENTRY).contains("one-site form"));
        assert!(err("sites: [{domain: a}]\n", "a", ENTRY).contains("not a block sequence"));
        assert!(err(MULTI, "chat.example.com", "backends: [x]\n").contains("no `domain:`"));
        assert!(err("sites:\n  -   domain: a\n    x: 1\n", "a", ENTRY).contains("not indented"));
        assert!(err("sites:\n  -\n  - domain: b\n", "a", ENTRY).contains("cannot be read"));
    }

    #[test]
    fn add_errors() {
        let refused = |text: &str| add_site(text, ENTRY).is_err();
        assert!(refused("sites: [{domain: a}]\n"));
        assert!(refused("sites:\n\t- domain: a\n"));
        assert!(refused("sites:\n  - domain: a\n---\nsites: []\n"));
        assert!(refused(
            "base: &b\n  x: 1\nsites:\n  - domain: a\n    <<: *b\n"
        ));
        assert!(refused("email: e\nfirewall: auto\n"));
        assert!(refused("domain: a\nnote: 'two\nbackends: [x]'\n"));
        assert!(refused("sites:\n  - {domain: a,\n     backends: [x]}\n"));
        assert!(refused(
            "domain: a\nacme: {directory: x,\n  client: builtin}\n"
        ));
        assert!(refused(""));
        assert!(refused("domain: a\nsites:\n  - domain: b\n"));
        assert!(refused("- domain: a\n"));
        assert!(refused("sites:\n  - domain: a\n    x: 1\n  y: 2\n"));
        assert!(add_site(MULTI, "backends: [x]\n").is_err());
        assert!(add_site(MULTI, "").is_err());
    }

    #[test]
    fn keeps_an_indented_comment_above_the_first_key() {
        let text = "  # note\nsites:\n- domain: a\n";
        let out = add_site(text, "domain: b\n").unwrap();
        assert_eq!(out, "  # note\nsites:\n- domain: a\n- domain: b\n");
        assert_eq!(domains(&out), ["a", "b"]);
    }

    #[test]
    fn accepts_a_leading_document_marker_and_an_empty_sites() {
        let out = add_site("---\nemail: e\nsites:\n", ENTRY).unwrap();
        assert_eq!(
            out,
            "---\nemail: e\nsites:\n  - domain: b.example.com\n    backends:\n    - 127.0.0.1:3001\n"
        );
        assert_eq!(domains(&out), ["b.example.com"]);
    }

    /// A small deterministic generator (xorshift), to need no crate.
    fn rng(seed: &mut u64) -> usize {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed % 1_000_003) as usize
    }

    #[test]
    fn never_panics_and_keeps_parsed_meaning() {
        const PIECES: &[&str] = &[
            "sites:",
            "sites: []",
            "  - domain: a",
            "- domain: b",
            "    backends: [x]",
            "  # c",
            "# c",
            "",
            "email: e",
            "domain: 'q'",
            "domain: \"d\" # x",
            "backends:",
            "- 1:1",
            "  - 1:1",
            "  -",
            "    domain: c",
            "   domain: z",
            "acme: {directory: x}",
            "  x: é🦀",
            "\t",
            "---",
            "...",
            "&a",
            "*a",
            "- ",
            ":",
            "-",
            "'",
            "\"",
            "  '",
            "aliases: [a]",
            "routing: x",
            "   ",
            "? x",
            "k: |",
            "  - domain: a # é",
            "health:",
            "  -   domain: 'it''s'",
            "x: *a",
            "- - domain: a",
            "日本: 語",
        ];
        const CHARS: &[char] = &[
            '-', ' ', ':', '\'', '"', '#', '\n', 'é', '🦀', '\t', 'a', 's', '&', '*',
        ];
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for round in 0..600_u32 {
            let text = if round.is_multiple_of(3) {
                (0..rng(&mut seed) % 40)
                    .map(|_| CHARS[rng(&mut seed) % CHARS.len()])
                    .collect::<String>()
            } else {
                let n = rng(&mut seed) % 9;
                let mut t: Vec<&str> = (0..n)
                    .map(|_| PIECES[rng(&mut seed) % PIECES.len()])
                    .collect();
                if rng(&mut seed).is_multiple_of(2) {
                    t.push("");
                }
                t.join("\n")
            };
            let before: Option<F> = serde_saphyr::from_str(&text).ok();
            if let Ok(out) = add_site(&text, "domain: new\n") {
                assert!(out.ends_with('\n'), "{text:?}");
                if let Some(before) = &before {
                    let mut want: Vec<String> =
                        before.sites.iter().map(|s| s.domain.clone()).collect();
                    want.push("new".into());
                    assert_eq!(domains(&out), want, "{text:?} -> {out:?}");
                }
            }
            if let Ok(out) = remove_site(&text, "a") {
                assert!(out.ends_with('\n'), "{text:?}");
                if let Some(before) = &before {
                    let want: Vec<String> = before
                        .sites
                        .iter()
                        .map(|s| s.domain.clone())
                        .filter(|d| d != "a")
                        .collect();
                    assert_eq!(domains(&out), want, "{text:?} -> {out:?}");
                }
            }
            if let Ok(out) = replace_site(&text, "a", "domain: r\n") {
                assert!(out.ends_with('\n'), "{text:?}");
                if let Some(before) = &before {
                    let want: Vec<String> = before
                        .sites
                        .iter()
                        .map(|s| {
                            if s.domain == "a" {
                                "r".into()
                            } else {
                                s.domain.clone()
                            }
                        })
                        .collect();
                    assert_eq!(domains(&out), want, "{text:?} -> {out:?}");
                }
            }
            let _ = add_site("sites:\n  - domain: a\n", &text);
            let _ = replace_site("sites:\n  - domain: a\n", "a", &text);
        }
    }
}
