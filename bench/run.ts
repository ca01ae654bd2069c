/**
 * `npm run bench -- NAME`: runs one benchmark. Each prints progress and ends
 * with one JSON line of results.
 */
const benches: Record<string, () => Promise<unknown>> = {
  bus: () => import('./bus.js').then((m) => m.run()),
  discover: () => import('./discover.js').then((m) => m.run()),
  judge: () => import('./judge.js').then((m) => m.run()),
  chaos: () => import('./chaos.js').then((m) => m.run()),
  resolve: () => import('./resolve.js').then((m) => m.run()),
  build: () => import('./build.js').then((m) => m.run()),
  status: () => import('./status.js').then((m) => m.run()),
  'measure-fidelity': () => import('./measure-fidelity.js').then((m) => m.run()),
  verify: () => import('./verify.js').then((m) => m.run()),
};

const name = process.argv[2];
if (!name || !benches[name]) {
  console.error(`usage: npm run bench -- <${Object.keys(benches).join('|')}>`);
  process.exit(2);
}
benches[name]()
  .then(() => process.exit(0))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
