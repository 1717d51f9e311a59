//! How strong a shared token is: an estimate of its entropy from its length and the alphabet
//! it draws on, and a refusal of tokens that are short or repetitive.
//!
//! A token that guards a door on the network must hold at least [`MIN_TOKEN_BITS`] (32 bytes)
//! of entropy: `openssl rand -hex 32` (64 hex digits) or `openssl rand -base64 32` (44
//! characters) both do. The estimate is an upper bound for random tokens and deliberately
//! rough: it catches `changeme`, a 1-character token and `aaaa…`, not a clever pattern.

/// The least entropy a token must have, in bits.
pub const MIN_TOKEN_BITS: f64 = 256.0;

/// The estimated entropy of `token`, in bits: its length times the bits per character of the
/// smallest alphabet (hex, decimal, letters, base64, printable ASCII) that holds it; but when
/// it uses fewer than half the different characters a random draw of its length from that
/// alphabet would, it repeats itself, and only the characters it uses count.
#[must_use]
pub fn estimated_bits(token: &str) -> f64 {
    let characters: Vec<char> = token.chars().collect();
    let is_hex = characters.iter().all(char::is_ascii_hexdigit)
        && (characters.iter().all(|c| !c.is_ascii_uppercase())
            || characters.iter().all(|c| !c.is_ascii_lowercase()));
    let alphabet: f64 = if characters.iter().all(char::is_ascii_digit) {
        10.0
    } else if is_hex {
        16.0
    } else if characters.iter().all(char::is_ascii_alphabetic) {
        52.0
    } else if characters
        .iter()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/' | '='))
    {
        64.0
    } else {
        95.0
    };
    let mut distinct = characters.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let used = distinct.len() as f64;
    // The expected number of different characters in n uniform draws from the alphabet:
    // A * (1 - (1 - 1/A)^n). Bounded loop: tokens are short, and the product only shrinks.
    let mut none_drawn = 1.0;
    for _ in 0..characters.len().min(4096) {
        none_drawn *= 1.0 - 1.0 / alphabet;
    }
    let expected = alphabet * (1.0 - none_drawn);
    let per_character = if used < expected / 2.0 {
        used.max(1.0).log2()
    } else {
        alphabet.log2()
    };
    characters.len() as f64 * per_character
}

/// Refuses a token with less than [`MIN_TOKEN_BITS`] estimated entropy.
///
/// # Errors
///
/// Why it is too weak and how to make a strong one (the token itself is never shown).
pub fn check_token(token: &str) -> Result<(), String> {
    let bits = estimated_bits(token);
    if bits < MIN_TOKEN_BITS {
        return Err(format!(
            "the token is too weak (about {bits:.0} bits of entropy, {} characters; at least {MIN_TOKEN_BITS:.0} bits are needed): make one with `openssl rand -hex 32`",
            token.chars().count()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strong_random_tokens_pass_and_weak_ones_do_not() {
        // 64 hex digits and 44 base64 characters: 32 random bytes each.
        let strong = [
            "9f2c4a7be1d0583f6a2c9e7d4b1f0a3c5e8d2b6f9a1c4e7b0d3f6a9c2e5b8d1f",
            "q3Vx9Lk2Pz8Wm4Rt7Yb1Nc6Hd0Jf5Gs3Ke2Ua9Io8Ep7=",
            "vigil_adm_3qL9xWm2Pz8Kb4Rt7Yc1Nd6He0Jf5Gs3Ku2Va9I",
        ];
        for token in strong {
            assert!(
                check_token(token).is_ok(),
                "{token}: {}",
                estimated_bits(token)
            );
        }
        let weak = [
            "x",
            "s3cret-token",
            "changeme-changeme-changeme",
            &"a".repeat(100),
            &"ab".repeat(64),
            "0123456789012345678901234567890123456789",
            "9f2c4a7be1d0583f6a2c9e7d4b1f0a3c",
        ];
        for token in weak {
            assert!(
                check_token(token).is_err(),
                "{token}: {}",
                estimated_bits(token)
            );
        }
        let refusal = check_token("s3cret").unwrap_err();
        assert!(!refusal.contains("s3cret"), "{refusal}");
    }
}
