//! The write-ahead log: segment files of framed records.
//!
//! A record is `len: u32 LE | crc32: u32 LE | payload`, where the CRC covers
//! the length bytes and the payload, and the payload is one Arrow IPC stream
//! holding one batch of the signal's rows. Segments are `wal/<seq:020>.wal`; sequence numbers
//! only grow, so "every segment up to N" (the manifest's checkpoint) names
//! exactly the segments whose data is already in Parquet. A crash can leave
//! a torn record at the end of the newest segment; replay stops there and
//! truncates the file.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use tracing::warn;

use crate::error::{IoContext, StorageError};
use crate::fsutil::fsync_dir;

const HEADER_BYTES: usize = 8;
/// Largest record replay accepts; a longer length field is treated as corruption.
pub(crate) const MAX_RECORD_BYTES: usize = 1 << 30;

pub(crate) fn segment_file_name(seq: u64) -> String {
    format!("{seq:020}.wal")
}

/// The sequence number of a segment file name, or `None` for other files.
pub(crate) fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".wal")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Segments in `dir`, oldest first.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir).ctx(|| format!("listing {}", dir.display()))? {
        let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_segment_file_name) {
            segments.push((seq, entry.path()));
        }
    }
    segments.sort_unstable_by_key(|(seq, _)| *seq);
    Ok(segments)
}

/// Appends one framed record to `out`.
pub(crate) fn encode_frame(payload: &[u8], out: &mut Vec<u8>) {
    // Payloads are capped far below 4 GiB by the collector's request limit;
    // replay rejects anything over MAX_RECORD_BYTES.
    let len = (payload.len() as u32).to_le_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(&len);
    crc.update(payload);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(payload);
}

pub(crate) fn frame_len(payload_len: usize) -> usize {
    HEADER_BYTES + payload_len
}

/// Serializes a batch as the payload of a record.
pub(crate) fn encode_batch(batch: &RecordBatch) -> Result<Vec<u8>, StorageError> {
    let mut writer = StreamWriter::try_new(Vec::with_capacity(batch.get_array_memory_size() / 2), &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    Ok(writer.into_inner()?)
}

/// Deserializes a record payload back into the batches it holds, which
/// must have the fields of `schema`.
pub(crate) fn decode_batches(payload: &[u8], schema: &Schema) -> Result<Vec<RecordBatch>, String> {
    let reader = StreamReader::try_new(payload, None).map_err(|e| format!("undecodable record: {e}"))?;
    if reader.schema().fields() != schema.fields() {
        return Err("record does not hold data of this signal's schema (written by an incompatible version?)".into());
    }
    reader.collect::<Result<Vec<_>, _>>().map_err(|e| format!("undecodable record: {e}"))
}

/// Deletes WAL segments up to `checkpoint`; returns the bytes freed.
pub(crate) fn delete_segments_up_to(wal_dir: &Path, checkpoint: u64) -> Result<u64, StorageError> {
    let mut freed = 0;
    let mut deleted = false;
    for (seq, path) in list_segments(wal_dir)? {
        if seq > checkpoint {
            break;
        }
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        std::fs::remove_file(&path).ctx(|| format!("deleting {}", path.display()))?;
        freed += len;
        deleted = true;
    }
    if deleted {
        fsync_dir(wal_dir).ctx(|| format!("syncing {}", wal_dir.display()))?;
    }
    Ok(freed)
}

/// What replaying one segment found.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct SegmentReplay {
    pub records: u64,
    /// Bytes of valid records; the file is this long after recovery.
    pub valid_bytes: u64,
    /// Why replay stopped early, if it did (the rest was truncated away).
    pub torn: Option<String>,
}

