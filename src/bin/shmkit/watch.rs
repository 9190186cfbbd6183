//! `shmkit watch NAME`: the objects of a segment refreshed in place, with rates per second for
//! counters and numbers for people; `--json` writes one JSON object per sample (JSON Lines).

use crate::fmt::{self, CmdResult};
use crate::stat::{header, table, type_cell};
use crate::tools::Target;
use serde_json::{json, Value};
use shmkit::inspect::{self, Number, ObjectReport, Reading, State};
use shmkit::{Error, Kind};
use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// What `watch` was asked for.
pub struct WatchArgs {
    /// Time between samples.
    pub interval: Duration,
    /// Stop after this many samples.
    pub count: Option<u64>,
    /// JSON Lines instead of a table.
    pub json: bool,
}

/// A counter's value at a sample, by (name, kind).
type Seen = HashMap<(String, Kind), u64>;

/// The counted value of a counter or sharded counter.
fn counted(s: &State) -> Option<u64> {
    match s {
        State::Counter { value } => Some(*value),
        State::ShardedCounter { sum, .. } => Some(*sum),
        _ => None,
    }
}

/// Per-second rate of each counter since the previous sample (`None` on the first sample, for a
/// new counter, or when it went down: it was reset).
fn rates(objects: &[ObjectReport], prev: &Seen, dt: Option<Duration>) -> Vec<Option<f64>> {
    objects
        .iter()
        .map(|r| {
            let now = counted(r.state.as_ref().ok()?)?;
            let before = *prev.get(&(r.name.clone(), r.kind))?;
            let dt = dt?.as_secs_f64();
            (now >= before && dt > 0.0).then(|| (now - before) as f64 / dt)
        })
        .collect()
}

fn human_number(n: Number) -> String {
    match n {
        Number::Unsigned(v) => fmt::thousands(v),
        Number::Signed(v) => fmt::thousands_signed(v),
        other => fmt::float(other.as_f64()),
    }
}

/// The VALUE cell: numbers for people, other states as `stat` shows them.
fn human_value(s: &State) -> String {
    match s {
        State::Counter { value } => fmt::thousands(*value),
        State::ShardedCounter { sum, .. } => fmt::thousands(*sum),
        State::Value(Reading::Number(n)) => human_number(*n),
        State::SeqLock {
            value: Reading::Number(n),
            version,
            writer_note,
        } => {
            let note = writer_note
                .as_ref()
                .map_or(String::new(), |n| format!("; {n}"));
            format!("{} (version {version}{note})", human_number(*n))
        }
        other => other.to_string(),
    }
}

fn text(
    label: &str,
    seg: &shmkit::Segment,
    objects: &[ObjectReport],
    rates: &[Option<f64>],
) -> String {
    let mut s = header(label, seg, objects.len());
    if objects.is_empty() {
        s.push_str("\n(no objects)\n");
        return s;
    }
    let mut rows = vec![["NAME", "KIND", "TYPE", "RATE", "VALUE"]
        .iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()];
    for (r, rate) in objects.iter().zip(rates) {
        let value = match &r.state {
            Ok(st) => human_value(st),
            Err(err) => format!("error: {err}"),
        };
        let rate = match (rate, r.state.as_ref().ok().and_then(counted)) {
            (Some(x), _) => format!("{}/s", fmt::float(*x)),
            (None, Some(_)) => "…".to_string(),
            (None, None) => String::new(),
        };
        rows.push(vec![
            r.name.clone(),
            r.kind.to_string(),
            type_cell(r),
            rate,
            value,
        ]);
    }
    s.push('\n');
    s.push_str(&table(&rows, &[3]));
    s
}

fn json_line(
    label: &str,
    objects: &[ObjectReport],
    rates: &[Option<f64>],
    dt: Option<Duration>,
) -> Value {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    let objects: Vec<Value> = objects
        .iter()
        .zip(rates)
        .map(|(r, rate)| {
            let mut o = crate::json::object(r);
            if r.state.as_ref().ok().and_then(counted).is_some() {
                o.insert("rate".into(), json!(rate));
            }
            Value::Object(o)
        })
        .collect();
    json!({
        "time": unix,
        "segment": label,
        "elapsed_s": dt.map(|d| d.as_secs_f64()),
        "objects": objects,
    })
}

/// `shmkit watch NAME`.
pub fn watch(target: &Target, args: &WatchArgs) -> CmdResult {
    crate::signal::install();
    let tty = !args.json && std::io::stdout().is_terminal();
    let mut shown = 0u64;
    let mut out = std::io::stdout();
    let mut prev: Seen = HashMap::new();
    let mut last: Option<Instant> = None;
    let label = target.label();
    loop {
        // Reopened every time: a segment removed and created again is followed.
        let read = target
            .open()
            .and_then(|seg| inspect::report(&seg).map(|objects| (seg, objects)));
        let (seg, objects) = match read {
            Ok(x) => x,
            // It was there and is gone: the watched program removed it.
            Err(Error::NotFound { .. }) if shown > 0 => {
                if args.json {
                    println!("{}", json!({ "segment": label, "removed": true }));
                } else {
                    println!("segment {label} was removed");
                }
                return Ok(0);
            }
            Err(e) => return Err(e.into()),
        };
        let now = Instant::now();
        let dt = last.map(|t| now.duration_since(t));
        let rates = rates(&objects, &prev, dt);
        prev = objects
            .iter()
            .filter_map(|r| Some(((r.name.clone(), r.kind), counted(r.state.as_ref().ok()?)?)))
            .collect();
        last = Some(now);
        if args.json {
            let _ = writeln!(out, "{}", json_line(&label, &objects, &rates, dt));
        } else {
            let text = text(&label, &seg, &objects, &rates);
            let ms = args.interval.as_millis();
            if tty {
                // Home the cursor, clear the screen, draw.
                let _ = write!(
                    out,
                    "\x1b[H\x1b[2J{text}\nrefreshed every {ms} ms; Ctrl-C stops\n"
                );
            } else {
                let _ = writeln!(out, "{text}");
            }
        }
        let _ = out.flush();
        drop(seg);
        shown += 1;
        if args.count.is_some_and(|c| shown >= c) {
            return Ok(0);
        }
        let deadline = now + args.interval;
        while Instant::now() < deadline {
            if crate::signal::interrupted() {
                return Ok(0);
            }
            std::thread::sleep(Duration::from_millis(10).min(args.interval));
        }
    }
}
