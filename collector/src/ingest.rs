//! The path every export request takes once decoded, whatever its signal
//! and transport: admission (the shared concurrency limit), conversion to
//! Arrow, the split by shard, concurrent durable writes, and the OTLP
//! response.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use skein_model::{ConvertLimits, ErrorClass, TenantWriters, WriteReceipt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, warn};

use crate::CollectorError;
use crate::metrics::{CollectorMetrics, Transport};
use crate::signal::{Converted, PartialSuccess, Payload, Signal, SignalKind};
use crate::tenant_limits::{TenantIngestLimits, TenantLimiter};

pub(crate) struct Ingest {
    writers: Arc<dyn TenantWriters>,
    limits: ConvertLimits,
    permits: Arc<Semaphore>,
    max_concurrent: usize,
    /// Conversions running at once: one per core. More would not finish
    /// sooner, and each would hold its decoded rows (and a blocking thread
    /// with its allocator cache) meanwhile; under overload that was GiBs.
    conversions: Semaphore,
    metrics: CollectorMetrics,
    failure_log: LogThrottle,
    tenant_limits: TenantLimiter,
}

impl Ingest {
    pub(crate) fn new(
        writers: Arc<dyn TenantWriters>,
        limits: ConvertLimits,
        max_concurrent: usize,
        metrics: CollectorMetrics,
        tenant_limits: TenantIngestLimits,
    ) -> Self {
        Self {
            writers,
            limits,
            permits: Arc::new(Semaphore::new(max_concurrent)),
            max_concurrent,
            conversions: Semaphore::new(std::thread::available_parallelism().map_or(1, |n| n.get())),
            metrics,
            failure_log: LogThrottle::new(Duration::from_secs(10)),
            tenant_limits: TenantLimiter::new(tenant_limits),
        }
    }

    /// Charges a request's bytes (as received) to its tenant's rate limit.
    pub(crate) fn admit_bytes(&self, tenant: &str, bytes: usize) -> Result<(), CollectorError> {
        self.tenant_limits.admit_bytes(tenant, bytes)
    }

    pub(crate) fn metrics(&self) -> &CollectorMetrics {
        &self.metrics
    }

    /// Admits one request or refuses at once; nothing ever queues here.
    pub(crate) fn try_acquire(&self) -> Result<OwnedSemaphorePermit, CollectorError> {
        Arc::clone(&self.permits)
            .try_acquire_owned()
            .map_err(|_| CollectorError::Overloaded { limit: self.max_concurrent })
    }

    /// Converts, writes every shard's part and answers once all are durable.
    pub(crate) async fn export<S: Signal>(
        &self,
        transport: Transport,
        tenant: &str,
        request: Payload<S::Request>,
    ) -> Result<S::Response, CollectorError> {
        let limits = self.limits;
        let writer = self.writers.writer(tenant).await?;
        let shard_count = writer.shard_count();
        // Decoding and conversion are CPU-bound (and proportional to the
        // request size), so they run off the async workers, a core's worth
        // at a time; admitted requests wait here holding only their bytes.
        let slot = self
            .conversions
            .acquire()
            .await
            .map_err(|e| CollectorError::Internal(format!("conversion slots closed: {e}")))?;
        let converted = tokio::task::spawn_blocking(move || match request {
            Payload::Protobuf(body) => S::convert_protobuf(&body, &limits, shard_count),
            Payload::Decoded(request) => Ok(S::convert(&request, &limits, shard_count)?),
        })
        .await
        .map_err(|e| CollectorError::Internal(format!("{} conversion task failed: {e}", S::KIND.as_str())))??;
        drop(slot);
        let Converted { parts, accepted, rejected, truncated, first_error } = converted;
        // Refused before anything is written: the client retries it whole.
        self.tenant_limits.admit_items(tenant, accepted)?;

        // All parts are written to completion, even when one fails early, so
        // no write is cancelled halfway; the first failure is reported.
        let writes = parts.into_iter().map(|(shard, batch)| S::write(writer.as_ref(), shard, batch));
        let mut stored = WriteReceipt::STORED;
        for result in futures::future::join_all(writes).await {
            stored.merge(result?);
        }
        // Items storage left out under a tenant limit (a trace over its size
        // limit) are rejected like invalid ones: the client must not retry.
        let accepted = accepted.saturating_sub(stored.refused_rows);
        let rejected = rejected + stored.refused_rows;
        let first_error = first_error.or(stored.refusal);

        self.metrics.record_success(S::KIND, transport, accepted, rejected, truncated);
        if rejected > 0 {
            debug!(
                signal = S::KIND.as_str(),
                transport = transport.as_str(),
                accepted,
                rejected,
                "rejected invalid items"
            );
        }
        let message =
            partial_success_message(S::KIND, rejected, truncated, first_error, self.limits.max_attribute_value_bytes);
        Ok(S::response(message.map(|message| PartialSuccess { rejected, message })))
    }

