//! The guard every paginated AWS list call goes through: a next-page token seen before, or
//! more pages than any real list has, ends the listing with an error instead of a loop that
//! never ends.

use aws_api::AwsError;
use std::collections::HashSet;

/// Most pages one listing reads: 1,000 pages of 100 is far beyond any cluster or namespace.
pub const MAX_PAGES: usize = 1000;

/// The pages of one listing read so far.
pub struct Pages {
    operation: &'static str,
    seen: HashSet<String>,
    read: usize,
}

impl Pages {
    /// A listing by `operation`, no page read yet.
    pub fn new(operation: &'static str) -> Self {
        Pages {
            operation,
            seen: HashSet::new(),
            read: 0,
        }
    }

    /// Takes the next-page token of the page just read: the token to ask for next, `None`
    /// when the list is complete, or an error when the service repeats itself or the list
    /// has no end.
    pub fn next(&mut self, token: Option<String>) -> Result<Option<String>, AwsError> {
        self.read += 1;
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let reason = if self.read >= MAX_PAGES {
            format!("pagination does not end: still a next page after {MAX_PAGES} pages")
        } else if !self.seen.insert(token.clone()) {
            format!(
                "pagination does not end: page {} gave a NextToken an earlier page gave",
                self.read
            )
        } else {
            return Ok(Some(token));
        };
        Err(AwsError::Decode {
            operation: self.operation,
            reason,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_token_or_an_endless_list_ends_the_listing() {
        let mut pages = Pages::new("ListTasks");
        assert_eq!(pages.next(Some("a".into())).expect("new"), Some("a".into()));
        assert_eq!(pages.next(Some("b".into())).expect("new"), Some("b".into()));
        let error = pages.next(Some("a".into())).expect_err("repeated");
        assert!(error.to_string().contains("ListTasks"), "{error}");
        assert!(error.to_string().contains("page 3"), "{error}");

        let mut pages = Pages::new("ListInstances");
        assert_eq!(pages.next(Some(String::new())).expect("empty ends"), None);
        let mut pages = Pages::new("ListInstances");
        for i in 1..MAX_PAGES {
            assert!(pages.next(Some(format!("t{i}"))).expect("fresh").is_some());
        }
        assert!(pages.next(Some("one more".into())).is_err());
    }
}
