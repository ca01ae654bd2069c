import type { Db } from '../db/connect.js';
import { setPaused } from './pause.js';

/** `perfmine resume STAGE`: the stage claims again (see pause.ts). */
export function resumeStage(db: Db, stage: string): Promise<{ changed: boolean }> {
  return setPaused(db, stage, false);
}
