//! Durations as people write them on the command line: `90s`, `30m`, `2h`, `7d`.

use std::time::Duration;

/// Parses `90s`, `30m`, `2h` or `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{text}` needs a unit: s, m, h or d (for example 2h)"
            ));
        }
    };
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a whole number followed by s, m, h or d"))?;
    if number == 0 {
        return Err("must be longer than zero".to_owned());
    }
    Ok(Duration::from_secs(number.saturating_mul(factor)))
}
