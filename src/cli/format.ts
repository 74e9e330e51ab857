// How the operator commands print for people: aligned tables, times, numbers. Pure.

export type Cell = string | number | null | undefined;

const NUMBER = /^-?\d+(\.\d+)?%?$/;

/**
 * Columns padded to their widest cell, two spaces apart, header first. A column whose cells are
 * all numbers (or '-', unknown) is right-aligned. Lines carry no trailing spaces.
 */
export function table(header: readonly string[], rows: ReadonlyArray<readonly Cell[]>): string {
  const text = rows.map((row) => header.map((_, i) => cellText(row[i])));
  const numeric = header.map((_, i) => text.some((row) => row[i] !== '-') && text.every((row) => row[i] === '-' || NUMBER.test(row[i]!)));
  const widths = header.map((h, i) => Math.max(h.length, ...text.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]): string => cells
    .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
    .join('  ').trimEnd();
  return `${[line(header), ...text.map(line)].join('\n')}\n`;
}

function cellText(cell: Cell): string {
  if (cell === null || cell === undefined || (typeof cell === 'number' && !Number.isFinite(cell))) return '-';
  return typeof cell === 'number' ? String(cell) : cell.replace(/[\r\n\t]+/g, ' ');
}

/** 2025-01-02T03:04:05.678Z, or '-' when unknown. */
export function isoTime(ms: number | null | undefined): string {
  return typeof ms === 'number' && Number.isFinite(ms) ? new Date(ms).toISOString() : '-';
}

/** "0.4 s ago", "3 min ago", "2 h ago"; '-' when unknown. */
export function ago(ms: number | null | undefined, now: number): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return 'never';
  const s = Math.max(0, now - ms) / 1000;
  if (s < 10) return `${s.toFixed(1)} s ago`;
  if (s < 120) return `${Math.round(s)} s ago`;
  if (s < 7200) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** A number with `digits` decimals, or null (printed '-') when unknown. */
export function fixed(n: number | null | undefined, digits = 1): number | null {
  return typeof n === 'number' && Number.isFinite(n) ? Number(n.toFixed(digits)) : null;
}

/** Milliseconds for a latency column: 0.42 → "0.42", 12.345 → "12.3", 1234 → "1234"; '-' when unknown. */
export function ms(n: number | null | undefined): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '-';
  return n < 1 ? n.toFixed(2) : n < 100 ? n.toFixed(1) : n.toFixed(0);
}

/** Whether `text` is valid UTF-8 (a body to print as text, or to show as base64). */
export function utf8(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}
