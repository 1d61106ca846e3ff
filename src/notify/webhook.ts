/**
 * The batch report POSTed as JSON to a webhook. Each attempt has 10 s; a network error or a 5xx
 * answer is tried once more after 2 s (a receiver restarting), a 4xx is not (it would say the same).
 */
import { sleep } from '../core/sleep.js';

export const WEBHOOK_TIMEOUT_MS = 10_000;
export const WEBHOOK_RETRY_DELAY_MS = 2_000;

/** Posts `body`; rejects with an Error saying what the last attempt got. */
export async function postWebhook(url: string, body: string, headers: Record<string, string>, timeoutMs = WEBHOOK_TIMEOUT_MS): Promise<void> {
  let last = '';
  let attempt = 1;
  for (; attempt <= 2; attempt++) {
    if (attempt > 1) await sleep(WEBHOOK_RETRY_DELAY_MS);
    try {
      const res = await fetch(url, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body, redirect: 'error', signal: AbortSignal.timeout(timeoutMs) });
      // The answer's body is not needed; read it so the connection is released.
      await res.arrayBuffer().catch(() => undefined);
      if (res.ok) return;
      last = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
      if (res.status < 500) break;
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      last = e.name === 'TimeoutError' ? `no answer in ${timeoutMs / 1000} s` : `${e.cause?.code ?? e.cause?.message ?? e.message}`;
    }
  }
  throw new Error(`the POST failed (${Math.min(attempt, 2)} attempt${attempt > 1 ? 's' : ''}): ${last}`);
}
