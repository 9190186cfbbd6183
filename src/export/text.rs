//! Writing families in the Prometheus text format 0.0.4 and OpenMetrics 1.0: into a reused
//! block of bytes (no `fmt` machinery on the common path, no `memcpy` call per short piece,
//! integers two digits at a time), handed to the writer about every 64 KiB.

use super::metrics::{Help, Metrics, END};
use super::{Format, Type, Value};
use std::io::{self, Write};

/// How much is gathered before it goes to the writer.
const BLOCK: usize = 64 * 1024;
/// Room beyond `BLOCK` for the line that crosses it (a longer line grows the buffer).
const SLACK: usize = 4096;

pub(super) fn write(m: &Metrics, format: Format, w: &mut impl Write) -> io::Result<()> {
    let mut out = Out {
        buf: vec![0; BLOCK + SLACK],
        at: 0,
    };
    let om = format == Format::OpenMetrics;
    // Label values are escaped once per segment, not once per sample.
    let segments: Vec<Out> = m
        .segments
        .iter()
        .map(|s| {
            let mut e = Out {
                buf: vec![0; s.len() * 2],
                at: 0,
            };
            e.escaped(s.as_bytes(), true);
            e
        })
        .collect();
    for (i, f) in m.families.iter().enumerate() {
        let name = m.names.get(i);
        // Prometheus names a counter family by its sample (`x_total`); OpenMetrics by its base.
        let total: &[u8] = if f.ty == Type::Counter {
            b"_total"
        } else {
            b""
        };
        let family_total = if om { b"" } else { total };
        let ty: &[u8] = match f.ty {
            Type::Counter => b" counter\n",
            Type::Gauge => b" gauge\n",
        };
        out.put(b"# HELP ");
        out.put(name);
        out.put(family_total);
        out.put(b" ");
        match &f.help {
            Help::Fixed(h) => out.escaped(h.as_bytes(), om),
            Help::Object {
                what,
                kind,
                object,
                quote,
            } => {
                out.put(what.as_bytes());
                out.put(b" of shmkit ");
                match kind.name() {
                    Some(k) => out.put(k.as_bytes()),
                    None => out.put(kind.to_string().as_bytes()),
                }
                out.put(b" ");
                let object = &m.objects[object.clone()];
                if om || !quote {
                    out.put(object);
                } else {
                    // Prometheus help text keeps `"` as it is: `\"` back to `"`.
                    out.unquoted(object);
                }
            }
        }
        out.put(b"\n# TYPE ");
        out.put(name);
        out.put(family_total);
        out.put(ty);
        let mut s = f.first;
        while s != END {
            let sample = &m.samples[s];
            out.put(name);
            out.put(total);
            out.put(b"{segment=\"");
            out.put(segments[sample.segment].text());
            if let Some(o) = &sample.object {
                out.put(b"\",object=\"");
                out.put(&m.objects[o.clone()]);
            }
            if let Some(d) = sample.direction {
                out.put(b"\",direction=\"");
                out.put(d.as_bytes());
            }
            out.put(b"\"} ");
            out.value(sample.value);
            out.put(b"\n");
            if out.at >= BLOCK {
                w.write_all(out.text())?;
                out.at = 0;
            }
            s = sample.next;
        }
    }
    if om {
        out.put(b"# EOF\n");
    }
    w.write_all(out.text())?;
    w.flush()
}

/// Bytes written so far into a buffer kept at its full length (so that a short piece is copied
/// by a few moves of fixed size, with no call).
struct Out {
    buf: Vec<u8>,
    at: usize,
}

impl Out {
    fn text(&self) -> &[u8] {
        &self.buf[..self.at]
    }

    #[inline(always)]
    fn put(&mut self, s: &[u8]) {
        let n = s.len();
        if self.buf.len() - self.at < n {
            self.buf.resize(self.at + n + SLACK, 0);
        }
        let d = &mut self.buf[self.at..self.at + n];
        // Two overlapping copies of a fixed size cover any length from that size to twice it.
        match n {
            0 => {}
            1..=3 => {
                d[0] = s[0];
                d[n / 2] = s[n / 2];
                d[n - 1] = s[n - 1];
            }
            4..=7 => {
                d[..4].copy_from_slice(&s[..4]);
                d[n - 4..].copy_from_slice(&s[n - 4..]);
            }
            8..=16 => {
                d[..8].copy_from_slice(&s[..8]);
                d[n - 8..].copy_from_slice(&s[n - 8..]);
            }
            17..=32 => {
                d[..16].copy_from_slice(&s[..16]);
                d[n - 16..].copy_from_slice(&s[n - 16..]);
            }
            _ => d.copy_from_slice(s),
        }
        self.at += n;
    }

    /// `s` escaped (see [`escape`]).
    fn escaped(&mut self, s: &[u8], quote: bool) {
        if !needs_escape(s) {
            return self.put(s);
        }
        let mut e = Vec::with_capacity(s.len() + 8);
        escape(&mut e, s, quote);
        self.put(&e);
    }

    /// `s`, escaped by [`escape`] with `quote`, as if escaped without it: `\"` becomes `"`.
    fn unquoted(&mut self, s: &[u8]) {
        let mut i = 0;
        while i < s.len() {
            match (s[i], s.get(i + 1)) {
                (b'\\', Some(b'"')) => self.put(b"\""),
                (b'\\', Some(&c)) => self.put(&[b'\\', c]),
                (c, _) => self.put(&[c]),
            }
            i += if s[i] == b'\\' { 2 } else { 1 };
        }
    }

