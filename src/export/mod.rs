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

mod text;

use crate::inspect::{self, ObjectReport, Positions, Reading, State};
use crate::object::Kind;
use crate::Segment;
use std::collections::HashMap;
use std::io;
use std::sync::Arc;

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

/// One sample: the labels `segment` (an index into `Metrics::segments`), `object` and, for
/// pipes, `direction`.
struct Sample {
    segment: usize,
    object: Option<Arc<str>>,
    direction: Option<&'static str>,
    value: Value,
}

/// A family's help text: fixed, or what it measures of the object that named it.
enum Help {
    Fixed(&'static str),
    Object {
        what: &'static str,
        kind: Kind,
        object: Arc<str>,
    },
}

struct Family {
    name: Arc<str>,
    ty: Type,
    help: Help,
    samples: Vec<Sample>,
}

/// The metrics of several segments, grouped into families, ready to be written.
///
/// ```
/// use shmkit::export::{Format, Metrics};
/// use shmkit::Segment;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (a, b) = (Segment::anonymous(1 << 16)?, Segment::anonymous(1 << 16)?);
/// a.counter("hits")?.add(1);
/// b.counter("hits")?.add(2);
/// let mut m = Metrics::new();
/// m.add_segment("a", &a)?;
/// m.add_segment("b", &b)?;
/// let mut out = Vec::new();
/// m.write(Format::Prometheus, &mut out)?;
/// let text = String::from_utf8(out)?;
/// assert!(text.contains("shmkit_hits_total{segment=\"a\",object=\"hits\"} 1\n"));
/// assert!(text.contains("shmkit_hits_total{segment=\"b\",object=\"hits\"} 2\n"));
/// assert_eq!(text.matches("# TYPE shmkit_hits_total counter").count(), 1);
/// # Ok(()) }
/// ```
#[derive(Default)]
pub struct Metrics {
    families: Vec<Family>,
    /// Family name → index in `families`.
    by_name: HashMap<Arc<str>, usize>,
    /// The segment labels, in the order added.
    segments: Vec<String>,
    /// Reused buffers for candidate names.
    scratch: [String; 2],
}

/// A metric of an object, before it has its family.
struct Metric {
    suffix: &'static str,
    ty: Type,
    what: &'static str,
    direction: Option<&'static str>,
    value: Value,
}

impl Metrics {
    /// No metrics yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds every object of `seg`, labelled `segment=label`, and `shmkit_segment_up` 1.
    ///
    /// # Errors
    /// The directory could not be read; objects that cannot be read are left out.
    pub fn add_segment(&mut self, label: &str, seg: &Segment) -> crate::Result<()> {
        let reports = inspect::report(seg)?;
        self.add_reports(label, &reports);
        Ok(())
    }

    /// Records that the segment `label` could not be opened or read: `shmkit_segment_up` 0.
    pub fn add_unavailable(&mut self, label: &str) {
        let segment = self.segment(label);
        self.up(segment, false);
    }

    fn segment(&mut self, label: &str) -> usize {
        self.segments.push(label.to_string());
        self.segments.len() - 1
    }

    fn up(&mut self, segment: usize, up: bool) {
        let help = Help::Fixed("Whether shmkit could open and read the segment (1) or not (0).");
        let sample = Sample {
            segment,
            object: None,
            direction: None,
            value: Value::Int(u64::from(up)),
        };
        // A fixed name: if an object's family took it with another type, the sample is left out.
        if let Some(i) = self.family("shmkit_segment_up", Type::Gauge, || help) {
            self.families[i].samples.push(sample);
        }
    }

