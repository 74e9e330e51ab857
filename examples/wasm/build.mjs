// Assembles hello.wat into hello.wasm with wabt (a devDependency: `npm install` in this
// checkout installs it). The committed hello.wasm is this script's output, so deploying the
// example needs no build; test/unit/cli-examples.test.ts checks that the two agree.
//
//   node examples/wasm/build.mjs            writes examples/wasm/hello.wasm
//   node examples/wasm/build.mjs my.wat     writes my.wasm beside it
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import wabtInit from 'wabt';

/** The binary module of a .wat file. */
export async function assemble(watFile) {
  const wabt = await wabtInit();
  const module = wabt.parseWat(path.basename(watFile), fs.readFileSync(watFile, 'utf8'));
  try {
    module.validate();
    return Buffer.from(module.toBinary({}).buffer);
  } finally {
    module.destroy();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const wat = path.resolve(process.argv[2] ?? fileURLToPath(new URL('hello.wat', import.meta.url)));
  const out = wat.replace(/\.wat$/, '') + '.wasm';
  fs.writeFileSync(out, await assemble(wat));
  process.stdout.write(`wrote ${path.relative(process.cwd(), out)}\n`);
}