/// Reads every valid record of a segment, calling `on_record` with each
/// payload in order. A torn or corrupt record ends the segment: the file is
/// truncated to the last valid record and a warning logged. Errors from
/// `on_record` abort replay.
pub(crate) fn replay_segment(
    path: &Path,
    mut on_record: impl FnMut(&[u8]) -> Result<(), StorageError>,
) -> Result<SegmentReplay, StorageError> {
    let file = File::open(path).ctx(|| format!("opening {}", path.display()))?;
    let file_len = file.metadata().ctx(|| format!("reading {}", path.display()))?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut replay = SegmentReplay::default();
    let mut payload = Vec::new();
    let torn = loop {
        let remaining = file_len - replay.valid_bytes;
        if remaining == 0 {
            break None;
        }
        if remaining < HEADER_BYTES as u64 {
            break Some(format!("incomplete record header ({remaining} bytes)"));
        }
        let mut header = [0u8; HEADER_BYTES];
        reader.read_exact(&mut header).ctx(|| format!("reading {}", path.display()))?;
        let len_bytes: [u8; 4] = [header[0], header[1], header[2], header[3]];
        let len = u32::from_le_bytes(len_bytes) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len == 0 || len > MAX_RECORD_BYTES {
            break Some(format!("invalid record length {len}"));
        }
        if (len as u64) > remaining - HEADER_BYTES as u64 {
            break Some(format!("record of {len} bytes runs past the end of the segment"));
        }
        payload.resize(len, 0);
        reader.read_exact(&mut payload).ctx(|| format!("reading {}", path.display()))?;
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&len_bytes);
        hasher.update(&payload);
        if hasher.finalize() != crc {
            break Some("checksum mismatch".to_owned());
        }
        on_record(&payload)?;
        replay.records += 1;
        replay.valid_bytes += frame_len(len) as u64;
    };
    if let Some(reason) = &torn {
        warn!(
            segment = %path.display(),
            offset = replay.valid_bytes,
            dropped_bytes = file_len - replay.valid_bytes,
            reason = %reason,
            "wal segment has a torn or corrupt tail; truncating it"
        );
        let file = OpenOptions::new().write(true).open(path).ctx(|| format!("opening {}", path.display()))?;
        file.set_len(replay.valid_bytes).ctx(|| format!("truncating {}", path.display()))?;
        file.sync_all().ctx(|| format!("syncing {}", path.display()))?;
    }
    replay.torn = torn;
    Ok(replay)
}

/// Reads every record of a segment held whole in memory (a WAL object in the
/// object store, written by one request, so never torn): calls `on_record`
/// with each payload in order and returns how many there were. Any framing
/// or checksum error is corruption, returned as its reason.
pub(crate) fn parse_frames(
    bytes: &[u8],
    mut on_record: impl FnMut(&[u8]) -> Result<(), StorageError>,
) -> Result<Result<u64, String>, StorageError> {
    let mut rest = bytes;
    let mut records = 0;
    while !rest.is_empty() {
        let Some((header, after)) = rest.split_first_chunk::<HEADER_BYTES>() else {
            return Ok(Err(format!("incomplete record header ({} bytes)", rest.len())));
        };
        let len_bytes = [header[0], header[1], header[2], header[3]];
        let len = u32::from_le_bytes(len_bytes) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len == 0 || len > after.len() {
            return Ok(Err(format!("invalid record length {len} with {} bytes left", after.len())));
        }
        let (payload, next) = after.split_at(len);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&len_bytes);
        hasher.update(payload);
        if hasher.finalize() != crc {
            return Ok(Err("checksum mismatch".to_owned()));
        }
        on_record(payload)?;
        records += 1;
        rest = next;
    }
    Ok(Ok(records))
}

/// The segment the writer appends to.
#[derive(Debug)]
pub(crate) struct Segment {
    pub path: PathBuf,
    file: File,
    /// Bytes durably written so far.
    pub len: u64,
}

impl Segment {
    /// Creates a new, empty segment and makes its directory entry durable.
    pub fn create(dir: &Path, seq: u64) -> std::io::Result<Self> {
        let path = dir.join(segment_file_name(seq));
        let file = OpenOptions::new().write(true).create_new(true).open(&path)?;
        fsync_dir(dir)?;
        Ok(Self { path, file, len: 0 })
    }

    /// Appends `bytes` and waits until they are on disk.
    pub fn append_durably(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.file.write_all(bytes)?;
        self.file.sync_data()?;
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Cuts off whatever a failed append left after the last good record.
    pub fn truncate_to_len(&mut self) -> std::io::Result<()> {
        self.file.set_len(self.len)?;
        self.file.seek(SeekFrom::Start(self.len))?;
        self.file.sync_all()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_records(path: &Path, payloads: &[&[u8]]) {
        let mut bytes = Vec::new();
        for p in payloads {
            encode_frame(p, &mut bytes);
        }
        std::fs::write(path, bytes).expect("write segment");
    }

    fn replay_all(path: &Path) -> (Vec<Vec<u8>>, SegmentReplay) {
        let mut seen = Vec::new();
        let replay = replay_segment(path, |p| {
            seen.push(p.to_vec());
            Ok(())
        })
        .expect("replays");
        (seen, replay)
    }

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_file_name(42), "00000000000000000042.wal");
        assert_eq!(parse_segment_file_name("00000000000000000042.wal"), Some(42));
        assert_eq!(parse_segment_file_name("42.wal"), None);
        assert_eq!(parse_segment_file_name("00000000000000000042.wal.tmp"), None);
        assert_eq!(parse_segment_file_name("0000000000000000004x.wal"), None);
    }

