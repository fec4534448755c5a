//! The TSIG key file: BIND's `key` statement as `tsig-keygen -a hmac-sha256
//! NAME` writes it:
//!
//! ```text
//! key "NAME" {
//!         algorithm hmac-sha256;
//!         secret "BASE64";
//! };
//! ```
//!
//! A deliberately small parser of that one statement (no crate reads BIND
//! configuration without pulling in a whole server): `#`, `//` and `/* */`
//! comments, one `key` with `algorithm` and `secret`, nothing else. Errors
//! name the file and what is wrong, never a line of it: the secret is on one.

use anyhow::{Result, bail};
use std::fmt;

/// The MACs edgeup signs with (RFC 8945's mandatory one and the two longer ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::HmacSha256 => "hmac-sha256",
            Algorithm::HmacSha384 => "hmac-sha384",
            Algorithm::HmacSha512 => "hmac-sha512",
        }
    }
}

/// A key: its name (the server knows it by that name), MAC and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TsigKey {
    pub name: String,
    pub algorithm: Algorithm,
    secret: Vec<u8>,
}

impl TsigKey {
    pub fn secret(&self) -> &[u8] {
        &self.secret
    }
}

/// Never the secret, not even its length.
impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
    Semi,
}

/// Parses `text`, the content of `path` (named in errors).
pub fn parse(text: &str, path: &str) -> Result<TsigKey> {
    let tokens = tokenize(text, path)?;
    let mut it = tokens.into_iter().peekable();
    let shape = format!(
        "{path} is not a TSIG key file of the form `key \"NAME\" {{ algorithm hmac-sha256; secret \"...\"; }};` \
         (make one with `tsig-keygen -a hmac-sha256 NAME > {path}`)"
    );
    match it.next() {
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("key") => {}
        _ => bail!("{shape}"),
    }
    let name = match it.next() {
        Some(Token::Quoted(n)) | Some(Token::Word(n)) if !n.is_empty() => n,
        _ => bail!("{shape}: the key has no name"),
    };
    if it.next() != Some(Token::Open) {
        bail!("{shape}");
    }
    let mut algorithm = None;
    let mut secret = None;
    loop {
        match it.next() {
            Some(Token::Close) => break,
            Some(Token::Word(clause)) => {
                let value = match it.next() {
                    Some(Token::Word(v)) | Some(Token::Quoted(v)) => v,
                    _ => bail!("{shape}: a clause has no value"),
                };
                if it.next() != Some(Token::Semi) {
                    bail!("{shape}: `;` missing after a clause's value");
                }
                match clause.to_ascii_lowercase().as_str() {
                    "algorithm" => algorithm = Some(algorithm_of(&value, path)?),
                    "secret" => secret = Some(decode_secret(&value, path)?),
                    // Not quoted: a secret written without its quotes lands here.
                    _ => bail!("{shape}: a clause other than `algorithm` and `secret`"),
                }
            }
            _ => bail!("{shape}"),
        }
    }
    // The closing `;` is what BIND requires; tolerate its absence at the end.
    match it.next() {
        None | Some(Token::Semi) => {}
        Some(_) => bail!("{shape}: more than one statement (edgeup reads one key)"),
    }
    if it.next().is_some() {
        bail!("{shape}: more than one statement (edgeup reads one key)");
    }
    let Some(algorithm) = algorithm else {
        bail!("{shape}: `algorithm` is missing");
    };
    let Some(secret) = secret else {
        bail!("{shape}: `secret` is missing");
    };
    Ok(TsigKey {
        name: name.trim_end_matches('.').to_ascii_lowercase(),
        algorithm,
        secret,
    })
}

fn algorithm_of(value: &str, path: &str) -> Result<Algorithm> {
    Ok(match value.to_ascii_lowercase().as_str() {
        "hmac-sha256" => Algorithm::HmacSha256,
        "hmac-sha384" => Algorithm::HmacSha384,
        "hmac-sha512" => Algorithm::HmacSha512,
        // The value is not quoted back: a file with the two values swapped
        // would put the secret in the message.
        _ => bail!(
            "{path}: the algorithm is not one edgeup signs with; use hmac-sha256, hmac-sha384 or \
             hmac-sha512 (e.g. `tsig-keygen -a hmac-sha256 NAME`)"
        ),
    })
}

