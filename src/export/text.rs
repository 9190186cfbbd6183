//! Writing families in the Prometheus text format 0.0.4 and OpenMetrics 1.0.

use super::{Format, Help, Metrics, Type, Value};
use std::io::{self, Write};

pub(super) fn write(m: &Metrics, format: Format, w: &mut impl Write) -> io::Result<()> {
    let mut w = io::BufWriter::with_capacity(64 * 1024, w);
    let om = format == Format::OpenMetrics;
    // Label values are escaped once per segment, not once per sample.
    let segments: Vec<String> = m.segments.iter().map(|s| escaped(s)).collect();
    for f in &m.families {
        // Prometheus names a counter family by its sample (`x_total`); OpenMetrics by its base.
        let total = if f.ty == Type::Counter { "_total" } else { "" };
        let family_total = if om { "" } else { total };
        let ty = match f.ty {
            Type::Counter => "counter",
            Type::Gauge => "gauge",
        };
        write!(w, "# HELP {}{family_total} ", f.name)?;
        match &f.help {
            Help::Fixed(h) => escape(&mut w, h, om)?,
            Help::Object { what, kind, object } => {
                write!(w, "{what} of shmkit {kind} ")?;
                escape(&mut w, object, om)?;
            }
        }
        writeln!(w, "\n# TYPE {}{family_total} {ty}", f.name)?;
        for s in &f.samples {
            write!(w, "{}{total}{{segment=\"{}\"", f.name, segments[s.segment])?;
            if let Some(o) = &s.object {
                w.write_all(b",object=\"")?;
                escape(&mut w, o, true)?;
                w.write_all(b"\"")?;
            }
            if let Some(d) = s.direction {
                write!(w, ",direction=\"{d}\"")?;
            }
            w.write_all(b"} ")?;
            value(&mut w, s.value)?;
            w.write_all(b"\n")?;
        }
    }
    if om {
        w.write_all(b"# EOF\n")?;
    }
    w.flush()
}

fn escaped(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    // Writing into a Vec cannot fail.
    let _ = escape(&mut out, s, true);
    String::from_utf8_lossy(&out).into_owned()
}

/// Escapes `\` and newline (both formats) and `"` (label values, and OpenMetrics help text; the
/// Prometheus format leaves `"` in help text as it is).
fn escape(w: &mut impl Write, s: &str, quote: bool) -> io::Result<()> {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let rep: &[u8] = match c {
            '\\' => b"\\\\",
            '\n' => b"\\n",
            '"' if quote => b"\\\"",
            _ => continue,
        };
        w.write_all(&s.as_bytes()[start..i])?;
        w.write_all(rep)?;
        start = i + 1;
    }
    w.write_all(&s.as_bytes()[start..])
}

fn value(w: &mut impl Write, v: Value) -> io::Result<()> {
    match v {
        Value::Int(n) => write!(w, "{n}"),
        Value::Float(x) if x.is_nan() => w.write_all(b"NaN"),
        Value::Float(x) if x == f64::INFINITY => w.write_all(b"+Inf"),
        Value::Float(x) if x == f64::NEG_INFINITY => w.write_all(b"-Inf"),
        // `Debug` is the shortest text that reads back as the same f64 (`21.5`, `1e300`).
        Value::Float(x) => write!(w, "{x:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::escape;

    fn esc(s: &str, quote: bool) -> String {
        let mut out = Vec::new();
        escape(&mut out, s, quote).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escaping() {
        assert_eq!(esc("plain", true), "plain");
        assert_eq!(esc("a\"b\\c\nd", true), "a\\\"b\\\\c\\nd");
        assert_eq!(esc("a\"b\\c\nd", false), "a\"b\\\\c\\nd");
        assert_eq!(esc("ünï\"", true), "ünï\\\"");
    }
}
