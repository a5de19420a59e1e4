//! What kind-crio knows of kind itself: which releases it works with.

/// kind's `--type` for `build node-image` arrived in v0.24.0.
pub const MIN_KIND: (u64, u64) = (0, 24);

/// `kind v0.33.0 go1.25.1 linux/amd64` → (0, 33).
pub fn parse_kind_version(out: &str) -> Option<(u64, u64)> {
    let v = out.split_whitespace().nth(1)?.strip_prefix('v')?;
    let mut parts = v.split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(
            parse_kind_version("kind v0.33.0 go1.25.1 linux/amd64"),
            Some((0, 33))
        );
        assert_eq!(
            parse_kind_version("kind v0.24.0-alpha+abc go1.22 linux/arm64"),
            Some((0, 24))
        );
        assert_eq!(parse_kind_version("nonsense"), None);
    }
}
