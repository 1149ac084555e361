//! Durations as people type them in flags and in the spec: `90`, `90s`, `5m`, `1h`.

use std::time::Duration;

/// The longest duration taken: a year. Anything longer is a typo, and would overflow the
/// deadlines computed from it.
pub const MAX: Duration = Duration::from_secs(8760 * 3600);

/// Parses `90`, `90s`, `5m` or `1h`; the error says what was wrong.
pub fn parse(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as `90s` or `10m`"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("`{text}` is not a duration such as `90s` or `10m`")),
    };
    n.checked_mul(scale)
        .map(Duration::from_secs)
        .filter(|d| *d <= MAX)
        .ok_or_else(|| format!("`{text}` is longer than a year: a duration is at most `8760h`"))
}
