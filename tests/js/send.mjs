// Exports a trace and metrics to Skein with the real OpenTelemetry
// JavaScript SDK for Node.js, in one OTLP encoding, and prints what it
// recorded as JSON so the integration test (tests/integration/js_sdk.rs)
// can compare it with what Skein stored. Exits non-zero if any export
// failed: the exporters' results are checked, not just logged.
//
// Usage: node send.mjs --endpoint http://127.0.0.1:4318 --protocol http/json|http/protobuf|grpc --service NAME
import { parseArgs } from 'node:util';
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';
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

const { values: args } = parseArgs({
  options: { endpoint: { type: 'string' }, protocol: { type: 'string' }, service: { type: 'string' } },
});
const { endpoint, protocol, service } = args;

function exporters() {
  switch (protocol) {
    case 'http/json':
      return [new HttpJsonTraces({ url: `${endpoint}/v1/traces` }), new HttpJsonMetrics({ url: `${endpoint}/v1/metrics` })];
    case 'http/protobuf':
      return [new HttpProtoTraces({ url: `${endpoint}/v1/traces` }), new HttpProtoMetrics({ url: `${endpoint}/v1/metrics` })];
    case 'grpc':
      return [new GrpcTraces({ url: endpoint }), new GrpcMetrics({ url: endpoint })];
    default:
      throw new Error(`unknown protocol ${protocol}`);
  }
}

/** Wraps `exporter.export` to keep every result: failures must fail the run. */
function recording(exporter, results) {
  const inner = exporter.export.bind(exporter);
  exporter.export = (items, done) =>
    inner(items, (result) => {
      results.push(result);
      done(result);
    });
  return exporter;
}

const results = [];
const [traceExporter, metricExporter] = exporters().map((e) => recording(e, results));
const resource = resourceFromAttributes({ 'service.name': service, 'deployment.environment': 'test' });

const tracerProvider = new NodeTracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor(traceExporter)] });
const tracer = tracerProvider.getTracer('skein-js-test', '1.2.3');
const recorded = [];
const root = tracer.startSpan('GET /checkout', {
  kind: SpanKind.SERVER,
  attributes: { 'http.route': '/checkout', 'http.response.status_code': 200, 'js.sampled': true, 'js.ratio': 0.25 },
});
const inRoot = trace.setSpan(context.active(), root);
const child = tracer.startSpan('charge card', { kind: SpanKind.CLIENT, attributes: { 'payment.provider': 'stripe' } }, inRoot);
child.addEvent('retry', { attempt: 2 });
child.setStatus({ code: SpanStatusCode.ERROR, message: 'card declined' });
child.end();
root.setStatus({ code: SpanStatusCode.OK });
root.end();
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
if (results.length < 2 || failed.length > 0) {
  console.error(`exports failed (${results.length} results):`, failed.map((r) => String(r.error)));
  process.exit(1);
}
console.log(JSON.stringify({ spans: recorded }));
