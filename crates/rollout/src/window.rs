//! Maintenance windows: when a reboot may start.
//!
//! A window is written the way an operator says it, in one string:
//! `[DAYS] HH:MM-HH:MM [ZONE]`, e.g. `mon-fri 02:00-05:00 Europe/Berlin`,
//! `sat,sun 22:00-06:00`, `01:00-04:30 +02:00`. Days are `mon`..`sun`,
//! ranges (`fri-mon` wraps) and lists; without days, every day. A window
//! whose end is before its start runs past midnight and belongs to the
//! day it starts on; `24:00` is the end of the day. The zone is `UTC`
//! (the default), a fixed offset, or an IANA name looked up in the
//! system's time zone database. The window is open from its start
//! (inclusive) to its end (exclusive).

use std::fmt;
use std::str::FromStr;

use jiff::civil::Weekday;
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp, ToSpan};

/// A weekly maintenance window.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Monday first.
    days: [bool; 7],
    /// Minutes since midnight.
    start: u16,
    /// Minutes since midnight, `1440` for `24:00`.
    end: u16,
    zone: TimeZone,
    /// The zone as written, for display.
    zone_name: String,
}

/// Why a window does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "maintenance window {input:?}: {problem} (expected `[DAYS] HH:MM-HH:MM [ZONE]`, e.g. `mon-fri 02:00-05:00 Europe/Berlin`)"
)]
pub struct ParseError {
    input: String,
    problem: String,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Window {
    /// Whether the window is open at `at`.
    pub fn contains(&self, at: Timestamp) -> bool {
        let local = at.to_zoned(self.zone.clone());
        let minute = (local.hour() as u16) * 60 + local.minute() as u16;
        let today = day_index(local.weekday());
        if self.start < self.end {
            return self.days[today] && (self.start..self.end).contains(&minute);
        }
        // Past midnight: the evening part belongs to today, the morning
        // part to yesterday's window.
        let yesterday = (today + 6) % 7;
        (self.days[today] && minute >= self.start) || (self.days[yesterday] && minute < self.end)
    }

    /// The next instant at or after `at` when the window is open.
    pub fn next_open(&self, at: Timestamp) -> Timestamp {
        if self.contains(at) {
            return at;
        }
        let local = at.to_zoned(self.zone.clone());
        // The start on each of the next eight days (today included); the
        // first one in the future on an allowed day is the answer.
        for offset in 0..8i64 {
            let Ok(day) = local.date().checked_add(offset.days()) else {
                break;
            };
            if !self.days[day_index(day.weekday())] {
                continue;
            }
            let Ok(start) = day
                .at((self.start / 60) as i8, (self.start % 60) as i8, 0, 0)
                .to_zoned(self.zone.clone())
            else {
                continue;
            };
            if start.timestamp() >= at {
                return start.timestamp();
            }
        }
        at
    }

    /// How long until the window opens (zero while open).
    pub fn wait(&self, at: Timestamp) -> SignedDuration {
        self.next_open(at).duration_since(at)
    }
}

fn day_index(day: Weekday) -> usize {
    day.to_monday_zero_offset() as usize
}

impl FromStr for Window {
    type Err = ParseError;

    fn from_str(input: &str) -> Result<Window, ParseError> {
        let fail = |problem: String| ParseError {
            input: input.to_owned(),
            problem,
        };
        let mut days = None;
        let mut range = None;
        let mut zone = None;
        for token in input.split_whitespace() {
            if range.is_none() && token.contains(':') {
                range = Some(parse_range(token).map_err(fail)?);
            } else if range.is_none() && days.is_none() {
                days = Some(parse_days(token).map_err(fail)?);
            } else if range.is_some() && zone.is_none() {
                zone = Some((parse_zone(token).map_err(fail)?, token.to_owned()));
            } else {
                return Err(fail(format!("unexpected {token:?}")));
            }
        }
        let (start, end) = range.ok_or_else(|| fail("no time range".into()))?;
        let (zone, zone_name) = zone.unwrap_or((TimeZone::UTC, "UTC".into()));
        Ok(Window {
            days: days.unwrap_or([true; 7]),
            start,
            end,
            zone,
            zone_name,
        })
    }
}

fn parse_days(token: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    if matches!(token, "*" | "daily" | "every-day") {
        return Ok([true; 7]);
    }
    let day = |name: &str| {
        let lower = name.to_ascii_lowercase();
        DAY_NAMES
            .iter()
            .position(|d| lower.len() >= 3 && d.starts_with(&lower[..3]) && is_day_word(&lower))
            .ok_or_else(|| format!("{name:?} is not a day (mon..sun)"))
    };
    for part in token.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day(from)?, day(to)?);
                let mut d = from;
                loop {
                    days[d] = true;
                    if d == to {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[day(part)?] = true,
        }
    }
    if days.iter().all(|d| !d) {
        return Err(format!("{token:?} names no day"));
    }
    Ok(days)
}

