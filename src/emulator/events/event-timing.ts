// Event Grid's clock, scaled: the retry schedule, the response timeout, lock
// durations and release delays are Azure's figures multiplied by one time
// scale (1 = real time; 0.001 turns the 10 s first retry into 10 ms), so
// tests and demos see the same sequence of attempts without the wait.

/** Event Grid's retry schedule after a failed delivery, in seconds; then every 12 h. */
export const RETRY_SCHEDULE_SECONDS = [10, 30, 60, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600];
const LATER_RETRY_SECONDS = 12 * 3600;
const RESPONSE_TIMEOUT_SECONDS = 30;
/** A busy machine must not turn a slow answer into a failure: the scaled timeout never goes below this. */
const MIN_RESPONSE_TIMEOUT_MS = 5000;

export class EventTiming {
  readonly timeScale: number;

  constructor(timeScale = 1) {
    if (!Number.isFinite(timeScale) || timeScale <= 0 || timeScale > 1) throw new Error(`event time scale must be in (0, 1], got ${timeScale}`);
    this.timeScale = timeScale;
  }

  /** Azure seconds as scaled milliseconds (at least 1 ms). */
  scaled(seconds: number): number {
    return Math.max(1, Math.round(seconds * 1000 * this.timeScale));
  }

  /** The wait before attempt `attempt + 1`, after `attempt` (1-based) failed. */
  retryDelayMs(attempt: number): number {
    return this.scaled(RETRY_SCHEDULE_SECONDS[attempt - 1] ?? LATER_RETRY_SECONDS);
  }

  /** How long a webhook may take to answer. */
  responseTimeoutMs(): number {
    return Math.max(MIN_RESPONSE_TIMEOUT_MS, this.scaled(RESPONSE_TIMEOUT_SECONDS));
  }
}
