// A secret kept in a file, so that it is in no command line (`ps`) and no environment a function
// or a child could see: the admin API's token (admin-token.ts) and the cluster database's password
// (cluster/pg-url.ts). Each caller then checks the secret's own shape.
import fs from 'node:fs';

/** The file's text without the trailing newline an editor or `echo` adds; refused when it is not a file, cannot be read, or others may read it. */
export function readSecretFile(file: string): { readonly text: string } | { readonly error: string } {
  let stat: fs.Stats;
  let text: string;
  try {
    stat = fs.statSync(file);
    if (!stat.isFile()) return { error: `${file} is not a file` };
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { error: `${file} cannot be read (${code === 'ENOENT' ? 'no such file' : code ?? (err as Error).message})` };
  }
  if ((stat.mode & 0o004) !== 0) {
    return { error: `${file} is readable by every user (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 ${file}` };
  }
  return { text: text.replace(/\r?\n$/, '') };
}