/// `mon`, `monday`, `Mon`: the day's name or its first three letters.
fn is_day_word(lower: &str) -> bool {
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    lower.len() == 3 || FULL.contains(&lower)
}

fn parse_range(token: &str) -> Result<(u16, u16), String> {
    let (start, end) = token
        .split_once('-')
        .ok_or_else(|| format!("{token:?} is not a time range HH:MM-HH:MM"))?;
    let (start, end) = (parse_time(start)?, parse_time(end)?);
    if start == 1440 {
        return Err("a window cannot start at 24:00".into());
    }
    if start == end {
        return Err(format!(
            "{token:?} is empty (for all day, write 00:00-24:00)"
        ));
    }
    Ok((start, end))
}

fn parse_time(text: &str) -> Result<u16, String> {
    let bad = || format!("{text:?} is not a time of day HH:MM");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let digits = |s: &str, len: std::ops::RangeInclusive<usize>| {
        len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
    };
    if !digits(h, 1..=2) || !digits(m, 2..=2) {
        return Err(bad());
    }
    let (h, m): (u16, u16) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn parse_zone(token: &str) -> Result<TimeZone, String> {
    if token.eq_ignore_ascii_case("utc") || token == "Z" {
        return Ok(TimeZone::UTC);
    }
    if let Some(sign) = token.strip_prefix(['+', '-']).map(|_| &token[..1]) {
        let minutes = parse_time(&token[1..])
            .map_err(|_| format!("{token:?} is not a UTC offset like +02:00"))?;
        let seconds = i32::from(minutes) * 60 * if sign == "-" { -1 } else { 1 };
        let offset = Offset::from_seconds(seconds)
            .map_err(|_| format!("{token:?} is out of range for a UTC offset"))?;
        return Ok(TimeZone::fixed(offset));
    }
    TimeZone::get(token).map_err(|_| {
        format!(
            "time zone {token:?} is not in this system's time zone database (install tzdata, or write a UTC offset like +01:00)"
        )
    })
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.days.iter().all(|d| *d) {
            let names: Vec<&str> = DAY_NAMES
                .iter()
                .zip(self.days)
                .filter(|(_, on)| *on)
                .map(|(n, _)| *n)
                .collect();
            write!(f, "{} ", names.join(","))?;
        }
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{} {}", hm(self.start), hm(self.end), self.zone_name)
    }
}

/// Whether any of `windows` is open at `at`; `None` when none is configured.
pub fn open(windows: &[Window], at: Timestamp) -> Option<bool> {
    (!windows.is_empty()).then(|| windows.iter().any(|w| w.contains(at)))
}

