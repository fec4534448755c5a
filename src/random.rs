//! Unpredictable names and values (preflight tokens, test records,
//! temporary directory names), from the system's CSPRNG through ring (the
//! crypto backend already in the tree).

use anyhow::{Result, anyhow};

/// `bytes` random bytes as lowercase hex; `purpose` names what they are for
/// in the error (there is none in practice: the kernel's CSPRNG).
pub fn hex(bytes: usize, purpose: &str) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut buf)
        .map_err(|_| anyhow!("no randomness for {purpose}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_of_the_asked_length_and_never_twice_the_same() {
        let a = super::hex(16, "a test").expect("random");
        let b = super::hex(16, "a test").expect("random");
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
