//! Parsers of configuration values shared by the roles' flags, so that a value that makes no
//! sense is refused at start with the flag's name (clap adds it) instead of misbehaving later.

/// Smallest and largest request body limit a role accepts, in bytes.
pub const BODY_LIMIT_RANGE: std::ops::RangeInclusive<usize> = 1024..=16 * 1024 * 1024;

/// A request body limit: from 1 KiB (a submission must fit) to 16 MiB.
pub fn body_limit(raw: &str) -> Result<usize, String> {
    let bytes: usize = raw
        .parse()
        .map_err(|_| format!("{raw:?} is not a number of bytes"))?;
    if BODY_LIMIT_RANGE.contains(&bytes) {
        Ok(bytes)
    } else {
        Err(format!(
            "{bytes} is outside {}..={} bytes",
            BODY_LIMIT_RANGE.start(),
            BODY_LIMIT_RANGE.end()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_limits_outside_the_range_are_refused() {
        assert_eq!(body_limit("65536"), Ok(65536));
        assert_eq!(body_limit("1024"), Ok(1024));
        for bad in ["0", "1023", "16777217", "-1", "lots"] {
            assert!(body_limit(bad).is_err(), "{bad}");
        }
    }
}
