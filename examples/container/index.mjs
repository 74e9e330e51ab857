// Node in an OCI container ("mode": "container"): runc runs the same node host as process mode,
// on an empty read-only root with the host's /usr, as uid 65534, with no network but lo, a
// private /tmp, and memory_mb and 64 processes in a cgroup. (Add --image ROOTFS|NAME to run on
// an image's root instead: README "Containers".)
//
// Deployed as a folder: the folder is mounted whole at /fn and index.mjs is its entry, so it
// can import the module beside it.
//
//   faas deploy GET:/inside examples/container --runtime node --mode container
//   faas invoke GET:/inside   → {"uid":65534,"rootWritable":false,"tmpWritable":true,"network":"blocked: …"}
import { look } from './look.mjs';

export default {
  async fetch() {
    return Response.json(await look());
  },
};
