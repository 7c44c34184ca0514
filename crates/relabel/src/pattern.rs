//! Regexes with the meaning Go's `regexp` gives them: Go's syntax translated where it differs
//! from the `regex` crate's, Prometheus' anchoring, and Go's `Regexp.Expand` for `$` templates.

use crate::RelabelError;
use regex::Regex;
use std::sync::LazyLock;

/// A relabeling regex: the pattern as written, compiled as Prometheus compiles it
/// (`^(?:PATTERN)$`) with Go's meaning of each construct.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
    /// Go's name of each group, by number.
    names: Vec<Option<String>>,
}

impl Pattern {
    /// Compiles `source` as Prometheus does; the error names the pattern.
    pub fn new(source: &str) -> Result<Pattern, RelabelError> {
        let translated = translate(source).map_err(|reason| RelabelError::RegexSyntax {
            pattern: source.to_owned(),
            reason,
        })?;
        let anchored = format!("^(?:{})$", translated.pattern);
        let regex = Regex::new(&anchored).map_err(|error| RelabelError::Regex {
            pattern: source.to_owned(),
            source: Box::new(error),
        })?;
        Ok(Pattern {
            source: source.to_owned(),
            regex,
            names: translated.names,
        })
    }

    /// The pattern as written in the configuration, without the anchors.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the whole of `text` matches.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// The groups of the match of the whole of `text`, if it matches.
    pub fn captures<'t>(&self, text: &'t str) -> Option<regex::Captures<'t>> {
        self.regex.captures(text)
    }

    /// `template` expanded against the match of the whole of `text`, or `None` when `text`
    /// does not match.
    pub fn expand_match(&self, text: &str, template: &str) -> Option<String> {
        let captures = self.regex.captures(text)?;
        Some(self.expand(template, &captures))
    }

    /// Go's `Regexp.Expand`: `$$` is `$`; `$name` and `${name}` take the longest run of
    /// letters, digits and `_` as the name, a name that is a number without a leading zero is
    /// a group index, any other name a group name, and a group that does not exist or did not
    /// take part is empty; a `$` not followed by a name is kept as it is.
    pub fn expand(&self, template: &str, captures: &regex::Captures<'_>) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(dollar) = rest.find('$') {
            out.push_str(&rest[..dollar]);
            rest = &rest[dollar + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                out.push('$');
                rest = after;
                continue;
            }
            let Some((name, after)) = reference(rest) else {
                out.push('$');
                continue;
            };
            rest = after;
            let group = match group_number(name) {
                Some(number) => captures.get(number),
                None => self
                    .names
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| n.as_deref() == Some(name))
                    .find_map(|(i, _)| captures.get(i)),
            };
            if let Some(group) = group {
                out.push_str(group.as_str());
            }
        }
        out.push_str(rest);
        out
    }
}

/// Letters and decimal digits as Go's `unicode.IsLetter` and `unicode.IsDigit` define them.
// A fixed pattern, compiled by the tests: it cannot fail at run time.
#[allow(clippy::expect_used)]
static NAME_RUN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[\p{L}\p{Nd}_]+").expect("a fixed pattern that compiles (tested)")
});

/// The name after a `$` (bare or in braces) and the text after it, as Go's `extract`.
fn reference(text: &str) -> Option<(&str, &str)> {
    let (braced, text) = match text.strip_prefix('{') {
        Some(inner) => (true, inner),
        None => (false, text),
    };
    let name = NAME_RUN.find(text)?.as_str();
    let after = &text[name.len()..];
    if braced {
        let after = after.strip_prefix('}')?;
        return Some((name, after));
    }
    Some((name, after))
}

/// A name that Go reads as a group index: ASCII digits, no leading zero, below 10^8.
fn group_number(name: &str) -> Option<usize> {
    if !name.bytes().all(|b| b.is_ascii_digit()) || (name.len() > 1 && name.starts_with('0')) {
        return None;
    }
    let mut number: usize = 0;
    for b in name.bytes() {
        if number >= 100_000_000 {
            return None;
        }
        number = number * 10 + usize::from(b - b'0');
    }
    Some(number)
}

