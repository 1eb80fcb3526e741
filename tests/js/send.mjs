// Exports a trace, metrics and logs to Skein with the real OpenTelemetry
// JavaScript SDK for Node.js, in one OTLP encoding, and prints what it
// recorded as JSON so the integration test (tests/integration/js_sdk.rs)
// can compare it with what Skein stored. Exits non-zero if any export
// failed: the exporters' results are checked, not just logged.
//
// Logs go through the SDK's LoggerProvider and BatchLogRecordProcessor:
// three records inside the trace's spans (INFO and WARN in the root, an
// ERROR with an exception in the child), and an event outside any span with
// a structured body. For the logs the script prints every record the
// exporter sent, as the SDK had it (body and attributes as plain JSON, bytes
// in base64), and every successful export batch encoded as an OTLP protobuf
// ExportLogsServiceRequest by the SDK's own serializer (hex), whatever the
// encoding the exporter used.
//
// Usage: node send.mjs --endpoint http://127.0.0.1:4318 --protocol http/json|http/protobuf|grpc --service NAME
import { parseArgs } from 'node:util';
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { OTLPTraceExporter as HttpJsonTraces } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as HttpProtoTraces } from '@opentelemetry/exporter-trace-otlp-proto';
import { OTLPTraceExporter as GrpcTraces } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPMetricExporter as HttpJsonMetrics } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as HttpProtoMetrics } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPMetricExporter as GrpcMetrics } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { LoggerProvider, BatchLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { OTLPLogExporter as HttpJsonLogs } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as HttpProtoLogs } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPLogExporter as GrpcLogs } from '@opentelemetry/exporter-logs-otlp-grpc';
import { ProtobufLogsSerializer } from '@opentelemetry/otlp-transformer';

const { values: args } = parseArgs({
  options: { endpoint: { type: 'string' }, protocol: { type: 'string' }, service: { type: 'string' } },
});
const { endpoint, protocol, service } = args;

function exporters() {
  switch (protocol) {
    case 'http/json':
      return [
        new HttpJsonTraces({ url: `${endpoint}/v1/traces` }),
        new HttpJsonMetrics({ url: `${endpoint}/v1/metrics` }),
        new HttpJsonLogs({ url: `${endpoint}/v1/logs` }),
      ];
    case 'http/protobuf':
      return [
        new HttpProtoTraces({ url: `${endpoint}/v1/traces` }),
        new HttpProtoMetrics({ url: `${endpoint}/v1/metrics` }),
        new HttpProtoLogs({ url: `${endpoint}/v1/logs` }),
      ];
    case 'grpc':
      return [new GrpcTraces({ url: endpoint }), new GrpcMetrics({ url: endpoint }), new GrpcLogs({ url: endpoint })];
    default:
      throw new Error(`unknown protocol ${protocol}`);
  }
}

/**
 * Wraps `exporter.export` to keep every result: failures must fail the run.
 * `exported` is called with the items of every successful export.
 */
function recording(exporter, results, exported = () => {}) {
  const inner = exporter.export.bind(exporter);
  exporter.export = (items, done) =>
    inner(items, (result) => {
      results.push(result);
      if (result.code === 0) exported(items);
      done(result);
    });
  return exporter;
}

/** An SDK value as plain JSON: bytes (Uint8Array) in base64, as OTLP/JSON has them. */
function plain(value) {
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}
const nanos = ([seconds, ns]) => (BigInt(seconds) * 1_000_000_000n + BigInt(ns)).toString();

const results = [];
const logRequests = [];
const logRecords = [];
/** Keeps what a logs export sent: the SDK's records, and their protobuf encoding. */
function keepLogs(records) {
  logRequests.push(Buffer.from(ProtobufLogsSerializer.serializeRequest(records)).toString('hex'));
  for (const r of records) {
    logRecords.push({
      timeUnixNano: nanos(r.hrTime),
      observedTimeUnixNano: nanos(r.hrTimeObserved),
      severityNumber: r.severityNumber ?? 0,
      severityText: r.severityText ?? '',
      body: plain(r.body) ?? null,
      eventName: r.eventName ?? '',
      attributes: plain(r.attributes),
      traceId: r.spanContext?.traceId ?? null,
      spanId: r.spanContext?.spanId ?? null,
      flags: r.spanContext?.traceFlags ?? 0,
      scope: { name: r.instrumentationScope.name, version: r.instrumentationScope.version ?? '' },
    });
  }
}
const [traceExporter, metricExporter, logExporter] = exporters();
recording(traceExporter, results);
recording(metricExporter, results);
recording(logExporter, results, keepLogs);
const resource = resourceFromAttributes({ 'service.name': service, 'deployment.environment': 'test' });

