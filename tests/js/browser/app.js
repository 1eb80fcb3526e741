// The page's instrumentation: the OpenTelemetry web SDK exporting with
// OTLP/HTTP (JSON) to Skein on another origin, so the browser runs a CORS
// preflight first. Bundled by esbuild (tests/integration/browser_sdk.rs);
// the result is left in `window.skeinResult` for the driver (drive.mjs).
import { SpanStatusCode, context, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { WebTracerProvider } from '@opentelemetry/sdk-trace-web';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';

// Every export's outcome and the trace's IDs, kept even when flushing throws.
const results = [];
const report = { results, traceId: null, spanIds: [] };

async function run() {
  const otlp = new URLSearchParams(window.location.search).get('otlp');
  const exporter = new OTLPTraceExporter({ url: `${otlp}/v1/traces` });
  const inner = exporter.export.bind(exporter);
  exporter.export = (spans, done) =>
    inner(spans, (result) => {
      results.push({ code: result.code, error: result.error ? String(result.error) : null });
      done(result);
    });
  const provider = new WebTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'browser-shop' }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('skein-browser-test', '1.0.0');
  const root = tracer.startSpan('page load', { attributes: { 'page.path': window.location.pathname } });
  const click = tracer.startSpan('click buy', { attributes: { 'ui.button': 'buy' } }, trace.setSpan(context.active(), root));
  click.setStatus({ code: SpanStatusCode.OK });
  click.end();
  root.end();
  report.traceId = root.spanContext().traceId;
  report.spanIds = [root.spanContext().spanId, click.spanContext().spanId];
  await provider.forceFlush();
  await provider.shutdown();
  return report;
}

run().then(
  (result) => {
    window.skeinResult = result;
  },
  (error) => {
    window.skeinResult = { ...report, error: String(error) };
  },
);