    fn value(&mut self, v: Value) {
        match v {
            Value::Int(n) => {
                let mut digits = [0u8; 20];
                let at = itoa(&mut digits, n);
                self.put(&digits[at..]);
            }
            Value::Float(x) if x.is_nan() => self.put(b"NaN"),
            Value::Float(x) if x == f64::INFINITY => self.put(b"+Inf"),
            Value::Float(x) if x == f64::NEG_INFINITY => self.put(b"-Inf"),
            // `Debug` is the shortest text that reads back as the same f64 (`21.5`, `1e300`).
            Value::Float(x) => self.put(format!("{x:?}").as_bytes()),
        }
    }
}

/// Appends `s` to `out` with `\\` and newline escaped (both formats) and, with `quote`, `"`
/// (label values, and OpenMetrics help text; the Prometheus format leaves `"` in help text as it
/// is).
pub(super) fn escape(out: &mut Vec<u8>, s: &[u8], quote: bool) {
    if !needs_escape(s) {
        return out.extend_from_slice(s);
    }
    let mut start = 0;
    for (i, &c) in s.iter().enumerate() {
        let rep: &[u8] = match c {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'"' if quote => b"\\\"",
            _ => continue,
        };
        out.extend_from_slice(&s[start..i]);
        out.extend_from_slice(rep);
        start = i + 1;
    }
    out.extend_from_slice(&s[start..]);
}

/// Whether `s` holds a `\\`, a newline or a `"`: eight bytes at a time.
fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = u64::MAX / 255;
    // A byte of `w` is zero (exactly: no false positives for "any").
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & (ONES << 7) != 0;
    let special = |c: u8| matches!(c, b'\\' | b'\n' | b'"');
    let any = |w: u64| {
        has_zero(w ^ (ONES * u64::from(b'\\')))
            || has_zero(w ^ (ONES * u64::from(b'\n')))
            || has_zero(w ^ (ONES * u64::from(b'"')))
    };
    let word = |c: &[u8]| u64::from_le_bytes(c.try_into().expect("8 bytes"));
    if s.len() < 8 {
        return s.iter().any(|&c| special(c));
    }
    let mut words = s.chunks_exact(8);
    let mut found = words.any(|c| any(word(c)));
    if !words.remainder().is_empty() {
        // The last 8 bytes, overlapping bytes already seen (which changes no answer).
        found |= any(word(&s[s.len() - 8..]));
    }
    found
}

/// Writes the decimal digits of `n` at the end of `buf`, two at a time from a table, and
/// returns where they start.
fn itoa(buf: &mut [u8; 20], mut n: u64) -> usize {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839404142434445464748495051525354555657585960616263\
        646566676869707172737475767778798081828384858687888990919293949596979899";
    let mut at = buf.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        at -= 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[n as usize * 2..n as usize * 2 + 2]);
    } else {
        at -= 1;
        buf[at] = b'0' + n as u8;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::{itoa, needs_escape, Out};

    fn esc(s: &str, quote: bool) -> String {
        let mut out = Out {
            buf: Vec::new(),
            at: 0,
        };
        out.escaped(s.as_bytes(), quote);
        String::from_utf8(out.text().to_vec()).unwrap()
    }

    #[test]
    fn escaping() {
        assert_eq!(esc("plain", true), "plain");
        assert_eq!(esc("a\"b\\c\nd", true), "a\\\"b\\\\c\\nd");
        assert_eq!(esc("a\"b\\c\nd", false), "a\"b\\\\c\\nd");
        assert_eq!(esc("ünï\"", true), "ünï\\\"");
        // Every position of a word and of the tail, and bytes next to the special ones.
        for len in 0..24 {
            for at in 0..len {
                for (c, special) in [(b'"', true), (b'\\', true), (b'\n', true), (b'!', false)] {
                    let mut s = vec![b'a'; len];
                    s[at] = c;
                    assert_eq!(needs_escape(&s), special, "{len} {at} {c}");
                    s[at] = c ^ 0x80;
                    assert!(!needs_escape(&s));
                }
            }
        }
    }

    #[test]
    fn short_pieces_of_every_length() {
        let text: Vec<u8> = (0..200u8).collect();
        let mut out = Out {
            buf: vec![0; 8],
            at: 0,
        };
        let mut want = Vec::new();
        for n in 0..70 {
            out.put(&text[..n]);
            want.extend_from_slice(&text[..n]);
        }
        assert_eq!(out.text(), &want[..]);
    }

    #[test]
    fn integers() {
        let check = |n: u64| {
            let mut buf = [0u8; 20];
            let at = itoa(&mut buf, n);
            assert_eq!(&buf[at..], n.to_string().as_bytes());
        };
        for n in [
            0,
            7,
            9,
            10,
            99,
            100,
            101,
            999,
            1000,
            12345,
            1 << 53,
            u64::MAX - 1,
            u64::MAX,
        ] {
            check(n);
        }
        for p in 0..20 {
            let n = 10u64.pow(p);
            for m in [n - 1, n, n + 1] {
                check(m);
            }
        }
    }
}
