//! What kind-crio knows of kind itself: which releases it works with.

/// kind's `--type` for `build node-image` arrived in v0.24.0.
pub const MIN_KIND: (u64, u64) = (0, 24);

/// `kind v0.33.0 go1.25.1 linux/amd64` (what `kind version` prints) → (0, 33).
pub fn parse_kind_version(out: &str) -> Option<(u64, u64)> {
    parse_version(out.split_whitespace().nth(1)?)
}

/// `v0.33.0`, `v0.24.0-alpha+abc` → (0, 33), (0, 24).
pub fn parse_version(v: &str) -> Option<(u64, u64)> {
    let mut parts = v.strip_prefix('v')?.split(['.', '-']);
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
        assert_eq!(parse_version("v0.33.1"), Some((0, 33)));
        assert_eq!(parse_version("0.33.1"), None);
    }
}