    /// Adds objects already read with [`inspect::report`] (objects in error are left out), and
    /// `shmkit_segment_up` 1 for the segment `label`.
    pub fn add_reports(&mut self, label: &str, reports: &[ObjectReport]) {
        let segment = self.segment(label);
        self.up(segment, true);
        let mut base = String::new();
        let mut metrics = Vec::new();
        for r in reports {
            if let Ok(state) = &r.state {
                base.clear();
                base.push_str("shmkit_");
                sanitize_into(&r.name, &mut base);
                metrics.clear();
                metrics_of(state, &mut metrics);
                let object: Arc<str> = Arc::from(r.name.as_str());
                for m in &metrics {
                    self.add_metric(segment, r.kind, &object, &base, m);
                }
            }
        }
    }

    fn add_metric(
        &mut self,
        segment: usize,
        kind: Kind,
        object: &Arc<str>,
        base: &str,
        m: &Metric,
    ) {
        // A counter's samples end in `_total` already: `requests_total` stays `requests_total`.
        let base = match (m.ty, m.suffix) {
            (Type::Counter, "") => base.strip_suffix("_total").unwrap_or(base),
            _ => base,
        };
        let mut name = std::mem::take(&mut self.scratch[0]);
        name.clear();
        name.push_str(base);
        name.push_str(m.suffix);
        let help = || Help::Object {
            what: m.what,
            kind,
            object: object.clone(),
        };
        let mut i = self.family(&name, m.ty, help);
        if i.is_none() {
            // A clash with a family of another type: the kind is appended (then a number).
            name.push('_');
            sanitize_into(&kind.to_string(), &mut name);
            let stem = name.len();
            let mut n = 2;
            loop {
                i = self.family(&name, m.ty, help);
                if i.is_some() {
                    break;
                }
                name.truncate(stem);
                name.push_str(&format!("_{n}"));
                n += 1;
            }
        }
        self.scratch[0] = name;
        if let Some(i) = i {
            self.families[i].samples.push(Sample {
                segment,
                object: Some(object.clone()),
                direction: m.direction,
                value: m.value,
            });
        }
    }

    /// Whether a family `name` of type `ty` can be neither joined nor added: a family of that
    /// name has another type, or its sample names meet another family's names.
    fn clashes(&mut self, name: &str, ty: Type) -> bool {
        if let Some(&i) = self.by_name.get(name) {
            return self.families[i].ty != ty;
        }
        let mut derived = std::mem::take(&mut self.scratch[1]);
        let clash = ["_total", "_created"].iter().any(|suffix| {
            // A counter `x` writes `x_total` and `x_created`: they must not be families, and a
            // new `x_total` must not be a sample name of a counter `x`.
            derived.clear();
            derived.push_str(name);
            derived.push_str(suffix);
            (ty == Type::Counter && self.by_name.contains_key(derived.as_str()))
                || name.strip_suffix(suffix).is_some_and(|stem| {
                    self.by_name
                        .get(stem)
                        .is_some_and(|&i| self.families[i].ty == Type::Counter)
                })
        });
        self.scratch[1] = derived;
        clash
    }

    /// The family `name` of type `ty`, added if new; `None` if the name clashes.
    fn family(&mut self, name: &str, ty: Type, help: impl FnOnce() -> Help) -> Option<usize> {
        if let Some(&i) = self.by_name.get(name) {
            return (self.families[i].ty == ty).then_some(i);
        }
        if self.clashes(name, ty) {
            return None;
        }
        let i = self.families.len();
        let name: Arc<str> = Arc::from(name);
        self.by_name.insert(name.clone(), i);
        self.families.push(Family {
            name,
            ty,
            help: help(),
            samples: Vec::new(),
        });
        Some(i)
    }

    /// Writes every family in `format` (OpenMetrics ends with `# EOF`).
    ///
    /// # Errors
    /// Writing to `w` failed.
    pub fn write(&self, format: Format, w: &mut impl io::Write) -> io::Result<()> {
        text::write(self, format, w)
    }
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
    let mut s = String::with_capacity(name.len());
    sanitize_into(name, &mut s);
    s
}

fn sanitize_into(name: &str, out: &mut String) {
    out.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
}
