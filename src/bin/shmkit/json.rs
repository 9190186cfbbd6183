//! The structured state of objects and segments as JSON (`stat --json`, `watch --json`,
//! `export --format json`). The library returns plain structs; the tool alone depends on
//! serde_json.

use serde_json::{json, Map, Value};
use shmkit::inspect::{Number, ObjectReport, Positions, Reading, State};
use shmkit::Segment;

fn number(n: Number) -> Value {
    match n {
        Number::Unsigned(v) => json!(v),
        Number::Signed(v) => json!(v),
        // NaN and infinities have no JSON number: serde_json writes null.
        Number::F32(x) => json!(x),
        Number::F64(x) => json!(x),
    }
}

fn reading(r: &Reading) -> Value {
    match r {
        Reading::Number(n) => number(*n),
        Reading::Bits { type_name, bits } => json!({ "type": type_name, "bits": bits }),
        Reading::Opaque { type_name, size } => json!({ "type": type_name, "size": size }),
    }
}

fn positions(p: &Positions) -> Value {
    json!({ "len": p.len(), "capacity": p.capacity, "head": p.head, "tail": p.tail })
}

/// The fields of a state (merged into the object's JSON object).
pub fn state(s: &State) -> Value {
    match s {
        State::Initializing => json!({ "initializing": true }),
        State::Counter { value } => json!({ "value": value }),
        State::ShardedCounter { sum, busy_stripes } => {
            json!({ "value": sum, "busy_stripes": busy_stripes })
        }
        State::Value(r) => json!({ "value": reading(r) }),
        State::Lock { state, depth } => json!({
            "locked": state.owner_tid.is_some(),
            "owner_tid": state.owner_tid,
            "owner_pid": state.owner_pid,
            "waiters": state.waiters,
            "owner_died": state.owner_died,
            "not_recoverable": state.not_recoverable,
            "depth": depth,
        }),
        State::Condvar { waiters, notifies } => {
            json!({ "waiters": waiters, "notifies": notifies })
        }
        State::Semaphore {
            available,
            bound,
            holders,
            reclaimed,
        } => json!({
            "available": available,
            "bound": bound,
            "holders": holders.iter().map(|(p, n)| json!({ "pid": p, "count": n })).collect::<Vec<_>>(),
            "reclaimed": reclaimed,
        }),
        State::Barrier {
            generation,
            arrived,
            parties,
            broken,
        } => {
            json!({ "generation": generation, "arrived": arrived, "parties": parties, "broken": broken })
        }
        State::Event { set, waiters } => json!({ "set": set, "waiters": waiters }),
        State::SeqLock {
            value,
            version,
            writer_note,
        } => json!({ "value": reading(value), "version": version, "writer_note": writer_note }),
        State::SeqArray {
            len,
            first,
            writer_note,
            ..
        } => json!({
            "len": len,
            "first": first.as_ref().map(|v| v.iter().map(|n| number(*n)).collect::<Vec<_>>()),
            "writer_note": writer_note,
        }),
        State::Spsc {
            positions: p,
            holders: (a, b),
            closed,
        } => {
            json!({ "ring": positions(p), "producer_pid": a, "consumer_pid": b, "closed": closed })
        }
        State::Mpmc {
            positions: p,
            lost,
            closed,
        } => json!({ "ring": positions(p), "lost": lost, "closed": closed }),
        State::ByteRing {
            positions: p,
            max_msg,
            holders: (s, r),
            closed,
        } => json!({
            "ring": positions(p), "max_msg": max_msg, "sender_pid": s, "receiver_pid": r,
            "closed": closed,
        }),
        State::Pipe {
            a_to_b,
            b_to_a,
            max_msg,
            holders: (a, b),
            closed,
        } => json!({
            "a_to_b": positions(a_to_b), "b_to_a": positions(b_to_a), "max_msg": max_msg,
            "end_a_pid": a, "end_b_pid": b, "closed": closed,
        }),
        State::MpmcBytes {
            positions: p,
            max_msg,
            lost,
            closed,
        } => json!({ "ring": positions(p), "max_msg": max_msg, "lost": lost, "closed": closed }),
        State::Map(m) => json!({
            "len": m.len, "capacity": m.capacity, "key_max": m.key_max, "value_max": m.value_max,
        }),
        State::List(l) => json!({
            "len": l.len, "capacity": l.capacity, "elem_max": l.elem_max, "holes": l.holes,
        }),
        other => json!({ "text": other.to_string() }),
    }
}

/// One object: name, kind, type, placement, `text` (as `stat` shows it) and its state's fields
/// (or `error`).
pub fn object(r: &ObjectReport) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("name".into(), json!(r.name));
    o.insert("kind".into(), json!(r.kind.to_string()));
    o.insert("type".into(), json!(r.type_name));
    o.insert("offset".into(), json!(r.offset));
    o.insert("size".into(), json!(r.size));
    match &r.state {
        Ok(s) => {
            o.insert("text".into(), json!(s.to_string()));
            if let Value::Object(fields) = state(s) {
                o.extend(fields);
            }
        }
        Err(e) => {
            o.insert("error".into(), json!(e.to_string()));
        }
    }
    o
}

/// A segment's header fields and its objects.
pub fn segment(label: &str, seg: &Segment, objects: &[ObjectReport]) -> Value {
    let (pid, created) = seg.creator();
    json!({
        "segment": label,
        "path": seg.path().map(|p| p.display().to_string()),
        "size": seg.size(),
        "free": seg.free_bytes(),
        "dir_capacity": seg.dir_capacity(),
        "creator_pid": pid,
        "creator_alive": seg.creator_alive(),
        "created_unix_ns": created,
        "format_version": shmkit::FORMAT_VERSION,
        "objects": objects.iter().map(|r| Value::Object(object(r))).collect::<Vec<_>>(),
    })
}
