//! [`Metrics`]: the families of one or more segments, gathered in flat arrays (names and object
//! names in two strings, samples chained per family), so that a segment of 10,000 counters costs
//! no allocation per object, then written in family order by `text.rs`.

use super::names::Names;
use super::{metrics_of, sanitize_into, Format, Metric, Type, Value};
use crate::inspect::{self, ObjectReport, State, Visit};
use crate::object::Kind;
use crate::segment::directory::EntryInfo;
use crate::Segment;
use std::io;
use std::ops::Range;

/// The end of a family's chain of samples.
pub(super) const END: usize = usize::MAX;

/// A family's help text: fixed, or what it measures of the object that named it.
pub(super) enum Help {
    Fixed(&'static str),
    Object {
        what: &'static str,
        kind: Kind,
        /// The object's name, escaped as a label value (`Metrics::objects`).
        object: Range<usize>,
        /// Whether the name holds a `"` (which the Prometheus format leaves as it is in help).
        quote: bool,
    },
}

/// A family: its name is `Metrics::names.get(i)` for the family numbered `i`.
pub(super) struct Family {
    pub(super) ty: Type,
    pub(super) help: Help,
    /// Its first and last samples in `Metrics::samples` (`END`: none).
    pub(super) first: usize,
    last: usize,
}

/// One sample: the labels `segment` (an index into `Metrics::segments`), `object` (a range of
/// `Metrics::objects`, escaped) and, for pipes, `direction`.
pub(super) struct Sample {
    pub(super) segment: usize,
    pub(super) object: Option<Range<usize>>,
    pub(super) direction: Option<&'static str>,
    pub(super) value: Value,
    /// The family's next sample (`END`: none).
    pub(super) next: usize,
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
    /// The families in the order first seen; their names are `names`, numbered alike.
    pub(super) families: Vec<Family>,
    pub(super) names: Names,
    pub(super) samples: Vec<Sample>,
    /// The object names of every sample, one after another, escaped as label values.
    pub(super) objects: Vec<u8>,
    /// The segment labels, in the order added.
    pub(super) segments: Vec<String>,
    /// How many family names end in `_total` and in `_created`.
    suffixed: [usize; 2],
    /// Reused buffers: a metric name's base, two candidate names, one object's metrics.
    scratch: (Vec<u8>, Vec<u8>, Vec<u8>, Vec<Metric>),
}

impl Metrics {
    /// No metrics yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Forgets every metric added and keeps the memory, for the next render: a service that
    /// renders on every scrape reuses one `Metrics` and so allocates nothing (and touches no
    /// fresh pages) once the first scrape has sized it.
    ///
    /// ```
    /// use shmkit::export::{Format, Metrics};
    /// use shmkit::Segment;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let seg = Segment::anonymous(1 << 16)?;
    /// let hits = seg.counter("hits")?;
    /// let (mut m, mut out) = (Metrics::new(), Vec::new());
    /// for expected in [1, 2] {
    ///     hits.add(1);
    ///     m.clear();
    ///     out.clear();
    ///     m.add_segment("web", &seg)?;
    ///     m.write(Format::Prometheus, &mut out)?;
    ///     let line = format!("shmkit_hits_total{{segment=\"web\",object=\"hits\"}} {expected}\n");
    ///     assert!(String::from_utf8(out.clone())?.contains(&line));
    /// }
    /// # Ok(()) }
    /// ```
    pub fn clear(&mut self) {
        self.truncate((0, 0, 0, 0));
    }

    /// Adds every object of `seg`, labelled `segment=label`, and `shmkit_segment_up` 1.
    ///
    /// The directory is read once and each object's state added as it is read (no lock a
    /// writer takes; see [`crate::inspect`]).
    ///
    /// # Errors
    /// The directory could not be read (then nothing of `seg` is added); objects that cannot be
    /// read are left out.
    pub fn add_segment(&mut self, label: &str, seg: &Segment) -> crate::Result<()> {
        let before = (
            self.families.len(),
            self.samples.len(),
            self.objects.len(),
            self.segments.len(),
        );
        let segment = self.segment(label);
        self.up(segment, true);
        let read = inspect::each(seg, &mut Adding { m: self, segment });
        if read.is_err() {
            self.truncate(before);
        }
        read
    }

