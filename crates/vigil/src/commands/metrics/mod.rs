//! `vigil metrics parse <FILE|URL>`: parse an exposition as vigil's scraper does and print every
//! sample as a JSON line, with a summary, every malformed line and promtool-style lints on
//! stderr.
//!
//! Exit status: 0 when every line parsed, 1 when some lines were malformed (the good samples
//! are still printed), 2 when the input could not be read.

mod lint;

use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::ValueEnum;
use vigil_connectors::scrape::{ScrapeTarget, fetch};
use vigil_connectors::secret::SecretSource;
use vigil_core::exposition::{self, Exposition, Format, ParsedSample};

/// The format to parse with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// The Prometheus text format 0.0.4.
    Text,
    /// OpenMetrics 1.0 text.
    Openmetrics,
}

/// Where the exposition comes from and how to read it.
#[derive(Debug, Clone)]
pub struct ParseArgs {
    /// A file, `-` for standard input, or an `http(s)://` URL.
    pub input: String,
    /// Force a format instead of detecting it.
    pub format: Option<FormatArg>,
    /// A bearer token for a URL, from an environment variable.
    pub bearer_token_env: Option<String>,
    /// A bearer token for a URL, from a file.
    pub bearer_token_file: Option<PathBuf>,
    /// Seconds before fetching a URL is abandoned.
    pub timeout_secs: u64,
}

/// Exit status when the input could not be read.
const UNREADABLE: u8 = 2;

/// Runs the command.
pub async fn run(args: &ParseArgs) -> ExitCode {
    let (bytes, content_type) = match read_input(args).await {
        Ok(read) => read,
        Err(message) => {
            eprintln!("error: cannot read `{}`: {message}", args.input);
            return ExitCode::from(UNREADABLE);
        }
    };
    let decoded = exposition::decode(&bytes);
    let (format, how) = choose_format(args.format, content_type.as_deref(), &decoded.text);
    let parsed = decoded.parse(format);
    let mut stdout = std::io::stdout().lock();
    for sample in &parsed.samples {
        // A closed pipe (`| head`) ends the listing quietly.
        if writeln!(stdout, "{}", sample_json(sample)).is_err() {
            break;
        }
    }
    drop(stdout);
    eprint!("{}", summary(&args.input, &parsed, how));
    if parsed.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn read_input(args: &ParseArgs) -> Result<(Vec<u8>, Option<String>), String> {
    let input = args.input.as_str();
    if input.starts_with("http://") || input.starts_with("https://") {
        let bearer = match (&args.bearer_token_env, &args.bearer_token_file) {
            (Some(name), _) => Some(
                SecretSource::Env(name.clone())
                    .resolve()
                    .map_err(|error| error.to_string())?,
            ),
            (None, Some(path)) => Some(
                SecretSource::File(path.clone())
                    .resolve()
                    .map_err(|error| error.to_string())?,
            ),
            (None, None) => None,
        };
        let timeout = Duration::from_secs(args.timeout_secs.max(1));
        let client = vigil_connectors::http::client(timeout).map_err(|error| error.to_string())?;
        let target = ScrapeTarget {
            name: "vigil metrics parse".to_owned(),
            url: input.to_owned(),
            timeout,
            bearer,
            max_body_bytes: 256 * 1024 * 1024,
        };
        let body = fetch(&client, &target)
            .await
            .map_err(|error| format!("{error:#}"))?;
        return Ok((body.body, body.content_type));
    }
    let bytes = if input == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|error| error.to_string())?;
        bytes
    } else {
        std::fs::read(input).map_err(|error| error.to_string())?
    };
    Ok((bytes, None))
}

/// The format to use and why: forced, said by the Content-Type, or detected from `# EOF`.
fn choose_format(
    forced: Option<FormatArg>,
    content_type: Option<&str>,
    text: &str,
) -> (Format, &'static str) {
    match forced {
        Some(FormatArg::Text) => return (Format::Text, "forced with --format"),
        Some(FormatArg::Openmetrics) => return (Format::OpenMetrics, "forced with --format"),
        None => {}
    }
    let (format, reason) = exposition::choose_format(content_type, text);
    (format, reason.describe(format))
}

/// `{"name", "labels", "value", "timestamp_ms", "type"}` (+ `"exemplar"` when there is one).
fn sample_json(sample: &ParsedSample<'_>) -> String {
    let labels: serde_json::Map<String, serde_json::Value> = sample
        .labels
        .iter()
        .map(|(name, value)| {
            (
                name.to_string(),
                serde_json::Value::String(value.to_string()),
            )
        })
        .collect();
    let mut out = String::new();
    let _ = write!(
        out,
        "{{\"name\":{},\"labels\":{},\"value\":{},\"timestamp_ms\":{},\"type\":\"{}\"",
        serde_json::Value::String(sample.name.to_string()),
        serde_json::Value::Object(labels),
        value_json(sample.value),
        sample
            .timestamp_ms
            .map_or_else(|| "null".to_owned(), |ms| ms.to_string()),
        sample.metric_type.as_str(),
    );
    if let Some(exemplar) = &sample.exemplar {
        let labels: serde_json::Map<String, serde_json::Value> = exemplar
            .labels
            .iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    serde_json::Value::String(value.to_string()),
                )
            })
            .collect();
        let _ = write!(
            out,
            ",\"exemplar\":{{\"labels\":{},\"value\":{},\"timestamp_ms\":{}}}",
            serde_json::Value::Object(labels),
            value_json(exemplar.value),
            exemplar
                .timestamp_ms
                .map_or_else(|| "null".to_owned(), |ms| ms.to_string()),
        );
    }
    out.push('}');
    out
}

/// A number, or `"NaN"`, `"+Inf"`, `"-Inf"`.
fn value_json(value: f64) -> String {
    if value.is_nan() {
        "\"NaN\"".to_owned()
    } else if value == f64::INFINITY {
        "\"+Inf\"".to_owned()
    } else if value == f64::NEG_INFINITY {
        "\"-Inf\"".to_owned()
    } else {
        serde_json::Value::from(value).to_string()
    }
}

fn summary(input: &str, parsed: &Exposition<'_>, how: &str) -> String {
    let mut out = String::new();
    let format = match parsed.format {
        Format::Text => "text 0.0.4",
        Format::OpenMetrics => "OpenMetrics 1.0",
    };
    let _ = writeln!(out, "{input}: format {format} ({how})");
    let _ = writeln!(
        out,
        "{} families, {} samples, {} malformed lines",
        parsed.families.len(),
        parsed.samples.len(),
        parsed.errors.len()
    );
    for error in &parsed.errors {
        let _ = writeln!(out, "  line {}: {}", error.line, error.reason);
    }
    let lints = lint::lint(parsed);
    if !lints.is_empty() {
        let _ = writeln!(
            out,
            "{} lint warnings (they do not change the exit status):",
            lints.len()
        );
        for warning in &lints {
            let _ = writeln!(out, "  {warning}");
        }
    }
    out
}

#[cfg(test)]
mod tests;
