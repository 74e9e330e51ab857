// The pick: which worker gets the next call. Pure: a snapshot of worker state in, a choice
// out; time and randomness are passed in, so it can be tested and simulated exactly.
//
// For now (issue 1/6) the lowest load wins, where load is the worker's own smoothed report
// (score = 0.5·cpu + 0.3·mem + 0.2·io, 0–100, see workers/load-score.ts) plus a charge for
// every call the gateway has in flight on that worker:
//
//     cost(w) = score(w) + IN_FLIGHT_WEIGHT · inFlight(w)
//
// The in-flight term is fresh (the gateway counts it itself), so a burst spreads out between
// two reports instead of herding onto the worker that looked idlest 500 ms ago — the flaw of
// the C original (Mitzenmacher, "How useful is old information?"). Costs within
// TIE_EPSILON of the minimum count as equal and one is chosen uniformly at random, so
// idle workers share the traffic. A worker that is not connected, or whose last report is
// older than staleAfterMs, is never chosen. Issue 3/6 replaces this with the measured design
// in SCHEDULING.md.

export interface WorkerView {
  readonly id: string;
  /** Smoothed load score from the worker's last report, 0–100. */
  readonly score: number;
  /** Calls the gateway has sent to this worker and not yet seen answered. */
  readonly inFlight: number;
  /** When the gateway received the worker's last valid report (ms, same clock as `nowMs`). */
  readonly lastReportMs: number;
  /** Whether the gateway holds an open stream connection to the worker. */
  readonly connected: boolean;
}

export interface Scheduler {
  pick(workers: readonly WorkerView[], nowMs: number, random: () => number): WorkerView | undefined;
}

/** One call in flight costs as much as 10 score points (a fifth of a fully busy core's 50). */
export const IN_FLIGHT_WEIGHT = 10;
export const TIE_EPSILON = 1;

export class LowestScoreScheduler implements Scheduler {
  constructor(private readonly staleAfterMs: number) {}

  pick(workers: readonly WorkerView[], nowMs: number, random: () => number): WorkerView | undefined {
    let best: WorkerView | undefined;
    let bestCost = Infinity;
    let ties = 0;
    for (const w of workers) {
      if (!w.connected || nowMs - w.lastReportMs > this.staleAfterMs) continue;
      const cost = w.score + IN_FLIGHT_WEIGHT * w.inFlight;
      if (cost < bestCost - TIE_EPSILON) {
        best = w;
        bestCost = cost;
        ties = 1;
      } else if (cost <= bestCost + TIE_EPSILON) {
        // Reservoir sampling over the tied set: each tie wins with probability 1/ties.
        ties++;
        if (random() * ties < 1) best = w;
        if (cost < bestCost) bestCost = cost;
      }
    }
    return best;
  }
}
