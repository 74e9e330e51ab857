// The pick: which worker gets the next call. Pure: a snapshot of worker state in, a choice
// out; time and randomness are passed in, so every policy can be tested, simulated and
// compared exactly (SCHEDULING.md). The gateway runs one, chosen with --policy.
//
// Every policy sees the same candidates: a worker the gateway holds an open stream connection
// to, whose last report is at most staleAfterMs old. (The C original kept sending to a worker
// that had stopped reporting; no policy here does.) Among them:
//
//   least-loaded     (default) the fewest calls in flight (fresh: the gateway counts them); among
//                    those, the lowest reported score, scores within TIE_EPSILON sharing the call
//                    at random. cost = score + IN_FLIGHT_WEIGHT · inFlight, with the weight above
//                    any score, so a report (up to 500 ms old) never outweighs a call in flight:
//                    a burst spreads out between reports instead of herding onto the worker that
//                    looked idlest at the last one (Mitzenmacher, "How useful is old information?").
//   two-choices      the same cost over two workers drawn at random (power of two choices): O(1).
//                    For fleets too large to scan; measurably worse at the sizes we run.
//   lowest-score     the C original: the lowest reported score, the first one on a tie; nothing
//                    fresh, so everything between two reports goes to one worker.
//   least-in-flight  the fewest calls in flight, ties at random (Envoy's least_request, full scan).
//   round-robin      each candidate in turn.
//   random           uniformly.

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

export interface Policy {
  readonly name: PolicyName;
  pick(workers: readonly WorkerView[], nowMs: number, random: () => number): WorkerView | undefined;
}

export const POLICY_NAMES = ['least-loaded', 'two-choices', 'lowest-score', 'least-in-flight', 'round-robin', 'random'] as const;
export type PolicyName = (typeof POLICY_NAMES)[number];

/**
 * One call in flight costs more than any score (0–100) and the tie margin together, so fresh
 * in-flight counts decide and a report only orders workers with as many calls: a stale score outweighing a call sent work to
 * workers that had just finished a heavy call and looked busy (SCHEDULING.md, the simulation).
 * Scores within 12 points (a quarter of a core) are a tie, shared at random: smaller gaps are
 * noise, and following them herds.
 */
export const IN_FLIGHT_WEIGHT = 125;
export const TIE_EPSILON = 12;

export function createPolicy(name: PolicyName, staleAfterMs: number): Policy {
  const candidate = (w: WorkerView, nowMs: number): boolean => w.connected && nowMs - w.lastReportMs <= staleAfterMs;
  switch (name) {
    case 'least-loaded':
      return { name, pick: (workers, nowMs, random) => lowest(workers, nowMs, candidate, (w) => w.score + IN_FLIGHT_WEIGHT * w.inFlight, TIE_EPSILON, random) };
    case 'two-choices':
      return { name, pick: (workers, nowMs, random) => twoChoices(workers, nowMs, candidate, (w) => w.score + IN_FLIGHT_WEIGHT * w.inFlight, random) };
    case 'lowest-score':
      return { name, pick: (workers, nowMs) => lowest(workers, nowMs, candidate, (w) => w.score, 0, undefined) };
    case 'least-in-flight':
      return { name, pick: (workers, nowMs, random) => lowest(workers, nowMs, candidate, (w) => w.inFlight, 0, random) };
    case 'round-robin': {
      let next = 0;
      return {
        name,
        pick(workers, nowMs) {
          for (let tried = 0; tried < workers.length; tried++) {
            const w = workers[next++ % workers.length]!;
            if (candidate(w, nowMs)) return w;
          }
          return undefined;
        },
      };
    }
    case 'random':
      return {
        name,
        pick(workers, nowMs, random) {
          let chosen: WorkerView | undefined;
          let seen = 0;
          for (const w of workers) if (candidate(w, nowMs) && random() * ++seen < 1) chosen = w; // reservoir of one
          return chosen;
        },
      };
  }
}

/** Tries at sampling a candidate before a pick falls back to a full scan. */
const SAMPLE_TRIES = 8;

/**
 * Power of two choices (Mitzenmacher): the cheaper of two candidates drawn at random, O(1) when
 * most workers are candidates; a full scan when sampling keeps missing (few candidates left).
 */
function twoChoices(workers: readonly WorkerView[], nowMs: number, candidate: (w: WorkerView, nowMs: number) => boolean,
  cost: (w: WorkerView) => number, random: () => number): WorkerView | undefined {
  const drawn: WorkerView[] = [];
  for (let tries = 0; tries < SAMPLE_TRIES && drawn.length < 2; tries++) {
    const w = workers[Math.floor(random() * workers.length)];
    if (w && candidate(w, nowMs) && w !== drawn[0]) drawn.push(w);
  }
  if (drawn.length < 2) return lowest(workers, nowMs, candidate, cost, TIE_EPSILON, random);
  const [a, b] = drawn as [WorkerView, WorkerView];
  const diff = cost(a) - cost(b);
  if (Math.abs(diff) <= TIE_EPSILON) return random() < 0.5 ? a : b;
  return diff < 0 ? a : b;
}

/**
 * The candidate of lowest cost, in one pass. Costs within `epsilon` of the lowest are a tie:
 * with `random`, one of them uniformly (reservoir sampling); without, the first.
 */
function lowest(workers: readonly WorkerView[], nowMs: number, candidate: (w: WorkerView, nowMs: number) => boolean,
  cost: (w: WorkerView) => number, epsilon: number, random: (() => number) | undefined): WorkerView | undefined {
  let best: WorkerView | undefined;
  let bestCost = Infinity;
  let ties = 0;
  for (const w of workers) {
    if (!candidate(w, nowMs)) continue;
    const c = cost(w);
    if (c < bestCost - epsilon) {
      best = w;
      bestCost = c;
      ties = 1;
    } else if (c <= bestCost + epsilon) {
      ties++;
      if (random && random() * ties < 1) best = w;
      if (c < bestCost) bestCost = c;
    }
  }
  return best;
}