    /// Counts and logs a failed request. Bad requests are the client's
    /// problem and logged at debug; storage and internal failures are logged
    /// at warn, at most once per interval so an outage cannot flood the log.
    pub(crate) fn failed(&self, signal: SignalKind, transport: Transport, error: &CollectorError) {
        self.metrics.record_failure(signal, transport, error);
        let class = error.class();
        let server_side = matches!(class, ErrorClass::Internal | ErrorClass::Unavailable { .. })
            || matches!(error, CollectorError::Write(_));
        if !server_side {
            debug!(
                signal = signal.as_str(),
                transport = transport.as_str(),
                class = class.name(),
                error = %error,
                "refused export request"
            );
        } else if let Some(suppressed) = self.failure_log.allow() {
            warn!(
                signal = signal.as_str(),
                transport = transport.as_str(),
                class = class.name(),
                error = %error,
                suppressed,
                "export request failed"
            );
        }
    }
}

/// The `partial_success.error_message`: why items were rejected and/or a
/// warning that values were truncated; `None` for a clean request.
fn partial_success_message(
    signal: SignalKind,
    rejected: u64,
    truncated: u64,
    first_error: Option<String>,
    max_value_bytes: usize,
) -> Option<String> {
    let truncation = (truncated > 0)
        .then(|| format!("{truncated} attribute value(s) longer than {max_value_bytes} bytes were truncated"));
    if rejected == 0 {
        return truncation.or(first_error);
    }
    let item = signal.item();
    let reason = first_error.unwrap_or_else(|| format!("invalid {item}"));
    let mut message = format!("{rejected} {item}(s) rejected; first: {reason}");
    if let Some(truncation) = truncation {
        message.push_str("; ");
        message.push_str(&truncation);
    }
    Some(message)
}

