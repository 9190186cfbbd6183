//! `shmkit export NAME… [--all] --format openmetrics|prometheus|json`: the metrics of segments,
//! once, on stdout (`serve.rs` serves the same over HTTP).

use crate::fmt::CmdResult;
use shmkit::export::{Format, Metrics};
use shmkit::SHM_DIR;
use shmkit::{Segment, SegmentOptions};
use std::io::Write;
use std::time::Duration;

/// The output formats of `export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// OpenMetrics 1.0 text (ends with `# EOF`).
    Openmetrics,
    /// The Prometheus text format 0.0.4.
    Prometheus,
    /// One JSON document: every segment with its objects (as `stat --json`).
    Json,
}

/// Which segments: the names given, or every shmkit segment in /dev/shm.
pub struct Segments {
    /// Names in /dev/shm.
    pub names: Vec<String>,
    /// Every shmkit segment in /dev/shm (read again at each call of [`Segments::open`]).
    pub all: bool,
}

impl Segments {
    /// Opens the segments now: `(name, segment or why not)`, in name order for `--all`.
    pub fn open(&self) -> Vec<(String, shmkit::Result<Segment>)> {
        // Do not wait for a creator: a scrape shows what is there now. A scrape only looks: it
        // is not a user of the segment (it must not keep a stale segment from `gc`).
        let opts = SegmentOptions::new()
            .wait_timeout(Duration::from_millis(100))
            .register(false);
        let mut out: Vec<(String, shmkit::Result<Segment>)> = self
            .names
            .iter()
            .map(|n| (n.clone(), opts.open(n)))
            .collect();
        if self.all {
            let mut found: Vec<String> = std::fs::read_dir(SHM_DIR)
                .map(|d| {
                    d.filter_map(|e| e.ok())
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| !n.starts_with('.') && !self.names.contains(n))
                        .collect()
                })
                .unwrap_or_default();
            found.sort();
            // Files that are not shmkit segments (or not readable by this user) are not shown.
            let zero = SegmentOptions::new()
                .wait_timeout(Duration::ZERO)
                .register(false);
            for n in found {
                if let Ok(seg) = zero.open(&n) {
                    out.push((n, Ok(seg)));
                }
            }
        }
        out
    }
}

/// Renders `segments` in `format` into `w`; a segment that cannot be opened or read gets
/// `shmkit_segment_up 0` (text formats) or an `error` (JSON). Returns how many failed.
pub fn render(
    segments: &Segments,
    format: ExportFormat,
    w: &mut impl Write,
) -> std::io::Result<usize> {
    render_with(&mut Metrics::new(), segments, format, w)
}

/// [`render`] reusing `m`'s memory (cleared first): `serve` keeps one across scrapes.
pub fn render_with(
    m: &mut Metrics,
    segments: &Segments,
    format: ExportFormat,
    w: &mut impl Write,
) -> std::io::Result<usize> {
    let opened = segments.open();
    let mut failed = 0;
    if format == ExportFormat::Json {
        let docs: Vec<serde_json::Value> = opened
            .iter()
            .map(|(name, seg)| {
                let read = seg.as_ref().map_err(|e| e.to_string()).and_then(|s| {
                    let objects = shmkit::inspect::report(s).map_err(|e| e.to_string())?;
                    Ok(crate::json::segment(name, s, &objects))
                });
                read.unwrap_or_else(|e| {
                    failed += 1;
                    serde_json::json!({ "segment": name, "error": e })
                })
            })
            .collect();
        writeln!(w, "{}", serde_json::json!({ "segments": docs }))?;
        return Ok(failed);
    }
    m.clear();
    for (name, seg) in &opened {
        let added = match seg {
            Ok(s) => m.add_segment(name, s).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = added {
            eprintln!("shmkit: segment {name}: {e}");
            m.add_unavailable(name);
            failed += 1;
        }
    }
    let f = match format {
        ExportFormat::Openmetrics => Format::OpenMetrics,
        _ => Format::Prometheus,
    };
    m.write(f, w)?;
    Ok(failed)
}

/// `shmkit export`.
pub fn export(segments: &Segments, format: ExportFormat) -> CmdResult {
    let mut out = std::io::stdout().lock();
    let failed = render(segments, format, &mut out)?;
    out.flush()?;
    Ok(i32::from(failed > 0))
}