fn decode_secret(value: &str, path: &str) -> Result<Vec<u8>> {
    let compact: String = value.chars().filter(|c| !c.is_whitespace()).collect();
    match data_encoding::BASE64.decode(compact.as_bytes()) {
        Ok(bytes) if !bytes.is_empty() => Ok(bytes),
        _ => bail!(
            "{path}: the secret is not valid base64 (the file may be damaged; make a new key with \
             `tsig-keygen -a hmac-sha256 NAME` and give it to the DNS server too)"
        ),
    }
}

fn tokenize(text: &str, path: &str) -> Result<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '#' => skip_line(&mut chars),
            '/' if chars.peek() == Some(&'/') => skip_line(&mut chars),
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                loop {
                    match chars.next() {
                        Some('/') if prev == '*' => break,
                        Some(c) => prev = c,
                        None => bail!("{path}: a `/*` comment is not closed"),
                    }
                }
            }
            '{' => tokens.push(Token::Open),
            '}' => tokens.push(Token::Close),
            ';' => tokens.push(Token::Semi),
            '"' => {
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => bail!("{path}: a quoted string is not closed"),
                    }
                }
                tokens.push(Token::Quoted(s));
            }
            c => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '{' | '}' | ';' | '"') {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                tokens.push(Token::Word(s));
            }
        }
    }
    Ok(tokens)
}

fn skip_line(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if c == '\n' {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTAxMjM0NTY3ODk=";

    #[test]
    fn reads_what_tsig_keygen_writes() -> Result<()> {
        let text = format!(
            "key \"edgeup-Test.\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n"
        );
        let key = parse(&text, "/etc/edgeup/tsig.key")?;
        assert_eq!(key.name, "edgeup-test");
        assert_eq!(key.algorithm, Algorithm::HmacSha256);
        assert_eq!(key.secret(), b"secret-secret-secret-secret-0123456789");
        let debug = format!("{key:?}");
        assert!(
            !debug.contains(SECRET) && !debug.contains("secret-secret"),
            "{debug}"
        );
        Ok(())
    }

    #[test]
    fn comments_unquoted_name_other_algorithms() -> Result<()> {
        let text = format!(
            "# made by hand\n// another\n/* and\n a block */ key k1 {{ secret \"{SECRET}\"; \
             algorithm HMAC-SHA512; }}"
        );
        let key = parse(&text, "k")?;
        assert_eq!(
            (key.name.as_str(), key.algorithm),
            ("k1", Algorithm::HmacSha512)
        );
        let key = parse(
            &format!("key \"a\" {{ algorithm hmac-sha384; secret \"{SECRET}\"; }};"),
            "k",
        )?;
        assert_eq!(key.algorithm, Algorithm::HmacSha384);
        Ok(())
    }

    #[test]
    fn errors_name_the_file_never_the_secret() {
        let bad = [
            format!("key \"a\" {{ algorithm hmac-md5; secret \"{SECRET}\"; }};"),
            format!("key \"a\" {{ algorithm hmac-sha256; secret \"{SECRET}!!\"; }};"),
            "key \"a\" { algorithm hmac-sha256; };".to_string(),
            format!("key \"a\" {{ secret \"{SECRET}\"; }};"),
            format!("key \"a\" {{ algorithm hmac-sha256; secret \"{SECRET}\" }};"),
            format!("key \"a\" {{ algorithm hmac-sha256; secret \"{SECRET};"),
            SECRET.to_string(),
            format!("key \"a\" {{ algorithm hmac-sha256; {SECRET} \"x\"; }};"),
            format!("key \"a\" {{ algorithm {SECRET}; secret hmac-sha256; }};"),
            format!("key \"a\" {{ algorithm hmac-sha256; {SECRET}; }};"),
            format!("key \"a\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }}; key \"b\" {{}};"),
            format!("key \"a\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }} /* {SECRET}"),
            String::new(),
        ];
        for text in bad {
            let err = format!(
                "{:#}",
                parse(&text, "/etc/edgeup/tsig.key").expect_err(&text)
            );
            assert!(err.contains("/etc/edgeup/tsig.key"), "{err}");
            assert!(!err.contains(SECRET) && !err.contains("c2VjcmV0"), "{err}");
        }
    }
}
