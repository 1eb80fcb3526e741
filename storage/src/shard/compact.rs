//! Committing a compaction of one signal of a shard (the merge itself is in
//! `crate::compaction`), and deleting the files it replaced once no query
//! can still be reading them.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Shard, blocking, discard_unlisted, remove_data_files, unix_nanos};
use crate::buffer::DataFile;
use crate::compaction::Policy;
use crate::compaction::merge::{MergeJob, merge};
use crate::config::CompactionConfig;
use crate::error::StorageError;
use crate::manifest::FileMeta;

/// Files a compaction replaced, deleted once `due`.
#[derive(Debug)]
pub(crate) struct Retired {
    due: Instant,
    files: Vec<FileMeta>,
}

/// What one compaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Compacted {
    pub inputs: usize,
    pub outputs: usize,
    pub rows: u64,
}

impl Shard {
    /// Merges the files the policy picks next, if any (see
    /// `crate::compaction`). Returns what was merged, or `None` when there
    /// was nothing to do or the inputs changed meanwhile (retention).
    pub async fn compact(
        &self,
        config: &CompactionConfig,
        stop: &CancellationToken,
    ) -> Result<Option<Compacted>, StorageError> {
        if self.is_fenced() {
            return Ok(None);
        }
        let now = SystemTime::now();
        let inputs = Policy::new(config).pick(&self.manifest.lock().await.files, unix_nanos(now));
        let Some(inputs) = inputs else { return Ok(None) };
        let started = Instant::now();
        let job = MergeJob {
            spec: self.spec,
            signal_dir: self.dir.clone(),
            hour: inputs[0].hour,
            inputs: inputs.clone(),
            name_prefix: format!("c{:x}", unix_nanos(now)),
            target_file_bytes: config.target_file_bytes,
            memory_bytes: config.memory_bytes,
            row_group_rows: self.row_group_rows,
            keys: self.keys.clone(),
        };
        let written = merge(job, stop.clone()).await?;
        let outputs: Vec<FileMeta> = written.iter().map(|w| w.meta.clone()).collect();
        let mut files = Vec::with_capacity(written.len());
        for file in written {
            files.push(Arc::new(DataFile::new(&self.dir, file.meta, file.index)?));
        }
        #[cfg(test)]
        self.check_fail_point(super::FailPoint::CompactionWritten)?;
        if let Some(bucket) = &self.bucket
            && let Err(e) = self.upload_files(bucket, &outputs).await
        {
            self.discard(&outputs).await;
            return Err(e);
        }
        #[cfg(test)]
        self.check_fail_point(super::FailPoint::Uploaded)?;

        let mut manifest = self.manifest.lock().await;
        if self.is_fenced() || !inputs.iter().all(|f| manifest.files.contains(f)) {
            drop(manifest);
            self.discard(&outputs).await;
            return Ok(None);
        }
        let mut next = manifest.clone();
        next.generation += 1;
        next.files.retain(|f| !inputs.contains(f));
        next.files.extend(outputs.iter().cloned());
        if let Some(bucket) = &self.bucket
            && let Err(e) = bucket.commit_manifest(&next).await
        {
            if matches!(e, StorageError::ManifestConflict { .. }) && self.wal_in_bucket {
                warn!(shard = self.id, signal = %self.spec.signal, "another node took this shard over; dropping the compaction");
                self.fenced.store(true, Ordering::SeqCst);
            }
            drop(manifest);
            self.discard(&outputs).await;
            return Err(e);
        }
        let next = {
            let (dir, outputs) = (self.dir.clone(), outputs.clone());
            blocking(move || match next.store(&dir) {
                Ok(()) => Ok(next),
                Err(e) => {
                    discard_unlisted(&dir, &outputs);
                    Err(e)
                }
            })
            .await?
        };
        #[cfg(test)]
        self.check_fail_point(super::FailPoint::CompactionCommitted)?;
        let replaced: HashSet<&str> = inputs.iter().map(|f| f.path.as_str()).collect();
        self.buffer.replace_files(&replaced, files);
        *manifest = next;
        drop(manifest);

        let rows = outputs.iter().map(|f| f.rows).sum();
        // Rows the merge left out: repeated spans (see `compaction::merge`).
        let copies_dropped = inputs.iter().map(|f| f.rows).sum::<u64>().saturating_sub(rows);
        let compacted = Compacted { inputs: inputs.len(), outputs: outputs.len(), rows };
        self.metrics.copies_dropped.inc_by(copies_dropped);
        self.metrics.compactions.inc();
        self.metrics.files_compacted.inc_by(inputs.len() as u64);
        self.metrics.compaction_bytes_written.inc_by(outputs.iter().map(|f| f.size_bytes).sum());
        self.metrics.compaction_duration.observe(started.elapsed().as_secs_f64());
        info!(
            shard = self.id,
            signal = %self.spec.signal,
            hour = inputs[0].hour,
            inputs = compacted.inputs,
            outputs = compacted.outputs,
            rows,
            copies_dropped,
            input_bytes = inputs.iter().map(|f| f.size_bytes).sum::<u64>(),
            output_bytes = outputs.iter().map(|f| f.size_bytes).sum::<u64>(),
            millis = started.elapsed().as_millis() as u64,
            "compacted files"
        );
        self.derive_sidecars(&outputs).await;
        self.retired.lock().push(Retired { due: Instant::now() + config.retired_file_grace, files: inputs });
        Ok(Some(compacted))
    }

    /// Deletes the replaced files whose grace period ended by `now` (or all
    /// of them); returns how many files went.
    pub async fn delete_retired(&self, now: Option<Instant>) -> usize {
        let due: Vec<FileMeta> = {
            let mut retired = self.retired.lock();
            let (due, kept): (Vec<_>, Vec<_>) =
                std::mem::take(&mut *retired).into_iter().partition(|r| now.is_none_or(|now| r.due <= now));
            *retired = kept;
            due.into_iter().flat_map(|r| r.files).collect()
        };
        if due.is_empty() {
            return 0;
        }
        self.discard(&due).await;
        due.len()
    }

    /// Deletes files no manifest lists (any more): locally and in the bucket.
    async fn discard(&self, files: &[FileMeta]) {
        if let Some(bucket) = &self.bucket {
            bucket.delete(&self.object_names(files)).await;
        }
        let (dir, files) = (self.dir.clone(), files.to_vec());
        if let Err(e) = blocking(move || {
            remove_data_files(&dir, &files);
            Ok(())
        })
        .await
        {
            warn!(shard = self.id, signal = %self.spec.signal, error = %e, "could not delete unlisted files");
        }
    }
}