const tracerProvider = new NodeTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(traceExporter)] });
// Registering installs the AsyncLocalStorage context manager, so that
// `context.with` makes a span active for the log records emitted inside it.
tracerProvider.register();
const loggerProvider = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter: logExporter })] });
const logger = loggerProvider.getLogger('skein-js-logs', '0.4.0');
const tracer = tracerProvider.getTracer('skein-js-test', '1.2.3');
const recorded = [];
const root = tracer.startSpan('GET /checkout', {
  kind: SpanKind.SERVER,
  attributes: { 'http.route': '/checkout', 'http.response.status_code': 200, 'js.sampled': true, 'js.ratio': 0.25 },
});
const inRoot = trace.setSpan(context.active(), root);
const child = tracer.startSpan('charge card', { kind: SpanKind.CLIENT, attributes: { 'payment.provider': 'stripe' } }, inRoot);
context.with(inRoot, () => {
  logger.emit({
    severityNumber: SeverityNumber.INFO,
    severityText: 'INFO',
    body: 'checkout started',
    attributes: { 'user.id': 'u-17', 'cart.items': 3, 'cart.total': 42.5, 'user.vip': true, 'cart.skus': ['A-1', 'B-2'] },
  });
  context.with(trace.setSpan(context.active(), child), () => {
    logger.emit({
      severityNumber: SeverityNumber.ERROR,
      severityText: 'ERROR',
      body: 'card declined',
      attributes: { 'payment.attempt': 2 },
      exception: new TypeError('card declined by issuer'),
    });
  });
  logger.emit({
    severityNumber: SeverityNumber.WARN,
    severityText: 'WARN',
    body: 'checkout answered 200 after a declined card',
    attributes: { 'retry.count': 1, 'latency.ratio': 0.75 },
  });
});
child.addEvent('retry', { attempt: 2 });
child.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined' });
child.end();
root.setStatus({ code: SpanStatusCode.OK });
root.end();
// Outside any span: an event with a structured body.
logger.emit({
  severityNumber: SeverityNumber.INFO,
  severityText: 'INFO',
  eventName: 'cart.viewed',
  body: {
    event: 'cart.viewed',
    items: [1, 2.5, true, 'x'],
    user: { id: 'u-1', vip: false },
    checksum: new Uint8Array([0, 1, 254, 255]),
  },
  attributes: { channel: 'web', 'cart.size': 2 },
});
for (const span of [root, child]) {
  const ctx = span.spanContext();
  recorded.push({
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: span.parentSpanContext?.spanId ?? null,
    name: span.name,
    kind: ['internal', 'server', 'client', 'producer', 'consumer'][span.kind],
    attributes: span.attributes,
    events: span.events.map((e) => ({ name: e.name, attributes: e.attributes })),
    status: { code: ['unset', 'ok', 'error'][span.status.code], message: span.status.message ?? '' },
  });
}
await tracerProvider.shutdown();
// Shutdown exports what the batch processor holds and waits for the export.
await loggerProvider.shutdown();

const meterProvider = new MeterProvider({
  resource,
  // Exported once, at shutdown; the interval only has to outlast the run.
  readers: [new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 })],
});
const meter = meterProvider.getMeter('skein-js-test', '1.2.3');
const requests = meter.createCounter('js.requests', { description: 'requests served', unit: '{request}' });
requests.add(3, { route: '/a' });
requests.add(2, { route: '/b' });
const latency = meter.createHistogram('js.latency', { unit: 'ms' });
for (const value of [5, 15, 25]) latency.record(value, { route: '/a' });
meter.createGauge('js.temperature', { unit: 'Cel' }).record(21.5);
// Shutdown collects and exports once (a flush before it would export the
// cumulative points a second time, with a later timestamp).
await meterProvider.shutdown();

const failed = results.filter((r) => r.code !== 0);
if (results.length < 3 || failed.length > 0 || logRecords.length !== 4) {
  console.error(
    `exports failed (${results.length} results, ${logRecords.length} log records):`,
    failed.map((r) => String(r.error)),
  );
  process.exit(1);
}
console.log(
  JSON.stringify({
    spans: recorded,
    logs: {
      requests: logRequests,
      records: logRecords,
      rootSpanId: root.spanContext().spanId,
      childSpanId: child.spanContext().spanId,
    },
  }),
);
