//! Where objects live: the process's table of open segments, by name.
//!
//! The Python layer decides names and lifetimes (`shmkit/_segment.py`: a per-process default
//! segment, removed by its creator at exit); this file only creates, opens, caches and unlinks
//! them. Every native object is made from *(segment name, object name)* with [`segment`], which
//! opens the segment on first use in this process (after `spawn`, or in an unrelated process)
//! and reuses the mapping afterwards (after `fork`, the inherited mapping is shared already).

use crate::errors::to_py;
use pyo3::prelude::*;
use shmkit::{Segment, SegmentOptions};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

fn table() -> &'static Mutex<HashMap<String, Segment>> {
    static TABLE: OnceLock<Mutex<HashMap<String, Segment>>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn lock_table() -> std::sync::MutexGuard<'static, HashMap<String, Segment>> {
    // A panic while the table was locked leaves a consistent map (insert/remove only).
    table().lock().unwrap_or_else(|e| e.into_inner())
}

/// The segment `name`, opened (and cached) on first use in this process.
pub fn segment(name: &str) -> PyResult<Segment> {
    if let Some(s) = lock_table().get(name) {
        return Ok(s.clone());
    }
    let seg = Segment::open(name).map_err(to_py)?;
    Ok(lock_table().entry(name.to_string()).or_insert(seg).clone())
}

/// Creates the named segment `name` (fails if it exists) of `size` bytes with room for
/// `dir_capacity` objects, and caches it.
#[pyfunction]
fn create_segment(name: &str, size: u64, dir_capacity: u32) -> PyResult<()> {
    let seg = SegmentOptions::new()
        .dir_capacity(dir_capacity)
        .create(name, size)
        .map_err(to_py)?;
    lock_table().insert(name.to_string(), seg);
    Ok(())
}

/// Opens the segment `name` (a no-op when it is open in this process already).
#[pyfunction]
fn open_segment(name: &str) -> PyResult<()> {
    segment(name).map(drop)
}

/// Removes the segment's name from /dev/shm (mappings stay valid until every process that has
/// it mapped lets go). Missing is not an error.
#[pyfunction]
fn unlink_segment(name: &str) -> PyResult<()> {
    match Segment::remove(name) {
        Ok(()) | Err(shmkit::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(to_py(e)),
    }
}

/// `(kind, element type name, length)` of the object `obj` in segment `seg`: what
/// `shmkit.open` needs to choose the Python class. `kind` is the directory's kind name
/// (`counter`, `value`, `mutex` …).
#[pyfunction]
fn describe(seg: &str, obj: &str) -> PyResult<(String, String, u64)> {
    let s = segment(seg)?;
    let entries = s.entries().map_err(to_py)?;
    let e = entries.into_iter().find(|e| e.name == obj).ok_or_else(|| {
        to_py(shmkit::Error::ObjectNotFound {
            name: obj.to_string(),
        })
    })?;
    let kind = e.tag.kind.name().unwrap_or("unknown").to_string();
    Ok((kind, e.tag.type_name, e.tag.len))
}

/// Free bytes left in the segment (for tools and tests).
#[pyfunction]
fn segment_free_bytes(seg: &str) -> PyResult<u64> {
    Ok(segment(seg)?.free_bytes())
}

/// Whether the process that created segment `name` is still running (pid and start time, the
/// core's liveness rule). Opens the segment without caching it.
#[pyfunction]
fn segment_creator_alive(name: &str) -> PyResult<bool> {
    Ok(Segment::open(name).map_err(to_py)?.creator_alive())
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(create_segment, m)?)?;
    m.add_function(wrap_pyfunction!(open_segment, m)?)?;
    m.add_function(wrap_pyfunction!(unlink_segment, m)?)?;
    m.add_function(wrap_pyfunction!(describe, m)?)?;
    m.add_function(wrap_pyfunction!(segment_free_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(segment_creator_alive, m)?)?;
    Ok(())
}
