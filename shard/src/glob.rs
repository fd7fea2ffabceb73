//! Redis glob matching (`stringmatchlen` in Redis's `util.c`, case-sensitive), for KEYS
//! and SCAN MATCH: `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x`. An unterminated `[` class
//! ends at the end of the pattern; a `\` at the very end matches itself.

/// Deeper recursion than this (one level per `*`) is treated as "no match", as in Redis.
const MAX_NESTING: u32 = 1000;

/// A pattern with Redis's KEYS/SCAN fast path: a lone `*` matches every key (even the
/// empty one, which the matcher itself would reject).
pub struct Glob<'a> {
    pattern: &'a [u8],
    all: bool,
}

impl<'a> Glob<'a> {
    pub fn new(pattern: &'a [u8]) -> Glob<'a> {
        let all = pattern == b"*";
        Glob { pattern, all }
    }

    /// True when every key matches (the pattern is `*`).
    pub fn matches_all(&self) -> bool {
        self.all
    }

    pub fn matches(&self, s: &[u8]) -> bool {
        self.all || glob_match(self.pattern, s)
    }
}

/// True if `s` matches the Redis glob `pattern`.
pub fn glob_match(pattern: &[u8], s: &[u8]) -> bool {
    let mut skip_longer = false;
    match_impl(pattern, s, &mut skip_longer, 0)
}

/// `p[i]`, or 0 past the end (C reads the string's terminator there).
fn at(p: &[u8], i: usize) -> u8 {
    p.get(i).copied().unwrap_or(0)
}

fn match_impl(mut p: &[u8], mut s: &[u8], skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    while !p.is_empty() && !s.is_empty() {
        let mut advance_pattern = true;
        match p[0] {
            b'*' => {
                while p.get(1) == Some(&b'*') {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                while !s.is_empty() {
                    if match_impl(&p[1..], s, skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s = &s[1..];
                }
                // No match for the rest of the pattern from anywhere in the rest of the
                // string: an earlier `*` matching more cannot help either.
                *skip_longer = true;
                return false;
            }
            b'?' => s = &s[1..],
            b'[' => {
                p = &p[1..];
                let negate = at(p, 0) == b'^';
                if negate {
                    p = &p[1..];
                }
                let mut matched = false;
                loop {
                    if at(p, 0) == b'\\' && p.len() >= 2 {
                        p = &p[1..];
                        if p[0] == s[0] {
                            matched = true;
                        }
                    } else if at(p, 0) == b']' {
                        break;
                    } else if p.is_empty() {
                        // Unterminated class: the pattern is used up.
                        advance_pattern = false;
                        break;
                    } else if p.len() >= 3 && p[1] == b'-' {
                        let (mut lo, mut hi) = (p[0], p[2]);
                        if lo > hi {
                            std::mem::swap(&mut lo, &mut hi);
                        }
                        p = &p[2..];
                        if (lo..=hi).contains(&s[0]) {
                            matched = true;
                        }
                    } else if p[0] == s[0] {
                        matched = true;
                    }
                    p = &p[1..];
                }
                if negate {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
            }
            b'\\' => {
                if p.len() >= 2 {
                    p = &p[1..];
                }
                if p[0] != s[0] {
                    return false;
                }
                s = &s[1..];
            }
            c => {
                if c != s[0] {
                    return false;
                }
                s = &s[1..];
            }
        }
        if advance_pattern {
            p = &p[1..];
        }
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            break;
        }
    }
    p.is_empty() && s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pattern: &str, s: &str, expected: bool) {
        assert_eq!(glob_match(pattern.as_bytes(), s.as_bytes()), expected, "pattern {pattern:?} on {s:?}");
        assert_eq!(Glob::new(pattern.as_bytes()).matches(s.as_bytes()), expected, "Glob {pattern:?} on {s:?}");
    }

    #[test]
    fn literals_and_wildcards() {
        check("", "", true);
        check("", "a", false);
        check("a", "", false);
        check("abc", "abc", true);
        check("abc", "abd", false);
        check("abc", "ab", false);
        // As in Redis, `*` does not match the empty string in the matcher, but KEYS and
        // SCAN treat a lone `*` as "everything" (see `Glob`).
        assert!(!glob_match(b"*", b""));
        assert!(Glob::new(b"*").matches(b""));
        check("*", "anything", true);
        check("**", "x", true);
        check("a*", "a", true);
        check("a*", "abc", true);
        check("a*", "bac", false);
        check("*c", "abc", true);
        check("*c", "abcd", false);
        check("a*c", "ac", true);
        check("a*c", "abbbc", true);
        check("a*b*c", "axxbyyc", true);
        check("a*b*c", "axxbyy", false);
        check("h?llo", "hello", true);
        check("h?llo", "hllo", false);
        check("?", "", false);
        check("user:*", "user:1", true);
        check("user:*", "user", false);
        check("*:*", "t:k", true);
    }

    #[test]
    fn classes() {
        check("h[ae]llo", "hello", true);
        check("h[ae]llo", "hallo", true);
        check("h[ae]llo", "hillo", false);
        check("h[^e]llo", "hallo", true);
        check("h[^e]llo", "hello", false);
        check("h[a-b]llo", "hallo", true);
        check("h[a-b]llo", "hbllo", true);
        check("h[a-b]llo", "hcllo", false);
        check("h[b-a]llo", "hallo", true); // reversed range
        // Redis reads `a-]` as the range a..] (swapped to ]..a), leaving the class
        // unterminated.
        check("[a-]", "-", false);
        check("[a-]", "a", true);
        check("[a-]", "^", true);
        check("[]", "]", false);
        check("[\\]]", "]", true);
        check("[\\^a]", "^", true);
        check("x[abc", "xa", true); // unterminated class
        check("x[abc", "xd", false);
        check("x[", "x", false);
        check("x[^", "xa", true);
    }

    #[test]
    fn escapes() {
        check("\\*", "*", true);
        check("\\*", "a", false);
        check("a\\?", "a?", true);
        check("a\\?", "ab", false);
        check("\\[a]", "[a]", true);
        check("a\\", "a\\", true); // trailing backslash matches itself
    }

    #[test]
    fn binary_safe() {
        assert!(glob_match(b"a\0*", b"a\0bc"));
        assert!(!glob_match(b"a\0*", b"a\x01bc"));
        assert!(glob_match(b"[\x00-\x02]", b"\x01"));
    }

    #[test]
    fn pathological_patterns_terminate() {
        let pattern = "a*".repeat(30) + "b";
        let s = "a".repeat(60);
        check(&pattern, &s, false);
        let deep = "*x".repeat(2000);
        // Deeper than MAX_NESTING: Redis gives up and reports no match.
        assert!(!glob_match(deep.as_bytes(), "x".repeat(3000).as_bytes()));
    }

    #[test]
    fn match_all_fast_path() {
        assert!(Glob::new(b"*").matches_all());
        assert!(!Glob::new(b"**").matches_all());
        assert!(Glob::new(b"**").matches(b"x"));
        assert!(!Glob::new(b"").matches_all());
        assert!(!Glob::new(b"a*").matches_all());
    }
}
