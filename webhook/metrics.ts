/**
 * Prometheus metrics of the webhook, in a registry of its own (several servers can live in one
 * process, e.g. in tests). The latency histogram uses every bucket boundary of the API server's
 * apiserver_admission_webhook_admission_duration_seconds (0.005 … 25 s), so objectives can be
 * set on the same boundaries on both sides, plus finer low buckets for the part we control.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The API server's admission webhook buckets (k8s.io/apiserver pkg/admission/metrics). */
export const APISERVER_WEBHOOK_BUCKETS = [0.005, 0.025, 0.1, 0.5, 1, 2.5, 10, 25] as const;
/** Our buckets: all of the API server's plus 1, 2.5, 10 and 50 ms. */
export const LATENCY_BUCKETS = [...new Set([0.001, 0.0025, 0.01, 0.05, ...APISERVER_WEBHOOK_BUCKETS])].sort((a, b) => a - b);

const PREFIX = 'kmesh_ipsec_webhook_';

export class WebhookMetrics {
  readonly registry = new Registry();
  /** Time from request body parsed to response written, per endpoint/subject/operation/outcome. */
  readonly admissionDuration = new Histogram({
    name: `${PREFIX}admission_duration_seconds`,
    help: 'Admission handling latency, on the API server webhook buckets plus finer low ones.',
    labelNames: ['endpoint', 'subject', 'operation', 'allowed'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly admissions = new Counter({
    name: `${PREFIX}admissions_total`,
    help: 'Admission decisions. outcome is allowed, patched, or denied:<cause>.',
    labelNames: ['endpoint', 'subject', 'operation', 'outcome', 'dry_run'] as const,
    registers: [this.registry],
  });
  readonly badRequests = new Counter({
    name: `${PREFIX}bad_requests_total`,
    help: 'Requests answered with a 4xx because they were not AdmissionReview v1 requests.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly stampsSigned = new Counter({
    name: `${PREFIX}stamps_signed_total`,
    help: 'Validity stamps written into KmeshNodeInfos.',
    registers: [this.registry],
  });
  readonly reloads = new Counter({
    name: `${PREFIX}file_reloads_total`,
    help: 'Reloads of watched files (TLS pair, stamp keys). result is success or failure.',
    labelNames: ['what', 'result'] as const,
    registers: [this.registry],
  });
  readonly certificateExpiry = new Gauge({
    name: `${PREFIX}tls_certificate_expiry_timestamp_seconds`,
    help: 'notAfter of the serving certificate in use; alert well before it.',
    registers: [this.registry],
  });
  #cacheSynced: () => boolean = () => false;
  readonly cacheSynced = new Gauge({
    name: `${PREFIX}cache_synced`,
    help: '1 when the KmeshNodeInfo cache is synced, 0 while admission fails closed.',
    registers: [this.registry],
    // Read at scrape time, so the gauge cannot disagree with /readyz.
    collect: () => {
      this.cacheSynced.set(this.#cacheSynced() ? 1 : 0);
    },
  });

  /** Where cache_synced reads from. */
  watchCacheSynced(source: () => boolean): void {
    this.#cacheSynced = source;
  }

  constructor(options: { processMetrics?: boolean } = {}) {
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
  }
}