    /// Records that the segment `label` could not be opened or read: `shmkit_segment_up` 0.
    pub fn add_unavailable(&mut self, label: &str) {
        let segment = self.segment(label);
        self.up(segment, false);
    }

    /// Adds objects already read with [`inspect::report`] (objects in error are left out), and
    /// `shmkit_segment_up` 1 for the segment `label`.
    pub fn add_reports(&mut self, label: &str, reports: &[ObjectReport]) {
        let segment = self.segment(label);
        self.up(segment, true);
        for r in reports {
            if let Ok(state) = &r.state {
                self.add_object(segment, &r.name, r.kind, state);
            }
        }
    }

    /// Writes every family in `format` (OpenMetrics ends with `# EOF`).
    ///
    /// # Errors
    /// Writing to `w` failed.
    pub fn write(&self, format: Format, w: &mut impl io::Write) -> io::Result<()> {
        super::text::write(self, format, w)
    }

    fn segment(&mut self, label: &str) -> usize {
        self.segments.push(label.to_string());
        self.segments.len() - 1
    }

    fn up(&mut self, segment: usize, up: bool) {
        let help = Help::Fixed("Whether shmkit could open and read the segment (1) or not (0).");
        // A fixed name: if an object's family took it with another type, the sample is left out.
        if let Some(i) = self.family(b"shmkit_segment_up", Type::Gauge, || help) {
            self.push(i, segment, None, None, Value::Int(u64::from(up)));
        }
    }

    /// Undoes everything added since the lengths `(families, samples, objects, segments)`.
    fn truncate(&mut self, (families, samples, objects, segments): (usize, usize, usize, usize)) {
        for i in families..self.families.len() {
            let name = self.names.get(i);
            for (suffix, n) in [&b"_total"[..], b"_created"].iter().zip(&mut self.suffixed) {
                *n -= usize::from(name.ends_with(suffix));
            }
        }
        self.families.truncate(families);
        self.names.truncate(families);
        self.samples.truncate(samples);
        self.objects.truncate(objects);
        self.segments.truncate(segments);
        // The older families' chains may have grown into the removed samples: cut them there.
        let Self {
            families, samples, ..
        } = self;
        let kept = samples.len();
        for f in families.iter_mut().filter(|f| f.last >= kept) {
            f.last = END;
            let mut s = f.first;
            while s < samples.len() {
                f.last = s;
                s = samples[s].next;
            }
            if f.last == END {
                f.first = END;
            } else {
                samples[f.last].next = END;
            }
        }
    }

    /// Adds the metrics of one object named `name`.
    fn add_object(&mut self, segment: usize, name: &str, kind: Kind, state: &State) {
        let (mut base, name_a, name_b, mut metrics) = std::mem::take(&mut self.scratch);
        self.scratch.1 = name_a;
        self.scratch.2 = name_b;
        metrics.clear();
        metrics_of(state, &mut metrics);
        if !metrics.is_empty() {
            base.clear();
            base.extend_from_slice(b"shmkit_");
            sanitize_into(name, &mut base);
            let start = self.objects.len();
            super::text::escape(&mut self.objects, name.as_bytes(), true);
            let object = start..self.objects.len();
            let quote = self.objects.len() - start > name.len() && name.contains('"');
            for m in &metrics {
                self.add_metric(segment, kind, (&object, quote), &base, m);
            }
        }
        self.scratch.0 = base;
        self.scratch.3 = metrics;
    }