/// The next instant any of `windows` opens (`at` itself while one is open).
pub fn next_open(windows: &[Window], at: Timestamp) -> Option<Timestamp> {
    windows.iter().map(|w| w.next_open(at)).min()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn w(s: &str) -> Window {
        s.parse().unwrap()
    }

    // 2026-12-02 is a Wednesday.
    #[test]
    fn a_daily_window_is_open_from_its_start_to_before_its_end() {
        let win = w("02:00-05:00");
        assert!(!win.contains(at("2026-12-02T01:59:59Z")));
        assert!(win.contains(at("2026-12-02T02:00:00Z")));
        assert!(win.contains(at("2026-12-02T04:59:59Z")));
        assert!(!win.contains(at("2026-12-02T05:00:00Z")));
    }

    #[test]
    fn days_limit_the_window() {
        let win = w("sat,sun 02:00-05:00");
        assert!(!win.contains(at("2026-12-02T03:00:00Z")));
        assert!(win.contains(at("2026-12-05T03:00:00Z")));
        assert!(win.contains(at("2026-12-06T03:00:00Z")));
        let weekdays = w("mon-fri 02:00-05:00");
        assert!(weekdays.contains(at("2026-12-02T03:00:00Z")));
        assert!(!weekdays.contains(at("2026-12-05T03:00:00Z")));
    }

    #[test]
    fn a_day_range_wraps_past_sunday() {
        let win = w("fri-mon 02:00-03:00");
        for (day, open) in [
            (4, true),
            (5, true),
            (6, true),
            (7, true),
            (8, false),
            (2, false),
        ] {
            let t = at(&format!("2026-12-{day:02}T02:30:00Z"));
            assert_eq!(win.contains(t), open, "day {day}");
        }
    }

    #[test]
    fn a_window_past_midnight_belongs_to_its_first_day() {
        // Saturday 22:00 to Sunday 06:00, and Sunday 22:00 to Monday 06:00.
        let win = w("sat,sun 22:00-06:00");
        assert!(
            !win.contains(at("2026-12-05T05:00:00Z")),
            "Sat morning: Friday's window"
        );
        assert!(win.contains(at("2026-12-05T23:00:00Z")));
        assert!(win.contains(at("2026-12-06T05:59:00Z")));
        assert!(
            win.contains(at("2026-12-07T01:00:00Z")),
            "Mon morning: Sunday's window"
        );
        assert!(!win.contains(at("2026-12-07T06:00:00Z")));
        assert!(!win.contains(at("2026-12-07T23:00:00Z")));
    }

    #[test]
    fn the_zone_moves_the_window() {
        let win = w("02:00-05:00 +02:00");
        assert!(win.contains(at("2026-12-02T00:30:00Z")));
        assert!(!win.contains(at("2026-12-02T03:30:00Z")));
        let west = w("02:00-05:00 -05:30");
        assert!(west.contains(at("2026-12-02T08:00:00Z")));
    }

    #[test]
    fn named_zones_come_from_the_system_database_when_it_has_them() {
        match "02:00-05:00 Europe/Berlin".parse::<Window>() {
            // Winter: UTC+1.
            Ok(win) => assert!(win.contains(at("2026-12-02T01:30:00Z"))),
            Err(e) => assert!(e.to_string().contains("tzdata"), "{e}"),
        }
    }

    #[test]
    fn all_day_is_written_to_24_00() {
        let win = w("sun 00:00-24:00");
        assert!(win.contains(at("2026-12-06T00:00:00Z")));
        assert!(win.contains(at("2026-12-06T23:59:59Z")));
        assert!(!win.contains(at("2026-12-07T00:00:00Z")));
    }

    #[test]
    fn next_open_finds_the_next_allowed_start() {
        let win = w("sat 02:00-05:00");
        assert_eq!(
            win.next_open(at("2026-12-02T10:00:00Z")),
            at("2026-12-05T02:00:00Z")
        );
        // Open now: now.
        assert_eq!(
            win.next_open(at("2026-12-05T03:00:00Z")),
            at("2026-12-05T03:00:00Z")
        );
        // Just closed: a week later.
        assert_eq!(
            win.next_open(at("2026-12-05T05:00:00Z")),
            at("2026-12-12T02:00:00Z")
        );
        assert_eq!(
            win.wait(at("2026-12-05T01:00:00Z")),
            SignedDuration::from_hours(1)
        );
    }

    #[test]
    fn several_windows_open_when_any_is() {
        let windows = [w("sat 02:00-05:00"), w("wed 10:00-11:00")];
        assert_eq!(open(&windows, at("2026-12-02T10:30:00Z")), Some(true));
        assert_eq!(open(&windows, at("2026-12-02T12:00:00Z")), Some(false));
        assert_eq!(open(&[], at("2026-12-02T12:00:00Z")), None);
        assert_eq!(
            next_open(&windows, at("2026-12-02T12:00:00Z")),
            Some(at("2026-12-05T02:00:00Z"))
        );
    }

    #[test]
    fn it_prints_as_written() {
        assert_eq!(
            w("Mon-Fri 2:00-5:00").to_string(),
            "mon,tue,wed,thu,fri 02:00-05:00 UTC"
        );
        assert_eq!(w("22:00-06:00 +02:00").to_string(), "22:00-06:00 +02:00");
        assert_eq!(w("saturday 01:00-02:00").to_string(), "sat 01:00-02:00 UTC");
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        for (input, problem) in [
            ("", "no time range"),
            ("mon-fri", "no time range"),
            ("02:00", "not a time range"),
            ("25:00-26:00", "not a time of day"),
            ("02:60-03:00", "not a time of day"),
            ("02:00-02:00", "is empty"),
            ("24:00-02:00", "cannot start at 24:00"),
            ("funday 02:00-03:00", "is not a day"),
            ("mo 02:00-03:00", "is not a day"),
            ("02:00-03:00 Mars/Olympus", "time zone"),
            ("02:00-03:00 +25:00", "UTC offset"),
            ("02:00-03:00 UTC extra", "unexpected"),
        ] {
            let e = input.parse::<Window>().unwrap_err().to_string();
            assert!(e.contains(problem), "{input:?}: {e}");
            assert!(e.contains("HH:MM-HH:MM"), "{e}");
        }
    }
}
