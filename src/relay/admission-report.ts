/**
 * How the relay's metrics and log see its admission decisions: the admission object reports
 * events, and this turns each into its counter and log line, so the bookkeeping knows of neither.
 */
import type { AdmissionEvents } from './admission.js';
import type { RelayMetrics } from './metrics.js';
import type { RelayLogger } from './relay-logger.js';

export function reportAdmission(metrics: RelayMetrics, logger: RelayLogger): AdmissionEvents {
  return {
    admitted(login, rule) {
      metrics.logins.inc({ result: 'admitted', reason: 'allowed' });
      logger.info({ worker: login.worker, peer: login.peer, listener: login.listener, rule }, 'worker admitted');
    },
    refused(_login, refusal) {
      // Its line ("worker refused") is written by the connection as it answers the worker, the
      // same line as for an unreachable master.
      metrics.logins.inc({ result: 'denied', reason: refusal.reason });
    },
    displaced(holder, by) {
      metrics.logins.inc({ result: 'displaced', reason: 'newer_login' });
      logger.warn({ worker: holder.worker, peer: holder.peer, listener: holder.listener, by: by.peer }, 'login displaced by a newer one for the same worker');
    },
  };
}
