//! A unified line diff (as `diff -u` prints it) of two small texts, for
//! showing what a refresh changes. Longest common subsequence over lines:
//! quadratic, which is nothing for a file of a hundred lines.

/// Lines of context around each change.
const CONTEXT: usize = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Keep,
    Remove,
    Add,
}

/// `diff -u`-style text from `old` to `new` with the given labels; empty
/// when the texts are equal.
pub fn unified(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    if old == new {
        return String::new();
    }
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let ops = script(&a, &b);
    let mut out = format!("--- {old_label}\n+++ {new_label}\n");
    // Positions (in a and b) at each op, to number the hunks.
    let mut positions = Vec::with_capacity(ops.len());
    let (mut i, mut j) = (0, 0);
    for (op, _) in &ops {
        positions.push((i, j));
        match op {
            Op::Keep => {
                i += 1;
                j += 1;
            }
            Op::Remove => i += 1,
            Op::Add => j += 1,
        }
    }
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != Op::Keep).collect();
    let mut k = 0;
    while k < changed.len() {
        let start = changed[k].saturating_sub(CONTEXT);
        let mut end = changed[k];
        while k + 1 < changed.len() && changed[k + 1] <= end + 2 * CONTEXT + 1 {
            k += 1;
            end = changed[k];
        }
        let end = (end + CONTEXT + 1).min(ops.len());
        let (a0, b0) = positions[start];
        let count = |which: Op| {
            ops[start..end]
                .iter()
                .filter(|(op, _)| *op == Op::Keep || *op == which)
                .count()
        };
        let (na, nb) = (count(Op::Remove), count(Op::Add));
        let from = |pos: usize, n: usize| if n == 0 { pos } else { pos + 1 };
        out.push_str(&format!(
            "@@ -{},{na} +{},{nb} @@\n",
            from(a0, na),
            from(b0, nb)
        ));
        for (op, line) in &ops[start..end] {
            let mark = match op {
                Op::Keep => ' ',
                Op::Remove => '-',
                Op::Add => '+',
            };
            out.push(mark);
            out.push_str(line);
            out.push('\n');
        }
        k += 1;
    }
    out
}

/// The edit script: removals before additions where lines differ.
fn script<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<(Op, &'a str)> {
    let (n, m) = (a.len(), b.len());
    // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops = Vec::with_capacity(n + m);
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((Op::Keep, a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push((Op::Remove, a[i]));
            i += 1;
        } else {
            ops.push((Op::Add, b[j]));
            j += 1;
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_diff_u() {
        assert_eq!(unified("a\nb\n", "a\nb\n", "x", "y"), "");
        let old = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n";
        let new = "1\n2\n3\nfour\n5\n6\n7\n8\n9\n10\neleven\n";
        assert_eq!(
            unified(old, new, "old", "new"),
            "--- old\n+++ new\n\
             @@ -2,5 +2,5 @@\n 2\n 3\n-4\n+four\n 5\n 6\n\
             @@ -9,2 +9,3 @@\n 9\n 10\n+eleven\n"
        );
        // Changes close together share a hunk; a file made from nothing starts at 0.
        assert_eq!(
            unified("a\nb\nc\n", "a\nB\nc\nd\n", "o", "n"),
            "--- o\n+++ n\n@@ -1,3 +1,4 @@\n a\n-b\n+B\n c\n+d\n"
        );
        assert_eq!(
            unified("", "x\n", "o", "n"),
            "--- o\n+++ n\n@@ -0,0 +1,1 @@\n+x\n"
        );
        assert_eq!(
            unified("x\n", "", "o", "n"),
            "--- o\n+++ n\n@@ -1,1 +0,0 @@\n-x\n"
        );
    }
}
