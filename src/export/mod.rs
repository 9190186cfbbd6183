//! Metrics exposition: every counter, value, ring, lock, map and list of one or more segments in
//! the Prometheus text format or OpenMetrics, written into any [`io::Write`], so that a service
//! can serve its shared counters from its own `/metrics` endpoint (`shmkit serve` and
//! `shmkit export` use the same code).
//!
//! | object | metrics (`NAME` is `shmkit_` and the object's name, sanitized) |
//! | --- | --- |
//! | counter, sharded counter | `NAME_total` (counter; a sharded counter's sum) |
//! | value, seqlock of a primitive number | `NAME` (gauge) |
//! | SPSC/MPMC ring, byte ring, MPMC byte queue, pipe | `NAME_length`, `NAME_capacity` (gauges: items, or bytes for byte rings and pipes, per `direction`), `NAME_lost_total` (MPMC kinds) |
//! | mutex, reentrant mutex | `NAME_locked`, `NAME_waiters`, `NAME_owner_died` (gauges, 0 or 1) |
//! | semaphore | `NAME_available` (gauge) |
//! | condvar, event | `NAME_waiters` (gauge) |
//! | barrier | `NAME_arrived` (gauge) |
//! | map, list | `NAME_length`, `NAME_capacity` (gauges) |
//!
//! Every sample carries the labels `segment` and `object` (the names as they are, escaped), so
//! two objects whose names sanitize alike stay apart. A name that would still clash with a metric
//! of another type gets the kind appended (`shmkit_x_gauge`). Rendering only reads shared memory
//! ([`crate::inspect`]): a scrape never takes a lock a writer takes nor makes a writer wait.
//!
//! ```
//! use shmkit::Segment;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let seg = Segment::anonymous(1 << 16)?;
//! seg.counter("requests")?.add(41);
//! seg.value::<f64>("temperature", 21.5)?;
//!
//! let mut body = Vec::new();
//! shmkit::export::write_openmetrics(&seg, &mut body)?;
//! let text = String::from_utf8(body)?;
//! assert!(text.contains("# TYPE shmkit_requests counter\n"));
//! assert!(text.contains("shmkit_requests_total{segment=\"anonymous\",object=\"requests\"} 41\n"));
//! assert!(text.contains("shmkit_temperature{segment=\"anonymous\",object=\"temperature\"} 21.5\n"));
//! assert!(text.ends_with("# EOF\n"));
//! # Ok(()) }
//! ```

mod metrics;
mod names;
mod text;

pub use metrics::Metrics;

use crate::inspect::{self, Positions, Reading, State};
use crate::Segment;
use std::io;

/// The text formats of the exposition.
///
/// ```
/// use shmkit::export::{Format, Metrics};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let seg = shmkit::Segment::anonymous(1 << 16)?;
/// let mut m = Metrics::new();
/// m.add_segment("app", &seg)?;
/// let mut body = Vec::new();
/// m.write(Format::Prometheus, &mut body)?;
/// // What an HTTP handler sends with the body:
/// assert_eq!(Format::Prometheus.content_type(), "text/plain; version=0.0.4; charset=utf-8");
/// assert!(String::from_utf8(body)?.contains("shmkit_segment_up{segment=\"app\"} 1\n"));
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// OpenMetrics 1.0 (`# EOF` at the end, counters named without `_total` in `# TYPE`).
    OpenMetrics,
    /// The Prometheus text format 0.0.4.
    Prometheus,
}

impl Format {
    /// The HTTP `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
        }
    }
}

/// Renders every object of `seg` in OpenMetrics into `w`, labelled with the segment's name
/// (`anonymous` for an anonymous segment).
///
/// # Errors
/// Writing to `w` failed, or the segment's directory could not be read (`InvalidData`).
pub fn write_openmetrics(seg: &Segment, w: &mut impl io::Write) -> io::Result<()> {
    write_one(seg, Format::OpenMetrics, w)
}