/// A pattern rewritten for the `regex` crate, with the names of its groups.
struct Translated {
    pattern: String,
    /// The name of each group by number (0, the whole match, has none), as Go names them.
    names: Vec<Option<String>>,
}

/// Rewrites the constructs whose meaning differs between Go's `regexp/syntax` and the `regex`
/// crate, so that the crate matches what Go matches, and refuses what Go refuses but the
/// crate would take:
/// - `\d \w \s` (and `\D \W \S`) are ASCII in Go, Unicode in the crate: written as explicit
///   ASCII classes; `\b \B` are ASCII word boundaries in Go: written `(?-u:\b)`;
/// - `\<` and `\>` are the literal `<` and `>` in Go, word boundaries in the crate;
/// - `\Q...\E` quotes literally in Go, unknown to the crate;
/// - a `{` that does not start a repetition is literal in Go, an error in the crate; a count
///   above 1000, and a repetition of a repetition (`a**`, `a{2}*`), are errors in Go only;
/// - in a character class, `[` (unless `[:name:]`), `&` and `~` are literal in Go, nested
///   classes and set operations in the crate;
/// - group names may repeat and start with a digit in Go: groups are written unnamed here and
///   their names kept aside for `$name`.
fn translate(pattern: &str) -> Result<Translated, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut names = vec![None];
    let mut in_class = false;
    // Just after `[` or `[^`, where `]` is a literal.
    let mut class_start = false;
    // The previous token was a repetition, which Go does not let another follow.
    let mut after_repeat = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at_class_start = class_start;
        class_start = false;
        let was_repeat = after_repeat;
        after_repeat = false;
        if c == '\\' {
            let Some(&next) = chars.get(i + 1) else {
                // A trailing backslash: left for the compiler to refuse.
                out.push(c);
                i += 1;
                continue;
            };
            i += 2;
            match next {
                'd' => out.push_str("[0-9]"),
                'D' => out.push_str("[^0-9]"),
                'w' => out.push_str("[0-9A-Za-z_]"),
                'W' => out.push_str("[^0-9A-Za-z_]"),
                's' => out.push_str("[\\t\\n\\f\\r ]"),
                'S' => out.push_str("[^\\t\\n\\f\\r ]"),
                'b' if !in_class => out.push_str("(?-u:\\b)"),
                'B' if !in_class => out.push_str("(?-u:\\B)"),
                '<' | '>' => out.push(next),
                'Q' if !in_class => {
                    let rest: String = chars[i..].iter().collect();
                    let (quoted, after) = match rest.find("\\E") {
                        Some(end) => (&rest[..end], end + 2),
                        None => (rest.as_str(), rest.len()),
                    };
                    out.push_str(&regex::escape(quoted));
                    i += rest[..after].chars().count();
                }
                _ => {
                    out.push('\\');
                    out.push(next);
                    // `\x{...}`, `\p{...}` and `\P{...}` keep their braces.
                    if matches!(next, 'x' | 'p' | 'P') && chars.get(i) == Some(&'{') {
                        while let Some(&c) = chars.get(i) {
                            out.push(c);
                            i += 1;
                            if c == '}' {
                                break;
                            }
                        }
                    }
                }
            }
            continue;
        }
        if in_class {
            match c {
                ']' if !at_class_start => {
                    in_class = false;
                    out.push(c);
                }
                '[' if chars.get(i + 1) == Some(&':') => {
                    // A POSIX class `[:name:]` (or `[:^name:]`), the same in both syntaxes.
                    let rest: String = chars[i..].iter().collect();
                    match rest.find(":]") {
                        Some(end) if end >= 2 => {
                            out.push_str(&rest[..end + 2]);
                            i += rest[..end + 2].chars().count();
                            continue;
                        }
                        _ => out.push_str("\\["),
                    }
                }
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                '^' if at_class_start && out.ends_with('[') => {
                    out.push(c);
                    class_start = true;
                }
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        let rest: String = chars[i..].iter().collect();
        let repeat_len = match c {
            '*' | '+' | '?' => Some(1),
            '{' => repetition(&rest)?,
            _ => None,
        };
        if let Some(len) = repeat_len {
            // A `?` right after a repetition makes it non-greedy: part of the same operator.
            let lazy = chars.get(i + len) == Some(&'?');
            let end = i + len + usize::from(lazy);
            let operator: String = chars[i..end].iter().collect();
            if was_repeat {
                return Err(format!("invalid nested repetition operator: `{operator}`"));
            }
            out.push_str(&operator);
            after_repeat = true;
            i = end;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                class_start = true;
                out.push(c);
            }
            '{' => out.push_str("\\{"),
            '(' => {
                let named = ["(?P<", "(?<"]
                    .iter()
                    .find(|prefix| rest.starts_with(**prefix))
                    .and_then(|prefix| {
                        let name_end = rest.find('>')?;
                        Some((rest[prefix.len()..name_end].to_owned(), name_end + 1))
                    });
                match named {
                    Some((name, len)) => {
                        // Go's rule for a group name: word characters, at least one.
                        if name.is_empty()
                            || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                        {
                            return Err(format!("invalid named capture: `{}`", &rest[..len]));
                        }
                        names.push(Some(name));
                        out.push('(');
                        i += rest[..len].chars().count();
                        continue;
                    }
                    None if !rest.starts_with("(?") => names.push(None),
                    None => {}
                }
                out.push(c);
            }
            _ => out.push(c),
        }
        i += 1;
    }
    Ok(Translated {
        pattern: out,
        names,
    })
}

