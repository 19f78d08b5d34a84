//! Times as people here read them: always in Asia/Tokyo (JST), whatever the server's zone.

use chrono::{DateTime, Utc};
use chrono_tz::Asia::Tokyo;

use crate::i18n::Lang;

/// `2026年11月23日 14:05` or `23 Nov 2026, 14:05 JST`.
pub fn tokyo(at: DateTime<Utc>, lang: Lang) -> String {
    let local = at.with_timezone(&Tokyo);
    match lang {
        Lang::Ja => local.format("%Y年%-m月%-d日 %H:%M").to_string(),
        Lang::En => local.format("%-d %b %Y, %H:%M JST").to_string(),
    }
}

/// The machine-readable form for `<time datetime>`: RFC 3339 with the +09:00 offset.
pub fn tokyo_iso(at: DateTime<Utc>) -> String {
    at.with_timezone(&Tokyo).to_rfc3339()
}

/// A date only: `2026年11月23日` or `23 Nov 2026`.
pub fn tokyo_date(at: DateTime<Utc>, lang: Lang) -> String {
    let local = at.with_timezone(&Tokyo);
    match lang {
        Lang::Ja => local.format("%Y年%-m月%-d日").to_string(),
        Lang::En => local.format("%-d %b %Y").to_string(),
    }
}

/// Parses a `datetime-local` form value (`2026-11-23T14:05`) as Tokyo time.
pub fn parse_tokyo_local(s: &str) -> Option<DateTime<Utc>> {
    use chrono::TimeZone;
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    Tokyo
        .from_local_datetime(&naive)
        .single()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn midnight_utc_is_nine_in_the_morning_in_tokyo() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(tokyo(at, Lang::Ja), "2026年11月23日 09:00");
        assert_eq!(tokyo(at, Lang::En), "23 Nov 2026, 09:00 JST");
        assert_eq!(tokyo_iso(at), "2026-11-23T09:00:00+09:00");
    }

    #[test]
    fn late_evening_utc_is_the_next_day_in_tokyo() {
        let at = DateTime::parse_from_rfc3339("2026-11-23T20:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(tokyo_date(at, Lang::Ja), "2026年11月24日");
    }

    #[test]
    fn form_times_are_read_as_tokyo_times() {
        let at = parse_tokyo_local("2026-11-24T05:30").unwrap();
        assert_eq!(at.to_rfc3339(), "2026-11-23T20:30:00+00:00");
    }
}
