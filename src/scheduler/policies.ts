// The pick: which worker gets the next call. Pure: a snapshot of worker state in, a choice
// out; time and randomness are passed in, so every policy can be tested, simulated and
// compared exactly (SCHEDULING.md). The gateway runs one, chosen with --policy.
//
// Every policy sees the same candidates: a worker the gateway holds an open stream connection
// to, whose last report is at most staleAfterMs old, and, for a call of a known function, that
// runs fewer than its max_concurrency calls of it and has not refused this call already. (The C
// original kept sending to a worker that had stopped reporting; no policy here does.) Among them:
//
//   least-loaded     (default) the fewest calls in flight (fresh: the gateway counts them); among
//                    those, the lowest reported score, scores within TIE_EPSILON sharing the call
//                    at random, those with a warm instance of the function first (affinity).
//                    cost = score + IN_FLIGHT_WEIGHT · inFlight, with the weight above any score,
//                    so a report (up to 500 ms old) never outweighs a call in flight: a burst
//                    spreads out between reports instead of herding onto the worker that looked
//                    idlest at the last one (Mitzenmacher, "How useful is old information?").
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
  /** Calls of function `key` the gateway has sent to this worker and not yet seen answered. */
  inFlightOf(key: string): number;
  /** Whether the worker has a ready instance of function `key` (its last report, or a call answered since). */
  isWarm(key: string): boolean;
}

/** What a pick knows of the call it places. */
export interface CallView {
  /** The function's route key, METHOD:URI. */
  readonly key: string;
  /** Calls of the function one worker runs at once at most (its max_concurrency). */
  readonly maxConcurrency: number;
  /** Workers that refused this very call already (at capacity): not asked again. Absent when none did. */
  readonly refusedBy?: ReadonlySet<string>;
}

export interface Policy {
  readonly name: PolicyName;
  /** The worker for the next call, or undefined when none is a candidate. Without `call`, any function. */
  pick(workers: readonly WorkerView[], nowMs: number, random: () => number, call?: CallView): WorkerView | undefined;
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
type Candidate = (w: WorkerView, nowMs: number, call: CallView | undefined) => boolean;
type Cost = (w: WorkerView, call: CallView | undefined) => number;

type Prefer = (w: WorkerView, call: CallView | undefined) => boolean;

const loadCost: Cost = (w) => w.score + IN_FLIGHT_WEIGHT * w.inFlight;
/** Among equally loaded workers, one with a warm instance: no cold start, no second instance. */
const warm: Prefer = (w, call) => call !== undefined && w.isWarm(call.key);

export function createPolicy(name: PolicyName, staleAfterMs: number): Policy {
  const candidate: Candidate = (w, nowMs, call) => w.connected && nowMs - w.lastReportMs <= staleAfterMs &&
    (call === undefined || ((w.inFlight < call.maxConcurrency || w.inFlightOf(call.key) < call.maxConcurrency) &&
      call.refusedBy?.has(w.id) !== true));
  switch (name) {
    case 'least-loaded':
      return { name, pick: (workers, nowMs, random, call) => lowest(workers, nowMs, call, candidate, loadCost, TIE_EPSILON, random, warm) };
    case 'two-choices':
      return { name, pick: (workers, nowMs, random, call) => twoChoices(workers, nowMs, call, candidate, loadCost, random) };
    case 'lowest-score':
      return { name, pick: (workers, nowMs, _random, call) => lowest(workers, nowMs, call, candidate, (w) => w.score, 0, undefined) };
    case 'least-in-flight':
      return { name, pick: (workers, nowMs, random, call) => lowest(workers, nowMs, call, candidate, (w) => w.inFlight, 0, random) };
    case 'round-robin': {
      let next = 0;
      return {
        name,
        pick(workers, nowMs, _random, call) {
          for (let tried = 0; tried < workers.length; tried++) {
            const w = workers[next++ % workers.length]!;
            if (candidate(w, nowMs, call)) return w;
          }
          return undefined;
        },
      };
    }
    case 'random':
      return {
        name,
        pick(workers, nowMs, random, call) {
          let chosen: WorkerView | undefined;
          let seen = 0;
          for (const w of workers) if (candidate(w, nowMs, call) && random() * ++seen < 1) chosen = w; // reservoir of one
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
function twoChoices(workers: readonly WorkerView[], nowMs: number, call: CallView | undefined, candidate: Candidate,
  cost: Cost, random: () => number): WorkerView | undefined {
  const drawn: WorkerView[] = [];
  for (let tries = 0; tries < SAMPLE_TRIES && drawn.length < 2; tries++) {
    const w = workers[Math.floor(random() * workers.length)];
    if (w && candidate(w, nowMs, call) && w !== drawn[0]) drawn.push(w);
  }
  if (drawn.length < 2) return lowest(workers, nowMs, call, candidate, cost, TIE_EPSILON, random);
  const [a, b] = drawn as [WorkerView, WorkerView];
  const diff = cost(a, call) - cost(b, call);
  if (Math.abs(diff) > TIE_EPSILON) return diff < 0 ? a : b;
  const [warmA, warmB] = [warm(a, call), warm(b, call)];
  if (warmA !== warmB) return warmA ? a : b;
  return random() < 0.5 ? a : b;
}

/** Costs of the workers of one pick, reused across picks (NaN: not a candidate). */
let costs = new Float64Array(128);

/**
 * The candidate of lowest cost. Costs within `epsilon` of the lowest are a tie: with `random`,
 * one of them uniformly (reservoir sampling), those `prefer` accepts first; without, the first.
 * Two passes: the lowest cost, then the ties.
 */
function lowest(workers: readonly WorkerView[], nowMs: number, call: CallView | undefined, candidate: Candidate,
  cost: Cost, epsilon: number, random: (() => number) | undefined, prefer?: Prefer): WorkerView | undefined {
  if (costs.length < workers.length) costs = new Float64Array(workers.length * 2);
  let min = Infinity;
  for (let i = 0; i < workers.length; i++) {
    const w = workers[i]!;
    const c = candidate(w, nowMs, call) ? cost(w, call) : NaN;
    costs[i] = c;
    if (c < min) min = c;
  }
  if (min === Infinity) return undefined;
  let chosen: WorkerView | undefined;
  let chosenPreferred = false;
  let ties = 0;
  for (let i = 0; i < workers.length; i++) {
    if (!(costs[i]! <= min + epsilon)) continue; // NaN: not a candidate
    const w = workers[i]!;
    if (!random) return w;
    const preferred = prefer !== undefined && prefer(w, call);
    if (preferred && !chosenPreferred) {
      [chosen, chosenPreferred, ties] = [w, true, 1];
    } else if (preferred === chosenPreferred && random() * ++ties < 1) {
      chosen = w;
    }
  }
  return chosen;
}
