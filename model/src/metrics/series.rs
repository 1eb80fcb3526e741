//! Series identity: which points belong to one time series, and its shard.
//!
//! A series is identified by its metric name, its resource attributes and
//! its point attributes, with types (`1` int ≠ `"1"` string). Scope is not
//! part of it. The identity is hashed from a canonical byte encoding:
//!
//! ```text
//! name_len:u32le name
//! n:u32le  { key_len:u32le key type_code:u8 value_len:u32le value } * n   resource attributes
//! n:u32le  { ... } * n                                                     point attributes
//! ```
//!
//! where each attribute list is sorted by key (stable, so duplicate keys keep
//! their order) and values use the stored text of [`crate::attributes`]
//! (after truncation, so `series_id` is a function of the stored row). The
//! 64-bit xxh3 of that is the series hash; `series_id` is its 16-digit
//! lowercase hex, and `hash % shard_count` the shard.

use opentelemetry_proto::tonic::common::v1::KeyValue;

use crate::ConvertLimits;
use crate::arrow_build::EncodedAttrs;

/// The shard that owns a series: its hash modulo the shard count.
pub fn shard_for_series(series_hash: u64, shard_count: usize) -> usize {
    if shard_count <= 1 {
        return 0;
    }
    (series_hash % shard_count as u64) as usize
}

/// The series hash of a point, exactly as [`crate::metrics_to_arrow`]
/// computes it.
pub fn series_hash(
    metric_name: &str,
    resource_attributes: &[KeyValue],
    point_attributes: &[KeyValue],
    limits: &ConvertLimits,
) -> u64 {
    let mut encoded = EncodedAttrs::default();
    let mut order = Vec::new();
    let mut key = Vec::new();
    write_str(&mut key, metric_name);
    encoded.encode(resource_attributes, limits);
    write_attrs(&mut key, &encoded, &mut order);
    encoded.encode(point_attributes, limits);
    write_attrs(&mut key, &encoded, &mut order);
    xxhash_rust::xxh3::xxh3_64(&key)
}

/// The `series_id` column value of a series hash: 16 lowercase hex digits.
pub fn series_id(series_hash: u64) -> String {
    format!("{series_hash:016x}")
}

/// Writes the 16-digit hex of `hash` into `out` without allocating.
pub(crate) fn series_id_digits(hash: u64, out: &mut [u8; 16]) -> &str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in out.iter_mut().enumerate() {
        *b = DIGITS[((hash >> (60 - 4 * i)) & 0xf) as usize];
    }
    // Only ASCII hex digits were written.
    std::str::from_utf8(out).unwrap_or_default()
}

pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

/// Appends the canonical encoding of one attribute list; `order` is scratch.
pub(crate) fn write_attrs(out: &mut Vec<u8>, attrs: &EncodedAttrs, order: &mut Vec<usize>) {
    out.extend_from_slice(&(attrs.len() as u32).to_le_bytes());
    let mut write = |(key, value, ty): (&str, &str, char)| {
        write_str(out, key);
        // Type codes are ASCII.
        out.push(ty as u8);
        write_str(out, value);
    };
    // Already sorted is the common case (many SDKs sort attribute sets).
    if attrs.is_sorted() {
        attrs.entries().for_each(write);
        return;
    }
    order.clear();
    order.extend(0..attrs.len());
    // Stable, so duplicate keys keep their order.
    order.sort_by(|a, b| attrs.key_bytes(*a).cmp(attrs.key_bytes(*b)));
    order.iter().for_each(|&i| write(attrs.entry(i)));
}