    fn add_metric(
        &mut self,
        segment: usize,
        kind: Kind,
        (object, quote): (&Range<usize>, bool),
        base: &[u8],
        m: &Metric,
    ) {
        // A counter's samples end in `_total` already: `requests_total` stays `requests_total`.
        let base = match (m.ty, m.suffix) {
            (Type::Counter, "") => base.strip_suffix(b"_total").unwrap_or(base),
            _ => base,
        };
        let mut name = std::mem::take(&mut self.scratch.1);
        name.clear();
        name.extend_from_slice(base);
        name.extend_from_slice(m.suffix.as_bytes());
        let help = || Help::Object {
            what: m.what,
            kind,
            object: object.clone(),
            quote,
        };
        let mut i = self.family(&name, m.ty, help);
        if i.is_none() {
            // A clash with a family of another type: the kind is appended (then a number).
            name.push(b'_');
            sanitize_into(&kind.to_string(), &mut name);
            let stem = name.len();
            let mut n = 2;
            loop {
                i = self.family(&name, m.ty, help);
                if i.is_some() {
                    break;
                }
                name.truncate(stem);
                name.extend_from_slice(format!("_{n}").as_bytes());
                n += 1;
            }
        }
        self.scratch.1 = name;
        if let Some(i) = i {
            self.push(i, segment, Some(object.clone()), m.direction, m.value);
        }
    }

    /// Appends a sample to the family `i`.
    fn push(
        &mut self,
        i: usize,
        segment: usize,
        object: Option<Range<usize>>,
        direction: Option<&'static str>,
        value: Value,
    ) {
        let s = self.samples.len();
        self.samples.push(Sample {
            segment,
            object,
            direction,
            value,
            next: END,
        });
        let f = &mut self.families[i];
        match f.last {
            END => f.first = s,
            last => self.samples[last].next = s,
        }
        f.last = s;
    }

    /// Whether a new family `name` of type `ty` would clash with another family's names.
    fn clashes(&mut self, name: &[u8], ty: Type) -> bool {
        let mut derived = std::mem::take(&mut self.scratch.2);
        let clash =
            [&b"_total"[..], b"_created"]
                .iter()
                .zip(self.suffixed)
                .any(|(suffix, suffixed)| {
                    // A counter `x` writes `x_total` and `x_created`: they must not be families, and
                    // a new `x_total` must not be a sample name of a counter `x`. (Names with these
                    // ends are counted, so that the common case costs no lookup.)
                    (ty == Type::Counter && suffixed > 0 && {
                        derived.clear();
                        derived.extend_from_slice(name);
                        derived.extend_from_slice(suffix);
                        self.names.find(&derived).is_some()
                    }) || name.strip_suffix(*suffix).is_some_and(|stem| {
                        self.names
                            .find(stem)
                            .is_some_and(|i| self.families[i].ty == Type::Counter)
                    })
                });
        self.scratch.2 = derived;
        clash
    }

    /// The family `name` of type `ty`, added if new; `None` if the name clashes.
    fn family(&mut self, name: &[u8], ty: Type, help: impl FnOnce() -> Help) -> Option<usize> {
        if let Some(i) = self.names.find(name) {
            return (self.families[i].ty == ty).then_some(i);
        }
        if self.clashes(name, ty) {
            return None;
        }
        for (suffix, n) in [&b"_total"[..], b"_created"].iter().zip(&mut self.suffixed) {
            *n += usize::from(name.ends_with(suffix));
        }
        let i = self.names.add(name);
        debug_assert_eq!(i, self.families.len());
        self.families.push(Family {
            ty,
            help: help(),
            first: END,
            last: END,
        });
        Some(i)
    }
}

/// The objects of one segment as [`inspect::each`] reads them.
struct Adding<'a> {
    m: &'a mut Metrics,
    segment: usize,
}

impl Visit for Adding<'_> {
    fn reserve(&mut self, objects: usize) {
        // Most objects make one family of one sample.
        self.m.families.reserve(objects);
        self.m.samples.reserve(objects);
        self.m.names.reserve(objects);
        self.m.objects.reserve(objects * 16);
    }

    fn object(&mut self, e: &EntryInfo, state: crate::Result<State>) {
        if let Ok(state) = &state {
            self.m.add_object(self.segment, &e.name, e.tag.kind, state);
        }
    }
}
