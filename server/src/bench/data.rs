//! The data set files: `.fvecs`, `.ivecs` and the metric in `meta.json`.

use super::METRICS;
use anyhow::{anyhow, ensure, Context, Result};
use std::path::{Path, PathBuf};

/// Vectors as the raw bytes of an `.fvecs` file: row `i` is `dim` f32 LE at
/// `bytes[i*(4+4*dim)+4 ..]`, which is exactly the blob keel expects.
#[derive(Debug)]
pub(super) struct Fvecs {
    pub(super) dim: usize,
    pub(super) n: usize,
    pub(super) bytes: Vec<u8>,
}

impl Fvecs {
    /// Validates that every record has the same positive dimension and the file ends on
    /// a record boundary.
    pub(super) fn parse(bytes: Vec<u8>) -> Result<Fvecs> {
        if bytes.is_empty() {
            return Ok(Fvecs { dim: 0, n: 0, bytes });
        }
        let dim = read_dim(&bytes, 0)?;
        ensure!(dim > 0, "dimension 0 in the first record");
        let rec = 4 + 4 * dim;
        let len = bytes.len();
        ensure!(len.is_multiple_of(rec), "length {len} is not a multiple of the record size {rec} (dim {dim})");
        let n = bytes.len() / rec;
        for i in 0..n {
            let d = read_dim(&bytes, i * rec)?;
            ensure!(d == dim, "record {i} has dimension {d}, the first has {dim}");
        }
        Ok(Fvecs { dim, n, bytes })
    }

    /// Row `i` as little-endian f32 bytes (`4 * dim` of them).
    pub(super) fn blob(&self, i: usize) -> &[u8] {
        let rec = 4 + 4 * self.dim;
        &self.bytes[i * rec + 4..(i + 1) * rec]
    }
}

/// Reads an i32 LE dimension/count at `at` as a usize (negative is an error).
pub(super) fn read_dim(bytes: &[u8], at: usize) -> Result<usize> {
    let b = bytes.get(at..at + 4).ok_or_else(|| anyhow!("truncated at byte {at}"))?;
    let v = i32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    usize::try_from(v).map_err(|_| anyhow!("negative length {v} at byte {at}"))
}

/// Parses `.ivecs`: per row an i32 count then that many i32 (non-negative ids).
pub(super) fn parse_ivecs(bytes: &[u8]) -> Result<Vec<Vec<u32>>> {
    let mut rows = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = read_dim(bytes, at)?;
        at += 4;
        let body = bytes.get(at..at + 4 * n).ok_or_else(|| anyhow!("row {} truncated at byte {at}", rows.len()))?;
        let row = body
            .chunks_exact(4)
            .map(|c| {
                let v = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                u32::try_from(v).map_err(|_| anyhow!("negative id {v} in row {}", rows.len()))
            })
            .collect::<Result<Vec<u32>>>()?;
        rows.push(row);
        at += 4 * n;
    }
    Ok(rows)
}

/// The `"key": "value"` string of a flat JSON object such as `meta.json` (no escapes in
/// the value; enough for the fields `make-data` writes), if there is one.
pub(super) fn json_string<'a>(json: &'a str, key: &str) -> Option<&'a str> {
    let quoted = format!("\"{key}\"");
    let mut rest = json;
    while let Some(at) = rest.find(&quoted) {
        rest = &rest[at + quoted.len()..];
        let Some(after) = rest.trim_start().strip_prefix(':') else { continue };
        let value = after.trim_start().strip_prefix('"')?;
        return value.find('"').map(|end| &value[..end]);
    }
    None
}

/// The three files of a data set, checked for consistency, and its metric.
pub(super) struct DataSet {
    pub(super) dir: PathBuf,
    pub(super) base: Fvecs,
    pub(super) queries: Fvecs,
    pub(super) gt: Vec<Vec<u32>>,
    /// From `meta.json`, if it is there and names one keel knows.
    pub(super) metric: Option<String>,
}

