export { childEnv, gitEnv, isSecretName, type ChildEnvOptions } from './child-env.js';
export { runProcess, abortError, pdeathsigWrapper, liveFamilies, type ProcessResult, type RunProcessOptions } from './run-process.js';
export { reapOrphans, defaultRegistryDir, type ReapedFamily } from './registry.js';
export { familyMembers, RUN_TAG_VARIABLE } from './process-family.js';