/// The length of the counted repetition `text` starts with as Go's parser reads it (`{n}`,
/// `{n,}` or `{n,m}`, numbers without leading zeros), `None` when `{` is a literal, or Go's
/// refusal of a count above 1000 or a range backwards.
fn repetition(text: &str) -> Result<Option<usize>, String> {
    let Some(found) = REPETITION.captures(text) else {
        return Ok(None);
    };
    let whole = found.get(0).map_or("", |m| m.as_str());
    // Up to nine digits each (the pattern says so), so neither overflows.
    let number = |i: usize| found.get(i).and_then(|m| m.as_str().parse::<u64>().ok());
    let min = number(1).unwrap_or(0);
    let max = match found.get(2) {
        None => Some(min),
        Some(_) => number(3),
    };
    if min > 1000 || max.is_some_and(|max| max > 1000 || min > max) {
        return Err(format!("invalid repeat count: `{whole}`"));
    }
    Ok(Some(whole.chars().count()))
}

/// A counted repetition as Go's parser accepts it: `{n}`, `{n,}` or `{n,m}`, numbers without
/// leading zeros (longer numbers are refused by Go as too large, and here as above 1000).
// A fixed pattern, compiled by the tests: it cannot fail at run time.
#[allow(clippy::expect_used)]
static REPETITION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\{(0|[1-9][0-9]{0,8})(,(0|[1-9][0-9]{0,8})?)?\}")
        .expect("a fixed pattern that compiles (tested)")
});

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn expand(pattern: &str, text: &str, template: &str) -> String {
        Pattern::new(pattern)
            .unwrap()
            .expand_match(text, template)
            .unwrap()
    }

    #[test]
    fn expand_follows_go_rules() {
        assert_eq!(expand("(a)(b)", "ab", "$1-$2"), "a-b");
        assert_eq!(expand("(a)(b)", "ab", "${1}x"), "ax");
        // `$1x` names the group `1x`, which does not exist.
        assert_eq!(expand("(a)(b)", "ab", "$1x"), "");
        assert_eq!(expand("(a)(b)", "ab", "$$1"), "$1");
        assert_eq!(expand("(a)(b)", "ab", "$"), "$");
        assert_eq!(expand("(a)(b)", "ab", "${1"), "${1");
        assert_eq!(expand("(a)(b)", "ab", "$-"), "$-");
        assert_eq!(expand("(a)(b)", "ab", "$3"), "");
        assert_eq!(expand("(a)(b)", "ab", "$0"), "ab");
        assert_eq!(expand("(a)(b)", "ab", "$01"), "");
        assert_eq!(expand("(?P<first>a)(b)", "ab", "$first.${first}"), "a.a");
        assert_eq!(expand("(?P<first>a)(b)", "ab", "$first_x"), "");
        // A name runs over any letter, though a group's name can only have ASCII ones.
        assert_eq!(expand("(a)", "a", "${é}|$1é|$1"), "||a");
        assert_eq!(expand("(a)|(b)", "b", "[$1][$2]"), "[][b]");
        // Go lets names repeat (the first group that took part wins) and start with a digit.
        assert_eq!(expand("(?P<n>a)?(?P<n>b)", "b", "$n"), "b");
        assert_eq!(expand("(?P<n>a)(?P<n>b)", "ab", "$n"), "a");
        assert_eq!(expand("(?P<1x>a)(b)", "ab", "$1x.$2"), "a.b");
        assert_eq!(expand("(?<n>a)((?:b))", "ab", "$n$2"), "ab");
    }

    #[test]
    fn classes_are_ascii_as_in_go() {
        let digits = Pattern::new(r"\d+").unwrap();
        assert!(digits.is_match("123"));
        assert!(!digits.is_match("١٢٣"));
        let word = Pattern::new(r"\w+").unwrap();
        assert!(!word.is_match("é"));
        let not_word = Pattern::new(r"[^\w]").unwrap();
        assert!(not_word.is_match("é"));
        let space = Pattern::new(r"\s").unwrap();
        assert!(space.is_match(" ") && !space.is_match("\u{a0}") && !space.is_match("\u{b}"));
        let boundary = Pattern::new(r".*\bx").unwrap();
        assert!(boundary.is_match("éx"));
    }

    #[test]
    fn go_literals_stay_literal() {
        assert!(Pattern::new(r"a\<b\>").unwrap().is_match("a<b>"));
        assert!(Pattern::new(r"a{").unwrap().is_match("a{"));
        assert!(Pattern::new(r"a{x}").unwrap().is_match("a{x}"));
        assert!(Pattern::new(r"a{2}").unwrap().is_match("aa"));
        assert!(Pattern::new(r"a{1,}").unwrap().is_match("aaa"));
        assert!(Pattern::new(r"[[]").unwrap().is_match("["));
        assert!(Pattern::new(r"[a&&b]+").unwrap().is_match("a&b"));
        assert!(Pattern::new(r"[]a]+").unwrap().is_match("]a"));
        assert!(Pattern::new(r"[^]a]").unwrap().is_match("b"));
        assert!(Pattern::new(r"[[:alpha:]]+").unwrap().is_match("ab"));
        assert!(Pattern::new(r"\Q.*\E.").unwrap().is_match(".*x"));
        assert!(
            Pattern::new(r"\x{3A3}\p{Greek}[\x{61}-\x{62}]\pL")
                .unwrap()
                .is_match("Σαbc")
        );
        assert!(!Pattern::new(r"\Q.*\E").unwrap().is_match("ab"));
        assert!(Pattern::new(r"a{01}").unwrap().is_match("a{01}"));
        assert!(Pattern::new(r"a{,2}").unwrap().is_match("a{,2}"));
        assert!(
            Pattern::new(r"a{1000}")
                .unwrap()
                .is_match(&"a".repeat(1000))
        );
        assert!(Pattern::new(r"a*?b+?c??").unwrap().is_match("aabc"));
    }

    #[test]
    fn anchored_as_prometheus() {
        let p = Pattern::new("b|c").unwrap();
        assert!(p.is_match("b"));
        assert!(!p.is_match("ab"));
        assert!(!p.is_match("bc"));
    }

    #[test]
    fn re2_refusals_name_the_pattern() {
        for pattern in [
            "(?=a)",
            "(?!a)",
            "(?<=a)b",
            r"(a)\1",
            "a(",
            "a**",
            "a*+",
            "a??*",
            "a{2}{3}",
            "a{1001}",
            "a{2,1}",
            "(?P<>a)",
            "(?P<a-b>a)",
        ] {
            let error = Pattern::new(pattern).unwrap_err();
            assert!(
                error.to_string().contains(&format!("{pattern:?}")),
                "{error}"
            );
        }
    }
}