impl DataSet {
    pub(super) fn open(dir: &Path) -> Result<DataSet> {
        let read = |name: &str| {
            let p = dir.join(name);
            std::fs::read(&p).with_context(|| format!("read {}", p.display()))
        };
        let base = Fvecs::parse(read("base.fvecs")?).context("parse base.fvecs")?;
        let queries = Fvecs::parse(read("query.fvecs")?).context("parse query.fvecs")?;
        let gt = parse_ivecs(&read("gt.ivecs")?).context("parse gt.ivecs")?;
        ensure!(base.n > 0 && queries.n > 0, "base.fvecs and query.fvecs must not be empty");
        ensure!(base.dim == queries.dim, "query dim {} differs from base dim {}", queries.dim, base.dim);
        ensure!(gt.len() >= queries.n, "gt.ivecs has {} rows for {} queries", gt.len(), queries.n);
        let meta = std::fs::read_to_string(dir.join("meta.json")).unwrap_or_default();
        let metric = json_string(&meta, "metric").filter(|m| METRICS.contains(m)).map(String::from);
        Ok(DataSet { dir: dir.to_path_buf(), base, queries, gt, metric })
    }

    pub(super) fn describe(&self) -> String {
        let gt_k = self.gt.iter().map(Vec::len).min().unwrap_or(0);
        format!(
            "`{}`: base {} × {} ({:.1} MiB), queries {}, ground truth {} × {}",
            self.dir.display(),
            self.base.n,
            self.base.dim,
            (self.base.n * self.base.dim * 4) as f64 / (1 << 20) as f64,
            self.queries.n,
            self.gt.len(),
            gt_k
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fvecs_bytes(rows: &[&[f32]]) -> Vec<u8> {
        let mut b = Vec::new();
        for r in rows {
            b.extend((r.len() as i32).to_le_bytes());
            for x in *r {
                b.extend(x.to_le_bytes());
            }
        }
        b
    }

    fn ivecs_bytes(rows: &[&[i32]]) -> Vec<u8> {
        let mut b = Vec::new();
        for r in rows {
            b.extend((r.len() as i32).to_le_bytes());
            for x in *r {
                b.extend(x.to_le_bytes());
            }
        }
        b
    }

    #[test]
    fn fvecs_rows_are_blobs() {
        let f = Fvecs::parse(fvecs_bytes(&[&[1.0, 2.0], &[3.0, -4.5]])).unwrap();
        assert_eq!((f.n, f.dim), (2, 2));
        assert_eq!(f.blob(1), [3.0f32.to_le_bytes(), (-4.5f32).to_le_bytes()].concat());
        let empty = Fvecs::parse(Vec::new()).unwrap();
        assert_eq!(empty.n, 0);
    }

    #[test]
    fn fvecs_rejects_bad_files() {
        let err = |b: Vec<u8>| Fvecs::parse(b).unwrap_err().to_string();
        assert!(err(fvecs_bytes(&[&[1.0, 2.0], &[3.0]])).contains("not a multiple"));
        assert!(err(fvecs_bytes(&[&[1.0, 2.0], &[3.0, 4.0, 5.0], &[1.0]])).contains("record 1 has dimension 3"));
        let mut truncated = fvecs_bytes(&[&[1.0, 2.0], &[3.0, 4.0]]);
        truncated.pop();
        assert!(err(truncated).contains("not a multiple"));
        assert!(err((-1i32).to_le_bytes().to_vec()).contains("negative length -1"));
        assert!(err(vec![1, 0]).contains("truncated"));
    }

    #[test]
    fn ivecs_parses_and_rejects() {
        assert_eq!(parse_ivecs(&ivecs_bytes(&[&[3, 1, 2], &[], &[7]])).unwrap(), vec![vec![3, 1, 2], vec![], vec![7]]);
        assert!(parse_ivecs(&ivecs_bytes(&[&[1, -2]])).unwrap_err().to_string().contains("negative id -2"));
        let mut short = ivecs_bytes(&[&[1, 2]]);
        short.truncate(8);
        assert!(parse_ivecs(&short).unwrap_err().to_string().contains("row 0 truncated"));
    }

    #[test]
    fn meta_json_metric() {
        let check = |json: &str, expected: Option<&str>| assert_eq!(json_string(json, "metric"), expected, "{json}");
        check(r#"{"name": "x", "dim": 128, "metric": "l2", "gt": "squared"}"#, Some("l2"));
        check("{\n  \"metric\" :\"cosine\",\n}", Some("cosine"));
        // A value that mentions the key is not the key.
        check(r#"{"gt": "by \"metric\"", "metric": "ip"}"#, Some("ip"));
        check(r#"{"metric": 3}"#, None);
        check(r#"{"dim": 3}"#, None);
        check("", None);
    }
}
