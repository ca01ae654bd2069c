import type { IssueFetcher } from '../../domain/linked-issues.js';
import type { GitHubClient } from './client.js';

/**
 * The linked-issue BFS's view of GitHub: issues, their comments and timeline
 * cross-references over REST, every request bounded by the attempt's signal.
 * `onRequests` hears how many HTTP requests each step took (for the cost record).
 */
export function githubIssueFetcher(github: GitHubClient, signal: AbortSignal, onRequests: (n: number) => void): IssueFetcher {
  return {
    async issue(ref) {
      const head = await github.issue(ref.owner, ref.name, ref.number, signal);
      onRequests(1);
      return head;
    },
    async comments(ref) {
      const { comments, pages } = await github.issueComments(ref.owner, ref.name, ref.number, signal);
      onRequests(pages);
      return comments;
    },
    async crossReferences(ref) {
      const { refs, pages } = await github.issueCrossReferences(ref.owner, ref.name, ref.number, signal);
      onRequests(pages);
      return refs;
    },
  };
}