/// Lets one log line through per interval and counts the rest.
struct LogThrottle {
    origin: Instant,
    interval_ms: u64,
    next_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl LogThrottle {
    fn new(interval: Duration) -> Self {
        Self {
            origin: Instant::now(),
            interval_ms: interval.as_millis() as u64,
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(lines suppressed since the last one)` when a line may be logged now.
    fn allow(&self) -> Option<u64> {
        let now = self.origin.elapsed().as_millis() as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self.next_ms.compare_exchange(next, now + self.interval_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::registry::Registry;
    use skein_model::{records_from_batch, shard_for_trace};

    use super::*;
    use crate::metric_fixtures::{all_types_request, assert_stored_exactly, gauge, gauge_point, metrics_request};
    use crate::signal::{Metrics, Traces};
    use crate::test_support::{Failure, TestWriter, request, span, spans_request};
    use skein_model::security::DEFAULT_TENANT;

    fn protobuf<R: prost::Message>(request: &R) -> Payload<R> {
        Payload::Protobuf(request.encode_to_vec().into())
    }

    fn ingest(writer: Arc<TestWriter>, max_concurrent: usize) -> Ingest {
        let metrics = CollectorMetrics::register(&mut Registry::default());
        Ingest::new(
            Arc::new(skein_model::SingleTenantWriter(writer)),
            ConvertLimits { max_attribute_value_bytes: 16 },
            max_concurrent,
            metrics,
            Default::default(),
        )
    }

    #[tokio::test]
    async fn writes_each_shard_part_and_acknowledges() {
        let writer = TestWriter::new(4);
        let ingest = ingest(writer.clone(), 8);
        let request = spans_request(40);
        let response = ingest
            .export::<Traces>(Transport::Http, DEFAULT_TENANT, Payload::Decoded(request))
            .await
            .expect("export succeeds");
        assert_eq!(response.partial_success, None);
        let written = writer.batches();
        assert!(written.len() > 1, "40 traces should land on several of 4 shards");
        let mut total = 0;
        for (shard, batch) in &written {
            let records = records_from_batch(batch).expect("readable batch");
            for record in &records {
                assert_eq!(shard_for_trace(&record.span.trace_id, 4), *shard, "span routed to its trace's shard");
            }
            total += records.len();
        }
        assert_eq!(total, 40);
    }

    #[tokio::test]
    async fn reports_rejected_and_truncated_spans() {
        let writer = TestWriter::new(2);
        let ingest = ingest(writer.clone(), 8);
        let mut bad = span(1, 1);
        bad.trace_id = vec![0; 16];
        let mut long = span(2, 2);
        long.attributes.push(crate::test_support::string_attr("big", &"x".repeat(100)));
        let response = ingest
            .export::<Traces>(Transport::Grpc, DEFAULT_TENANT, protobuf(&request(vec![bad, long, span(3, 3)])))
            .await
            .expect("export");
        let partial = response.partial_success.expect("partial success is set");
        assert_eq!(partial.rejected_spans, 1);
        assert!(partial.error_message.contains("1 span(s) rejected"), "{}", partial.error_message);
        assert!(partial.error_message.contains("trace_id"), "{}", partial.error_message);
        assert!(
            partial.error_message.contains("1 attribute value(s) longer than 16 bytes"),
            "{}",
            partial.error_message
        );
        assert_eq!(writer.span_count(), 2);
    }

    #[tokio::test]
    async fn all_rejected_is_still_an_answer_without_writes() {
        let writer = TestWriter::new(2);
        let ingest = ingest(writer.clone(), 8);
        let mut bad = span(1, 1);
        bad.span_id = vec![];
        let partial = ingest
            .export::<Traces>(Transport::Http, DEFAULT_TENANT, Payload::Decoded(request(vec![bad])))
            .await
            .expect("export")
            .partial_success
            .expect("partial success");
        assert_eq!(partial.rejected_spans, 1);
        assert!(partial.error_message.contains("span_id"), "{}", partial.error_message);
        assert_eq!(writer.write_calls(), 0);
    }

    #[tokio::test]
    async fn any_failed_part_fails_the_request() {
        let writer = TestWriter::new(4);
        let ingest = ingest(writer.clone(), 8);
        writer.fail_with(Some(Failure::Unavailable));
        let err = ingest
            .export::<Traces>(Transport::Http, DEFAULT_TENANT, protobuf(&spans_request(20)))
            .await
            .expect_err("write fails");
        assert!(matches!(err.class(), ErrorClass::Unavailable { .. }), "{err}");
        writer.fail_with(None);
        ingest
            .export::<Traces>(Transport::Http, DEFAULT_TENANT, protobuf(&spans_request(20)))
            .await
            .expect("export after recovery");
    }

    #[tokio::test]
    async fn metrics_are_written_as_metrics_on_their_series_shards() {
        let writer = TestWriter::new(4);
        let ingest = ingest(writer.clone(), 8);
        let sent = all_types_request();
        let response =
            ingest.export::<Metrics>(Transport::Grpc, DEFAULT_TENANT, protobuf(&sent)).await.expect("export succeeds");
        assert_eq!(response.partial_success, None);
        assert_stored_exactly(&writer, &sent);
        assert!(writer.batches().is_empty(), "points never go through write_spans");
    }

    #[tokio::test]
    async fn reports_rejected_points_and_fails_with_any_part() {
        let writer = TestWriter::new(3);
        let ingest = ingest(writer.clone(), 8);
        let mut no_time = gauge_point(1, 1, 1.0);
        no_time.time_unix_nano = 0;
        let request = metrics_request(vec![gauge("cpu", vec![no_time, gauge_point(2, 2, 2.0)])]);
        let partial = ingest
            .export::<Metrics>(Transport::Http, DEFAULT_TENANT, Payload::Decoded(request))
            .await
            .expect("export")
            .partial_success
            .expect("partial success");
        assert_eq!(partial.rejected_data_points, 1);
        assert!(partial.error_message.starts_with("1 data point(s) rejected; first: "), "{}", partial.error_message);
        assert_eq!(writer.point_count(), 1);

        writer.fail_with(Some(Failure::Overloaded));
        let err = ingest
            .export::<Metrics>(Transport::Http, DEFAULT_TENANT, protobuf(&all_types_request()))
            .await
            .expect_err("write fails");
        assert!(matches!(err.class(), ErrorClass::Overloaded { .. }), "{err}");
        assert_eq!(writer.point_count(), 1);
    }

    #[test]
    fn concurrency_limit_refuses_at_once() {
        let ingest = ingest(TestWriter::new(1), 2);
        let first = ingest.try_acquire().expect("first permit");
        let _second = ingest.try_acquire().expect("second permit");
        let err = ingest.try_acquire().expect_err("third is over the limit");
        assert!(matches!(err, CollectorError::Overloaded { limit: 2 }), "{err}");
        drop(first);
        let _third = ingest.try_acquire().expect("a permit frees up");
    }

    #[test]
    fn throttle_lets_the_first_line_through_then_counts() {
        let throttle = LogThrottle::new(Duration::from_secs(3600));
        assert_eq!(throttle.allow(), Some(0));
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.allow(), None);
        assert_eq!(throttle.suppressed.load(Ordering::Relaxed), 2);
        let always = LogThrottle::new(Duration::ZERO);
        assert_eq!(always.allow(), Some(0));
        assert_eq!(always.allow(), Some(0));
    }

    #[test]
    fn partial_success_messages() {
        assert_eq!(partial_success_message(SignalKind::Traces, 0, 0, None, 10), None);
        assert_eq!(
            partial_success_message(SignalKind::Traces, 0, 2, Some("model text".into()), 10).as_deref(),
            Some("2 attribute value(s) longer than 10 bytes were truncated")
        );
        assert_eq!(
            partial_success_message(SignalKind::Traces, 3, 0, Some("bad id".into()), 10).as_deref(),
            Some("3 span(s) rejected; first: bad id")
        );
        assert_eq!(
            partial_success_message(SignalKind::Metrics, 2, 1, None, 10).as_deref(),
            Some(
                "2 data point(s) rejected; first: invalid data point; \
                 1 attribute value(s) longer than 10 bytes were truncated"
            )
        );
    }
}
