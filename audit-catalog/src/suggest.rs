//! "Did you mean ...?" for names.

/// The candidates closest to `name`, best first: those within a small edit
/// distance, or sharing a prefix of at least three characters.
///
/// ```
/// let s = audit_catalog::suggest("app_ad", ["app_add", "app_destroy", "user_login"]);
/// assert_eq!(s, vec!["app_add"]);
/// ```
pub fn suggest<'a, I>(name: &str, candidates: I) -> Vec<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut scored: Vec<(f64, &'a str)> = candidates
        .into_iter()
        .filter_map(|c| {
            let score = strsim::jaro_winkler(name, c);
            let close = strsim::damerau_levenshtein(name, c) <= (name.len().max(3) / 3).max(1);
            (close || score >= 0.88).then_some((score, c))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// `did you mean `a`?` / `did you mean one of `a`, `b`?`, or `None`.
pub(crate) fn did_you_mean<'a, I>(name: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    format_suggestions(&suggest(name, candidates))
}

/// Formats a suggestion list as a hint (`None` when it is empty).
///
/// ```
/// assert_eq!(audit_catalog::format_suggestions(&["a", "b"]).unwrap(), "did you mean one of `a`, `b`?");
/// ```
pub fn format_suggestions(names: &[&str]) -> Option<String> {
    match names {
        [] => None,
        [one] => Some(format!("did you mean `{one}`?")),
        many => Some(format!(
            "did you mean one of {}?",
            many.iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
