import {
  OperationNodeTransformer, type KyselyPlugin, type PluginTransformQueryArgs, type PluginTransformResultArgs,
  type PrimitiveValueListNode, type QueryResult, type RootOperationNode, type UnknownRow, type ValueNode,
} from 'kysely';
import { cleanText } from '../domain/clean.js';

class CleanStrings extends OperationNodeTransformer {
  protected override transformValue(node: ValueNode): ValueNode {
    return typeof node.value === 'string' ? { ...node, value: cleanText(node.value) } : node;
  }

  protected override transformPrimitiveValueList(node: PrimitiveValueListNode): PrimitiveValueListNode {
    return { ...node, values: node.values.map((v) => (typeof v === 'string' ? cleanText(v) : v)) };
  }
}

/**
 * Every string parameter of every query, cleaned for PostgreSQL (no NUL, no
 * lone surrogate): one bad PR title or error message cannot fail a write.
 * JSON parameters are cleaned before they are serialized (domain/clean.ts
 * `jsonb`), since their escapes are out of this plugin's reach.
 */
export class CleanTextPlugin implements KyselyPlugin {
  private transformer = new CleanStrings();

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return this.transformer.transformNode(args.node, args.queryId);
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}