    #[test]
    fn append_and_replay() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut segment = Segment::create(dir.path(), 7).expect("create");
        let mut bytes = Vec::new();
        encode_frame(b"first", &mut bytes);
        encode_frame(b"second record", &mut bytes);
        segment.append_durably(&bytes).expect("append");
        let mut more = Vec::new();
        encode_frame(b"third", &mut more);
        segment.append_durably(&more).expect("append");
        assert_eq!(segment.len, (bytes.len() + more.len()) as u64);
        assert_eq!(list_segments(dir.path()).expect("lists"), vec![(7, segment.path.clone())]);

        let (seen, replay) = replay_all(&segment.path);
        assert_eq!(seen, vec![b"first".to_vec(), b"second record".to_vec(), b"third".to_vec()]);
        assert_eq!(replay, SegmentReplay { records: 3, valid_bytes: segment.len, torn: None });
    }

    #[test]
    fn torn_tail_is_truncated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(segment_file_name(1));
        write_records(&path, &[b"complete", b"torn away"]);
        let full = std::fs::metadata(&path).expect("stat").len();
        // A crash in the middle of the second record's payload.
        let keep = full - 3;
        OpenOptions::new().write(true).open(&path).expect("open").set_len(keep).expect("truncate");

        let (seen, replay) = replay_all(&path);
        assert_eq!(seen, vec![b"complete".to_vec()]);
        assert_eq!(replay.records, 1);
        assert!(replay.torn.as_deref().expect("torn").contains("runs past the end"), "{replay:?}");
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), frame_len(8) as u64);

        // A partial header is torn too.
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.extend_from_slice(&[1, 2, 3]);
        std::fs::write(&path, &bytes).expect("write");
        let (seen, replay) = replay_all(&path);
        assert_eq!(seen.len(), 1);
        assert!(replay.torn.as_deref().expect("torn").contains("header"));
        // After truncation, replay is clean.
        let (_, replay) = replay_all(&path);
        assert_eq!(replay.torn, None);
    }

    #[test]
    fn crc_mismatch_is_detected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(segment_file_name(1));
        write_records(&path, &[b"good", b"flipped", b"after"]);
        let mut bytes = std::fs::read(&path).expect("read");
        let second_payload = frame_len(4) + HEADER_BYTES;
        bytes[second_payload + 2] ^= 0x40;
        std::fs::write(&path, &bytes).expect("write");

        let (seen, replay) = replay_all(&path);
        assert_eq!(seen, vec![b"good".to_vec()]);
        assert_eq!(replay.torn.as_deref(), Some("checksum mismatch"));
        assert_eq!(replay.valid_bytes, frame_len(4) as u64);
        assert_eq!(std::fs::metadata(&path).expect("stat").len(), frame_len(4) as u64);
    }

    #[test]
    fn frames_in_memory_parse_like_a_segment() {
        let mut bytes = Vec::new();
        encode_frame(b"one", &mut bytes);
        encode_frame(b"two", &mut bytes);
        let mut seen = Vec::new();
        let parsed = parse_frames(&bytes, |p| {
            seen.push(p.to_vec());
            Ok(())
        })
        .expect("no callback error");
        assert_eq!(parsed, Ok(2));
        assert_eq!(seen, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(parse_frames(&[], |_| Ok(())).expect("ok"), Ok(0));

        let mut flipped = bytes.clone();
        flipped[HEADER_BYTES] ^= 1;
        assert_eq!(parse_frames(&flipped, |_| Ok(())).expect("ok"), Err("checksum mismatch".to_owned()));
        let short = &bytes[..bytes.len() - 1];
        assert!(parse_frames(short, |_| Ok(())).expect("ok").expect_err("torn").contains("invalid record length"));
    }

    #[test]
    fn zeroed_tail_is_corruption_not_a_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(segment_file_name(1));
        write_records(&path, &[b"good"]);
        let mut bytes = std::fs::read(&path).expect("read");
        bytes.extend_from_slice(&[0u8; 64]);
        std::fs::write(&path, &bytes).expect("write");
        let (seen, replay) = replay_all(&path);
        assert_eq!(seen.len(), 1);
        assert!(replay.torn.as_deref().expect("torn").contains("invalid record length 0"));
    }
}
