// What a function can see and do from inside its sandbox.
import fs from 'node:fs';

function writable(file) {
  try {
    fs.writeFileSync(file, 'x');
    fs.rmSync(file);
    return true;
  } catch {
    return false;
  }
}

async function network() {
  try {
    await fetch('http://1.1.1.1/', { signal: AbortSignal.timeout(1000) });
    return 'reachable';
  } catch (err) {
    return `blocked: ${err.cause?.code ?? err.cause?.message ?? err.message}`;
  }
}

export async function look() {
  return {
    uid: process.getuid(),
    rootWritable: writable('/probe'),
    tmpWritable: writable('/tmp/probe'),
    network: await network(),
  };
}