/// Renders every object of `seg` in the Prometheus text format into `w` (as
/// [`write_openmetrics`]).
///
/// # Errors
/// As [`write_openmetrics`].
pub fn write_prometheus(seg: &Segment, w: &mut impl io::Write) -> io::Result<()> {
    write_one(seg, Format::Prometheus, w)
}

fn write_one(seg: &Segment, format: Format, w: &mut impl io::Write) -> io::Result<()> {
    let mut m = Metrics::new();
    m.add_segment(&segment_label(seg), seg)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    m.write(format, w)
}

/// The name a segment is labelled with: its file name, or `anonymous`.
pub fn segment_label(seg: &Segment) -> String {
    seg.path()
        .and_then(|p| p.file_name())
        .map_or("anonymous".to_string(), |n| {
            n.to_string_lossy().into_owned()
        })
}

/// Whether a family counts (`counter`) or measures (`gauge`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Counter,
    Gauge,
}

/// A sample's value: integers stay exact.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Value {
    Int(u64),
    Float(f64),
}

/// A metric of an object, before it has its family.
struct Metric {
    suffix: &'static str,
    ty: Type,
    what: &'static str,
    direction: Option<&'static str>,
    value: Value,
}

/// The metrics of one object's state.
fn metrics_of(state: &State, out: &mut Vec<Metric>) {
    let metric = |suffix, ty, what, value| Metric {
        suffix,
        ty,
        what,
        direction: None,
        value,
    };
    let flag = |b: bool| Value::Int(u64::from(b));
    let int = Value::Int;
    let gauge = Type::Gauge;
    match state {
        State::Counter { value } => out.push(metric("", Type::Counter, "Value", int(*value))),
        State::ShardedCounter { sum, .. } => {
            out.push(metric("", Type::Counter, "Sum of the stripes", int(*sum)))
        }
        State::Value(Reading::Number(n))
        | State::SeqLock {
            value: Reading::Number(n),
            ..
        } => out.push(metric("", gauge, "Value", number(*n))),
        State::Lock { state: s, .. } => out.extend([
            metric(
                "_locked",
                gauge,
                "Whether a thread holds the lock",
                flag(s.owner_tid.is_some()),
            ),
            metric(
                "_waiters",
                gauge,
                "Whether a waiter may be sleeping",
                flag(s.waiters),
            ),
            metric(
                "_owner_died",
                gauge,
                "Whether an owner died holding the lock and the data was not marked consistent",
                flag(s.owner_died || s.not_recoverable),
            ),
        ]),
        State::Semaphore { available, .. } => out.push(metric(
            "_available",
            gauge,
            "Free permits",
            int(u64::from(*available)),
        )),
        State::Condvar { waiters, .. } | State::Event { waiters, .. } => out.push(metric(
            "_waiters",
            gauge,
            "Threads waiting",
            int(u64::from(*waiters)),
        )),
        State::Barrier { arrived, .. } => out.push(metric(
            "_arrived",
            gauge,
            "Parties arrived in this round",
            int(u64::from(*arrived)),
        )),
        State::Spsc { positions: p, .. } => {
            ring(out, &metric, p, ["Queued items", "Capacity in items"], None)
        }
        State::Mpmc {
            positions: p, lost, ..
        } => ring(
            out,
            &metric,
            p,
            ["Queued items (approximate)", "Capacity in items"],
            Some(*lost),
        ),
        State::ByteRing { positions: p, .. } => {
            ring(out, &metric, p, ["Queued bytes", "Capacity in bytes"], None)
        }
        State::MpmcBytes {
            positions: p, lost, ..
        } => ring(
            out,
            &metric,
            p,
            ["Queued messages (approximate)", "Capacity in messages"],
            Some(*lost),
        ),
        State::Pipe { a_to_b, b_to_a, .. } => {
            for (dir, p) in [("a_to_b", a_to_b), ("b_to_a", b_to_a)] {
                let with_dir = |m: Metric| Metric {
                    direction: Some(dir),
                    ..m
                };
                if let Some(len) = p.len() {
                    out.push(with_dir(metric(
                        "_length",
                        gauge,
                        "Queued bytes per direction",
                        int(len),
                    )));
                }
                out.push(with_dir(metric(
                    "_capacity",
                    gauge,
                    "Capacity in bytes per direction",
                    int(p.capacity),
                )));
            }
        }
        State::Map(m) => out.extend([
            metric("_length", gauge, "Entries", int(m.len as u64)),
            metric(
                "_capacity",
                gauge,
                "Entries at most",
                int(m.capacity as u64),
            ),
        ]),
        State::List(l) => out.extend([
            metric("_length", gauge, "Elements", int(l.len as u64)),
            metric(
                "_capacity",
                gauge,
                "Elements at most",
                int(l.capacity as u64),
            ),
        ]),
        _ => {}
    }

    fn ring(
        out: &mut Vec<Metric>,
        metric: &impl Fn(&'static str, Type, &'static str, Value) -> Metric,
        p: &Positions,
        [len, cap]: [&'static str; 2],
        lost: Option<u64>,
    ) {
        // Positions read while they race (or scribbled over) give no length, not a wrong one.
        if let Some(n) = p.len() {
            out.push(metric("_length", Type::Gauge, len, Value::Int(n)));
        }
        out.push(metric(
            "_capacity",
            Type::Gauge,
            cap,
            Value::Int(p.capacity),
        ));
        if let Some(n) = lost {
            out.push(metric(
                "_lost",
                Type::Counter,
                "Items lost with processes that died holding them",
                Value::Int(n),
            ));
        }
    }
}

fn number(n: inspect::Number) -> Value {
    match n {
        inspect::Number::Unsigned(v) => Value::Int(v),
        other => Value::Float(other.as_f64()),
    }
}

/// A metric name part from an object name: ASCII letters, digits and `_` stay, anything else
/// (including `:`, reserved for recording rules) becomes `_`.
pub fn sanitize(name: &str) -> String {
    let mut s = Vec::with_capacity(name.len());
    sanitize_into(name, &mut s);
    s.into_iter().map(char::from).collect()
}

/// [`sanitize`] onto the end of `out` (ASCII only).
fn sanitize_into(name: &str, out: &mut Vec<u8>) {
    /// Each ASCII byte as it stays in a metric name; 0 for the other bytes.
    const MAP: [u8; 256] = {
        let mut map = [0u8; 256];
        let mut b = 0;
        while b < 128 {
            let c = b as u8;
            map[b] = if c.is_ascii_alphanumeric() || c == b'_' {
                c
            } else {
                b'_'
            };
            b += 1;
        }
        map
    };
    // ASCII (the common case): one byte per character, copied, then mapped in place.
    let start = out.len();
    out.extend_from_slice(name.as_bytes());
    let mut other = 0;
    for b in &mut out[start..] {
        other |= *b & 0x80;
        *b = MAP[*b as usize];
    }
    if other != 0 {
        // Any character but an ASCII letter, digit or `_` becomes one `_`: the first byte of a
        // multi-byte character does, its continuation bytes are skipped.
        out.truncate(start);
        out.extend(name.bytes().filter_map(|b| match b {
            0x80..=0xbf => None,
            0xc0.. => Some(b'_'),
            b => Some(MAP[b as usize]),
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn sanitizing() {
        assert_eq!(sanitize("requests_0"), "requests_0");
        assert_eq!(sanitize("a.b-c:d e"), "a_b_c_d_e");
        assert_eq!(sanitize("ünï€😀x"), "_n___x");
        // As the rule says it, character by character.
        let rule = |s: &str| -> String {
            s.chars()
                .map(|c| match c {
                    'a'..='z' | 'A'..='Z' | '0'..='9' | '_' => c,
                    _ => '_',
                })
                .collect()
        };
        let ascii: String = (1u8..128).map(char::from).collect();
        for s in [
            ascii.as_str(),
            "a\u{7f}ÿ\u{80}z",
            "ü",
            &format!("{ascii}€{ascii}"),
        ] {
            assert_eq!(sanitize(s), rule(s), "{s:?}");
        }
    }
}
