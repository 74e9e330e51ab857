// What the scripts read from /proc about the processes they start: one process's stat line,
// whether it is still the same live process, and a whole tree (a gateway, its workers, their
// sandboxes), so that they can measure it and leave nothing of it behind.
import fs from 'node:fs';

/** /proc/PID/stat, the fields the scripts use; undefined once the process is gone. */
export function procStat(pid) {
  let s;
  try { s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); } catch { return undefined; }
  const close = s.lastIndexOf(')');
  const comm = s.slice(s.indexOf('(') + 1, close);
  const f = s.slice(close + 2).split(' '); // f[0] is field 3 (state)
  return { pid, comm, state: f[0], ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), startTime: Number(f[19]), cpu: Number(f[36]) };
}

/** Still running, and (with startTime) still the process first seen under that pid. */
export function alive(pid, startTime) {
  const st = procStat(pid);
  return st !== undefined && st.state !== 'Z' && (startTime === undefined || st.startTime === startTime);
}

export function cmdline(pid) {
  try { return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' '); } catch { return ''; }
}

/** The process and all its descendants, breadth first, as procStat gives them. */
export function processTree(rootPid, max = 100_000) {
  const kids = new Map();
  let first;
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const st = procStat(Number(d));
    if (!st) continue;
    if (st.pid === rootPid) first = st;
    if (!kids.has(st.ppid)) kids.set(st.ppid, []);
    kids.get(st.ppid).push(st);
  }
  const out = [];
  if (!first) return out;
  const queue = [first];
  while (queue.length && out.length < max) {
    const p = queue.shift();
    out.push(p);
    queue.push(...(kids.get(p.pid) ?? []));
  }
  return out;
}
