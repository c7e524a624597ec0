//! Reads criterion's saved results (`<target>/criterion/**/new/{benchmark,sample}.json`), so the
//! micro benchmarks' figures land in BENCHMARKS.md without being typed.

use std::path::Path;

use serde::Deserialize;

use crate::stats::Spread;

#[derive(Debug, Deserialize)]
struct SavedId {
    group_id: String,
    function_id: Option<String>,
    throughput: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct SavedSample {
    iters: Vec<f64>,
    times: Vec<f64>,
}

/// One benchmark: nanoseconds per iteration over criterion's samples, and its throughput unit.
#[derive(Debug, Clone)]
pub(crate) struct Result {
    /// The group (e.g. `small events`).
    pub(crate) group: String,
    /// The function (e.g. `nest`).
    pub(crate) function: String,
    /// Nanoseconds per iteration: median and min–max of the samples.
    pub(crate) ns: Spread,
    /// Bytes per iteration, when the throughput is in bytes.
    pub(crate) bytes: Option<u64>,
    /// Elements per iteration, when the throughput is in elements.
    pub(crate) elements: Option<u64>,
}

impl Result {
    /// MB/s (10⁶ bytes) from the median, and min–max.
    pub(crate) fn mb_per_sec(&self) -> Option<Spread> {
        let bytes = self.bytes? as f64;
        Some(Spread {
            median: bytes / self.ns.median * 1e3,
            min: bytes / self.ns.max * 1e3,
            max: bytes / self.ns.min * 1e3,
        })
    }

    /// Nanoseconds per element from the median, and min–max.
    pub(crate) fn ns_per_element(&self) -> Option<Spread> {
        let n = self.elements? as f64;
        Some(Spread {
            median: self.ns.median / n,
            min: self.ns.min / n,
            max: self.ns.max / n,
        })
    }

    /// Elements per second from the median, and min–max.
    pub(crate) fn per_sec(&self) -> Option<Spread> {
        let n = self.elements? as f64;
        Some(Spread {
            median: n / self.ns.median * 1e9,
            min: n / self.ns.max * 1e9,
            max: n / self.ns.min * 1e9,
        })
    }
}

/// Every benchmark saved under `dir`.
pub(crate) fn read_all(dir: &Path) -> Vec<Result> {
    let mut found = Vec::new();
    visit(dir, &mut found);
    found.sort_by(|a, b| (&a.group, &a.function).cmp(&(&b.group, &b.function)));
    found
}

fn visit(dir: &Path, found: &mut Vec<Result>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") {
            if let Some(result) = read_one(&path) {
                found.push(result);
            }
        } else {
            visit(&path, found);
        }
    }
}

fn read_one(dir: &Path) -> Option<Result> {
    let id: SavedId =
        serde_json::from_str(&std::fs::read_to_string(dir.join("benchmark.json")).ok()?).ok()?;
    let sample: SavedSample =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sample.json")).ok()?).ok()?;
    let per_iter: Vec<f64> = sample
        .iters
        .iter()
        .zip(&sample.times)
        .map(|(iters, time)| time / iters)
        .collect();
    let unit = |name: &str| {
        id.throughput
            .as_ref()
            .and_then(|t| t.get(name))
            .and_then(serde_json::Value::as_u64)
    };
    Some(Result {
        function: id.function_id.clone().unwrap_or_default(),
        bytes: unit("Bytes"),
        elements: unit("Elements"),
        group: id.group_id,
        ns: Spread::of(&per_iter)?,
    })
}
