"""Exports GenAI spans to vigil with the real OpenTelemetry Python SDK and its OTLP/HTTP
exporter (protobuf, the SDK's default for HTTP), for tests/integration/otel_sdk.rs.

    python otel_export.py http://127.0.0.1:PORT/v1/traces TOKEN

Sends one batch of three spans: a model call with usage, a rate-limited model call, and an
HTTP span that is not a GenAI span. Exits 0 only when the exporter reports success; prints
`exported N spans` on the last line.
"""

import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode


class Collecting(SpanExporter):
    """Keeps the finished spans, so that they go out in one export whose result is checked."""

    def __init__(self):
        self.spans = []

    def export(self, spans):
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass


def main():
    endpoint, token = sys.argv[1], sys.argv[2]
    collected = Collecting()
    provider = TracerProvider(resource=Resource.create({"service.name": "otel-sdk-test"}))
    provider.add_span_processor(SimpleSpanProcessor(collected))
    tracer = provider.get_tracer("vigil.otel_sdk_test", "1.0")

    with tracer.start_as_current_span("chat gpt-4o", kind=SpanKind.CLIENT) as span:
        span.set_attribute("gen_ai.system", "openai")
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.request.model", "gpt-4o")
        span.set_attribute("gen_ai.response.model", "gpt-4o-2024-08-06")
        span.set_attribute("gen_ai.usage.input_tokens", 812)
        span.set_attribute("gen_ai.usage.output_tokens", 64)
        span.set_attribute("gen_ai.response.finish_reasons", ["stop"])
        span.set_attribute("server.address", "api.openai.com")
    with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT) as span:
        span.set_attribute("gen_ai.system", "openai")
        span.set_attribute("gen_ai.request.model", "gpt-4o-mini")
        span.set_attribute("error.type", "429")
        span.set_attribute("server.address", "api.openai.com")
        span.set_status(Status(StatusCode.ERROR, "rate limited"))
    with tracer.start_as_current_span("GET /health", kind=SpanKind.SERVER) as span:
        span.set_attribute("http.request.method", "GET")
    provider.shutdown()

    # The exporter's defaults otherwise: protobuf, and no compression.
    exporter = OTLPSpanExporter(
        endpoint=endpoint,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    result = exporter.export(collected.spans)
    exporter.shutdown()
    if result is not SpanExportResult.SUCCESS:
        print(f"the export failed: {result}", file=sys.stderr)
        sys.exit(1)
    print(f"exported {len(collected.spans)} spans")


if __name__ == "__main__":
    main()
